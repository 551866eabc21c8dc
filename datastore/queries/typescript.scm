; TypeScript and TSX. Captures: @chunk.KIND, @name.definition.KIND, @name.reference.KIND.
; Earlier patterns win the kind of a node captured twice; the outermost node wins the chunk range.

(method_definition name: (property_identifier) @name.definition.method) @chunk.method
(method_signature name: (property_identifier) @name.definition.method)
(abstract_method_signature name: (property_identifier) @name.definition.method)

(export_statement declaration: [(class_declaration name: (type_identifier) @name.definition.class)
                                (abstract_class_declaration name: (type_identifier) @name.definition.class)]) @chunk.class
(class_declaration name: (type_identifier) @name.definition.class) @chunk.class
(abstract_class_declaration name: (type_identifier) @name.definition.class) @chunk.class

(export_statement declaration: (interface_declaration name: (type_identifier) @name.definition.interface)) @chunk.interface
(interface_declaration name: (type_identifier) @name.definition.interface) @chunk.interface
(export_statement declaration: (type_alias_declaration name: (type_identifier) @name.definition.type)) @chunk.type
(type_alias_declaration name: (type_identifier) @name.definition.type) @chunk.type
(export_statement declaration: (enum_declaration name: (identifier) @name.definition.enum)) @chunk.enum
(enum_declaration name: (identifier) @name.definition.enum) @chunk.enum
(internal_module name: (identifier) @name.definition.module) @chunk.module

(export_statement declaration: [(function_declaration name: (identifier) @name.definition.function)
                                (generator_function_declaration name: (identifier) @name.definition.function)]) @chunk.function
(function_declaration name: (identifier) @name.definition.function) @chunk.function
(generator_function_declaration name: (identifier) @name.definition.function) @chunk.function
(function_signature name: (identifier) @name.definition.function)

([(lexical_declaration
    (variable_declarator name: (identifier) @name.definition.function
                         value: [(arrow_function) (function_expression)]))
  (variable_declaration
    (variable_declarator name: (identifier) @name.definition.function
                         value: [(arrow_function) (function_expression)]))]) @chunk.function

(program (lexical_declaration (variable_declarator name: (identifier) @name.definition.constant)))

(call_expression function: (identifier) @name.reference.call)
(call_expression function: (member_expression property: (property_identifier) @name.reference.call))
(new_expression constructor: (identifier) @name.reference.class)
(type_annotation (type_identifier) @name.reference.type)
(extends_clause value: (identifier) @name.reference.class)
(implements_clause (type_identifier) @name.reference.implementation)
