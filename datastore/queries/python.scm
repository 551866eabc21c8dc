; Python. Captures: @chunk.KIND (node stored as a chunk), @name.definition.KIND, @name.reference.KIND.
; When one node is captured by several patterns, the earliest pattern gives the kind: methods first.

(class_definition
  body: (block
    [(function_definition name: (identifier) @name.definition.method) @chunk.method
     (decorated_definition
       definition: (function_definition name: (identifier) @name.definition.method)) @chunk.method]))

(decorated_definition
  definition: (class_definition name: (identifier) @name.definition.class)) @chunk.class

(class_definition name: (identifier) @name.definition.class) @chunk.class

(decorated_definition
  definition: (function_definition name: (identifier) @name.definition.function)) @chunk.function

(function_definition name: (identifier) @name.definition.function) @chunk.function

(module (expression_statement (assignment left: (identifier) @name.definition.constant)))

(class_definition
  superclasses: (argument_list [(identifier) @name.reference.class
                                (attribute attribute: (identifier) @name.reference.class)]))

(call
  function: [(identifier) @name.reference.call
             (attribute attribute: (identifier) @name.reference.call)])

(import_from_statement name: (dotted_name (identifier) @name.reference.import))
(import_from_statement name: (aliased_import name: (dotted_name (identifier) @name.reference.import)))
