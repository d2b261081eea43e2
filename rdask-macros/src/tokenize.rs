//! `#[derive(Tokenize)]`: parse the item ([`parse`]), check it into a model
//! of what to hash ([`TokenizeType::check`]), then write the impl
//! ([`expand`]).

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Error, Fields, Generics, Ident, Member, Type};

pub fn derive(input: TokenStream) -> TokenStream {
    match parse(input).and_then(TokenizeType::check) {
        Ok(model) => expand(model),
        Err(e) => e.to_compile_error(),
    }
}

/// Reads the item the derive is on.
fn parse(input: TokenStream) -> syn::Result<DeriveInput> {
    syn::parse2(input)
}

/// What the impl hashes: a checked struct or enum.
struct TokenizeType {
    ident: Ident,
    generics: Generics,
    body: Body,
}

enum Body {
    Struct(Vec<Field>),
    /// The variants, in declaration order (their index is hashed first).
    Enum(Vec<Variant>),
}

struct Variant {
    ident: Ident,
    fields: Vec<Field>,
}

/// A field that is hashed (skipped fields are left out of the model).
struct Field {
    member: Member,
    ty: Type,
}

const USAGE: &str = "expected `#[tokenize(skip)]`";

impl TokenizeType {
    /// Everything that can be wrong is reported here, on the user's token.
    fn check(input: DeriveInput) -> syn::Result<TokenizeType> {
        let mut errors = Vec::new();
        misplaced(&input.attrs, "a struct or enum", &mut errors);
        let body = match input.data {
            Data::Struct(s) => Body::Struct(fields(s.fields, &mut errors)),
            Data::Enum(e) => Body::Enum(
                e.variants
                    .into_iter()
                    .map(|v| {
                        misplaced(&v.attrs, "an enum variant", &mut errors);
                        Variant {
                            ident: v.ident,
                            fields: fields(v.fields, &mut errors),
                        }
                    })
                    .collect(),
            ),
            Data::Union(u) => {
                return Err(Error::new(
                    u.union_token.span,
                    "#[derive(Tokenize)] does not support unions: which field holds the value \
                     is not known, so implement `rdask::Tokenize` by hand",
                ))
            }
        };
        if let Some(e) = combine(errors) {
            return Err(e);
        }
        Ok(TokenizeType {
            ident: input.ident,
            generics: input.generics,
            body,
        })
    }
}

/// `#[tokenize(..)]` goes on fields only.
fn misplaced(attrs: &[Attribute], what: &str, errors: &mut Vec<Error>) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("tokenize")) {
        errors.push(Error::new_spanned(
            attr,
            format!("#[tokenize(..)] goes on a field, not on {what}: `#[tokenize(skip)]`"),
        ));
    }
}

/// The fields to hash, in declaration order, without the skipped ones.
fn fields(fields: Fields, errors: &mut Vec<Error>) -> Vec<Field> {
    let mut out = Vec::new();
    for (i, field) in fields.into_iter().enumerate() {
        match skipped(&field.attrs) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => errors.push(e),
        }
        let member = match field.ident {
            Some(ident) => Member::Named(ident),
            None => Member::Unnamed(syn::Index {
                index: i as u32,
                span: field.ty.span(),
            }),
        };
        out.push(Field {
            member,
            ty: field.ty,
        });
    }
    out
}

/// Whether the field has `#[tokenize(skip)]`; any other `#[tokenize(..)]`
/// is an error.
fn skipped(attrs: &[Attribute]) -> syn::Result<bool> {
    let mut skip = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident("tokenize")) {
        let list = attr
            .meta
            .require_list()
            .map_err(|_| Error::new_spanned(attr, USAGE))?;
        list.parse_nested_meta(|meta| {
            if !meta.path.is_ident("skip") {
                return Err(meta.error(USAGE));
            }
            if skip {
                return Err(meta.error("`skip` given twice"));
            }
            skip = true;
            Ok(())
        })?;
        if !skip {
            return Err(Error::new_spanned(attr, USAGE));
        }
    }
    Ok(skip)
}

fn combine(errors: impl IntoIterator<Item = Error>) -> Option<Error> {
    errors.into_iter().reduce(|mut a, b| {
        a.combine(b);
        a
    })
}

/// Writes `impl ::rdask::Tokenize`, with a `Tokenize` bound on each type
/// parameter.
fn expand(model: TokenizeType) -> TokenStream {
    let TokenizeType {
        ident,
        mut generics,
        body,
    } = model;
    let h = Ident::new("__rdask_h", Span::mixed_site());
    let params: Vec<Ident> = generics.type_params().map(|p| p.ident.clone()).collect();
    if !params.is_empty() {
        let where_clause = generics.make_where_clause();
        for p in params {
            where_clause
                .predicates
                .push(syn::parse_quote!(#p: ::rdask::Tokenize));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let (statements, uses_h) = match body {
        Body::Struct(fields) => {
            let writes = fields.iter().map(|f| {
                let member = &f.member;
                write(f, quote!(&self.#member), &h)
            });
            (quote!(#(#writes)*), !fields.is_empty())
        }
        Body::Enum(variants) if variants.is_empty() => (quote!(match *self {}), false),
        Body::Enum(variants) => {
            let arms = variants.iter().enumerate().map(|(i, v)| {
                let name = &v.ident;
                let index = Literal::u32_suffixed(i as u32);
                let bindings: Vec<Ident> = (0..v.fields.len())
                    .map(|j| format_ident!("__rdask_f{}", j, span = Span::mixed_site()))
                    .collect();
                let members = v.fields.iter().map(|f| &f.member);
                let writes = v
                    .fields
                    .iter()
                    .zip(&bindings)
                    .map(|(f, b)| write(f, quote!(#b), &h));
                quote! {
                    Self::#name { #(#members: #bindings,)* .. } => {
                        ::rdask::Tokenize::tokenize(&#index, #h);
                        #(#writes)*
                    }
                }
            });
            (quote!(match self { #(#arms)* }), true)
        }
    };
    let param = if uses_h { quote!(#h) } else { quote!(_) };
    quote! {
        #[automatically_derived]
        impl #impl_generics ::rdask::Tokenize for #ident #ty_generics #where_clause {
            fn tokenize(&self, #param: &mut dyn ::core::hash::Hasher) {
                #statements
            }
        }
    }
}

/// Hashes one field, `value` being a reference to it. The call is spanned
/// on the field's type, so a type that is not `Tokenize` is reported there.
fn write(field: &Field, value: TokenStream, h: &Ident) -> TokenStream {
    let ty = &field.ty;
    quote_spanned! {ty.span()=>
        <#ty as ::rdask::Tokenize>::tokenize(#value, #h);
    }
}
