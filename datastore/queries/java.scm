; Java. Captures: @chunk.KIND, @name.definition.KIND, @name.reference.KIND.
; Earlier patterns win the kind of a node captured twice.

(method_declaration name: (identifier) @name.definition.method) @chunk.method
(constructor_declaration name: (identifier) @name.definition.method) @chunk.method

(class_declaration name: (identifier) @name.definition.class) @chunk.class
(interface_declaration name: (identifier) @name.definition.interface) @chunk.interface
(enum_declaration name: (identifier) @name.definition.enum) @chunk.enum
(record_declaration name: (identifier) @name.definition.class) @chunk.class

(field_declaration declarator: (variable_declarator name: (identifier) @name.definition.field))

(method_invocation name: (identifier) @name.reference.call)
(object_creation_expression type: (type_identifier) @name.reference.class)
(superclass (type_identifier) @name.reference.class)
(super_interfaces (type_list (type_identifier) @name.reference.implementation))
