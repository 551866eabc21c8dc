; C++ (and C headers: the C++ grammar extends the C one). Captures: @chunk.KIND,
; @name.definition.KIND, @name.reference.KIND.
; Earlier patterns win the kind of a node captured twice; the outermost node wins the chunk range
; (`template <...>` and `typedef` belong to the chunk). `(_ (function_declarator ...))` is a
; function returning a pointer or reference, `(_ (_ ...))` one returning a pointer to a pointer.

; Methods: defined or declared in a class body, or defined outside it as `Class::name`.
(field_declaration_list
  [(function_definition
     declarator: [(function_declarator declarator: [(field_identifier) (identifier) (destructor_name) (operator_name)] @name.definition.method)
                  (_ (function_declarator declarator: [(field_identifier) (identifier) (operator_name)] @name.definition.method))]) @chunk.method
   (template_declaration
     (function_definition
       declarator: [(function_declarator declarator: [(field_identifier) (identifier) (operator_name)] @name.definition.method)
                    (_ (function_declarator declarator: [(field_identifier) (identifier) (operator_name)] @name.definition.method))])) @chunk.method])
(field_declaration_list
  [(field_declaration declarator: [(function_declarator declarator: [(field_identifier) (operator_name)] @name.definition.method)
                                   (_ (function_declarator declarator: [(field_identifier) (operator_name)] @name.definition.method))])
   (declaration declarator: (function_declarator declarator: [(identifier) (destructor_name)] @name.definition.method))
   (template_declaration
     [(declaration declarator: (function_declarator declarator: [(field_identifier) (identifier)] @name.definition.method))
      (field_declaration declarator: (function_declarator declarator: [(field_identifier) (identifier)] @name.definition.method))])])

(template_declaration
  (function_definition
    declarator: [(function_declarator declarator: (qualified_identifier name: [(identifier) (destructor_name) (operator_name)] @name.definition.method))
                 (_ (function_declarator declarator: (qualified_identifier name: [(identifier) (operator_name)] @name.definition.method)))])) @chunk.method
(function_definition
  declarator: [(function_declarator declarator: (qualified_identifier name: [(identifier) (destructor_name) (operator_name)] @name.definition.method))
               (_ (function_declarator declarator: (qualified_identifier name: [(identifier) (operator_name)] @name.definition.method)))]) @chunk.method

; Functions.
(template_declaration
  (function_definition
    declarator: [(function_declarator declarator: (identifier) @name.definition.function)
                 (_ (function_declarator declarator: (identifier) @name.definition.function))
               (_ (_ (function_declarator declarator: (identifier) @name.definition.function)))])) @chunk.function
(function_definition
  declarator: [(function_declarator declarator: (identifier) @name.definition.function)
               (_ (function_declarator declarator: (identifier) @name.definition.function))
               (_ (_ (function_declarator declarator: (identifier) @name.definition.function)))]) @chunk.function
(template_declaration
  (declaration declarator: [(function_declarator declarator: (identifier) @name.definition.function)
                            (_ (function_declarator declarator: (identifier) @name.definition.function))
               (_ (_ (function_declarator declarator: (identifier) @name.definition.function)))]))
(declaration
  declarator: [(function_declarator declarator: (identifier) @name.definition.function)
               (_ (function_declarator declarator: (identifier) @name.definition.function))
               (_ (_ (function_declarator declarator: (identifier) @name.definition.function)))])

; Classes, structs, unions, enums.
(template_declaration [(class_specifier name: (type_identifier) @name.definition.class body: (_))
                       (struct_specifier name: (type_identifier) @name.definition.class body: (_))]) @chunk.class
(type_definition type: [(struct_specifier name: (type_identifier) @name.definition.class body: (_))
                        (union_specifier name: (type_identifier) @name.definition.class body: (_))
                        (class_specifier name: (type_identifier) @name.definition.class body: (_))]) @chunk.class
(type_definition type: [(struct_specifier !name body: (_)) (union_specifier !name body: (_))]
                 declarator: (type_identifier) @name.definition.class) @chunk.class
(class_specifier name: (type_identifier) @name.definition.class body: (_)) @chunk.class
(struct_specifier name: (type_identifier) @name.definition.class body: (_)) @chunk.class
(union_specifier name: (type_identifier) @name.definition.class body: (_)) @chunk.class

(type_definition type: (enum_specifier name: (type_identifier) @name.definition.enum body: (_))) @chunk.enum
(type_definition type: (enum_specifier !name body: (_))
                 declarator: (type_identifier) @name.definition.enum) @chunk.enum
(enum_specifier name: (type_identifier) @name.definition.enum body: (_)) @chunk.enum
(enumerator name: (identifier) @name.definition.constant)

(namespace_definition name: [(namespace_identifier) (nested_namespace_specifier)] @name.definition.module
                      body: (declaration_list)) @chunk.module

(type_definition declarator: (type_identifier) @name.definition.type)
(alias_declaration name: (type_identifier) @name.definition.type)
(template_declaration (alias_declaration name: (type_identifier) @name.definition.type))

(preproc_function_def name: (identifier) @name.definition.macro) @chunk.macro
(preproc_def name: (identifier) @name.definition.constant)

; Variables at file or namespace scope, also inside include guards.
([(translation_unit (declaration declarator: [(identifier) @name.definition.variable
                                              (init_declarator declarator: (identifier) @name.definition.variable)]))
  (declaration_list (declaration declarator: [(identifier) @name.definition.variable
                                              (init_declarator declarator: (identifier) @name.definition.variable)]))
  (preproc_ifdef (declaration declarator: [(identifier) @name.definition.variable
                                           (init_declarator declarator: (identifier) @name.definition.variable)]))])

(call_expression function: [(identifier) @name.reference.call
                            (field_expression field: (field_identifier) @name.reference.call)
                            (qualified_identifier name: (identifier) @name.reference.call)
                            (template_function name: (identifier) @name.reference.call)
                            (qualified_identifier name: (template_function name: (identifier) @name.reference.call))])
(new_expression type: [(type_identifier) @name.reference.class
                       (template_type name: (type_identifier) @name.reference.class)
                       (qualified_identifier name: [(type_identifier) @name.reference.class
                                                    (template_type name: (type_identifier) @name.reference.class)])])
(base_class_clause [(type_identifier) @name.reference.class
                    (qualified_identifier name: (type_identifier) @name.reference.class)
                    (template_type name: (type_identifier) @name.reference.class)])
(type_identifier) @name.reference.type
