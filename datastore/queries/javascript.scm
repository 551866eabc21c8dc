; JavaScript. Captures: @chunk.KIND, @name.definition.KIND, @name.reference.KIND.
; Earlier patterns win the kind of a node captured twice; the outermost node wins the chunk range.

(method_definition name: (property_identifier) @name.definition.method) @chunk.method

(export_statement declaration: (class_declaration name: (identifier) @name.definition.class)) @chunk.class
(class_declaration name: (identifier) @name.definition.class) @chunk.class
(class name: (identifier) @name.definition.class) @chunk.class

(export_statement declaration: [(function_declaration name: (identifier) @name.definition.function)
                                (generator_function_declaration name: (identifier) @name.definition.function)]) @chunk.function
(function_declaration name: (identifier) @name.definition.function) @chunk.function
(generator_function_declaration name: (identifier) @name.definition.function) @chunk.function

([(lexical_declaration
    (variable_declarator name: (identifier) @name.definition.function
                         value: [(arrow_function) (function_expression)]))
  (variable_declaration
    (variable_declarator name: (identifier) @name.definition.function
                         value: [(arrow_function) (function_expression)]))]) @chunk.function

(expression_statement
  (assignment_expression
    left: [(identifier) @name.definition.function
           (member_expression property: (property_identifier) @name.definition.function)]
    right: [(arrow_function) (function_expression)])) @chunk.function

(pair key: (property_identifier) @name.definition.function
      value: [(arrow_function) (function_expression)]) @chunk.function

(program (lexical_declaration (variable_declarator name: (identifier) @name.definition.constant)))

(call_expression function: (identifier) @name.reference.call)
(call_expression function: (member_expression property: (property_identifier) @name.reference.call))
(new_expression constructor: (identifier) @name.reference.class)
(class_heritage (identifier) @name.reference.class)
