; Rust. Captures: @chunk.KIND, @name.definition.KIND, @name.reference.KIND.
; Earlier patterns win the kind of a node captured twice; a chunk without a definition name is
; named by the first name it captures (an impl block by its type).

(impl_item body: (declaration_list (function_item name: (identifier) @name.definition.method) @chunk.method))
(trait_item body: (declaration_list (function_item name: (identifier) @name.definition.method) @chunk.method))
(function_signature_item name: (identifier) @name.definition.method)
(function_item name: (identifier) @name.definition.function) @chunk.function

(struct_item name: (type_identifier) @name.definition.class) @chunk.class
(enum_item name: (type_identifier) @name.definition.enum) @chunk.enum
(union_item name: (type_identifier) @name.definition.class) @chunk.class
(type_item name: (type_identifier) @name.definition.type) @chunk.type
(trait_item name: (type_identifier) @name.definition.interface) @chunk.interface
(mod_item name: (identifier) @name.definition.module body: (declaration_list)) @chunk.module
(macro_definition name: (identifier) @name.definition.macro) @chunk.macro
(const_item name: (identifier) @name.definition.constant)
(static_item name: (identifier) @name.definition.constant)

(impl_item type: [(type_identifier) @name.reference.type
                  (generic_type type: (type_identifier) @name.reference.type)]) @chunk.impl
(impl_item trait: [(type_identifier) @name.reference.implementation
                   (scoped_type_identifier name: (type_identifier) @name.reference.implementation)])

(call_expression function: (identifier) @name.reference.call)
(call_expression function: (field_expression field: (field_identifier) @name.reference.call))
(call_expression function: (scoped_identifier name: (identifier) @name.reference.call))
(macro_invocation macro: (identifier) @name.reference.call)
