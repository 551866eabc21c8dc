; Go. Captures: @chunk.KIND, @name.definition.KIND, @name.reference.KIND.
; Earlier patterns win the kind of a node captured twice. A name captured as a definition is
; never also a reference.

(method_declaration name: (field_identifier) @name.definition.method) @chunk.method
(function_declaration name: (identifier) @name.definition.function) @chunk.function

(type_declaration (type_spec name: (type_identifier) @name.definition.class type: (struct_type))) @chunk.class
(type_declaration (type_spec name: (type_identifier) @name.definition.interface type: (interface_type))) @chunk.interface
(type_declaration (type_spec name: (type_identifier) @name.definition.type)) @chunk.type

(source_file (const_declaration (const_spec name: (identifier) @name.definition.constant)))
(source_file (var_declaration (var_spec name: (identifier) @name.definition.variable)))

(call_expression
  function: [(identifier) @name.reference.call
             (selector_expression field: (field_identifier) @name.reference.call)])
(type_identifier) @name.reference.type
