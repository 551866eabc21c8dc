; C. Captures: @chunk.KIND, @name.definition.KIND, @name.reference.KIND.
; Earlier patterns win the kind of a node captured twice; the outermost node wins the chunk range
; (a typedef'd struct is chunked with its typedef). `(_ (function_declarator ...))` is a function
; returning a pointer (`int *f(void)`), `(_ (_ ...))` one returning a pointer to a pointer.

(function_definition
  declarator: [(function_declarator declarator: (identifier) @name.definition.function)
               (_ (function_declarator declarator: (identifier) @name.definition.function))
               (_ (_ (function_declarator declarator: (identifier) @name.definition.function)))]) @chunk.function
(declaration
  declarator: [(function_declarator declarator: (identifier) @name.definition.function)
               (_ (function_declarator declarator: (identifier) @name.definition.function))
               (_ (_ (function_declarator declarator: (identifier) @name.definition.function)))])

(type_definition type: [(struct_specifier name: (type_identifier) @name.definition.class body: (_))
                        (union_specifier name: (type_identifier) @name.definition.class body: (_))]) @chunk.class
(type_definition type: [(struct_specifier !name body: (_)) (union_specifier !name body: (_))]
                 declarator: (type_identifier) @name.definition.class) @chunk.class
(struct_specifier name: (type_identifier) @name.definition.class body: (_)) @chunk.class
(union_specifier name: (type_identifier) @name.definition.class body: (_)) @chunk.class

(type_definition type: (enum_specifier name: (type_identifier) @name.definition.enum body: (_))) @chunk.enum
(type_definition type: (enum_specifier !name body: (_))
                 declarator: (type_identifier) @name.definition.enum) @chunk.enum
(enum_specifier name: (type_identifier) @name.definition.enum body: (_)) @chunk.enum
(enumerator name: (identifier) @name.definition.constant)

(type_definition declarator: (type_identifier) @name.definition.type)

(preproc_function_def name: (identifier) @name.definition.macro) @chunk.macro
(preproc_def name: (identifier) @name.definition.constant)

; File-scope variables, also inside include guards.
([(translation_unit (declaration declarator: [(identifier) @name.definition.variable
                                              (init_declarator declarator: (identifier) @name.definition.variable)]))
  (preproc_ifdef (declaration declarator: [(identifier) @name.definition.variable
                                           (init_declarator declarator: (identifier) @name.definition.variable)]))])

(call_expression function: (identifier) @name.reference.call)
(call_expression function: (field_expression field: (field_identifier) @name.reference.call))
(type_identifier) @name.reference.type
