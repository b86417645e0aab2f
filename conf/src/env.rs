//! `${NAME}` substitution in every configuration file.
//!
//! A scalar may name environment variables: `password: ${HAPROXY_PASSWORD}`,
//! `url: http://${RABBIT_HOST}:15672/`. `${NAME:-default}` gives `default` when `NAME` is
//! unset or empty; `$${` is a literal `${`. An unset variable without a default is an error at
//! the scalar's `file:line:column`, naming the variable.
//!
//! The substitution happens inside the YAML decoder, scalar by scalar ([`Subst`] wraps
//! serde_yaml's deserializer): a value can never change the document's structure (a `#` or
//! `: ` in a password stays part of the password), positions stay those of the file, and a
//! substituted scalar is typed as if written in its place (`max_targets: ${MAX}` with `MAX=5`
//! is the integer 5, while a string field keeps `"007"` as written).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

/// Substitute `${NAME}` / `${NAME:-default}` in `s` from the process environment.
/// `Cow::Borrowed` when `s` names none. The error names the unset variable.
pub fn substitute(s: &str) -> Result<Cow<'_, str>, String> {
    substitute_with(s, |name| std::env::var(name).ok())
}

/// [`substitute`] with the variables from `lookup` (tests).
pub fn substitute_with(
    s: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Cow<'_, str>, String> {
    if !s.contains("${") {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            // `$${`: a literal `${`.
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let body = &rest[i + 2..];
        let Some(end) = body.find('}') else {
            return Err(format!(
                "unterminated `${{` in {s:?}: write `${{NAME}}`, or `$${{` for a literal `${{`"
            ));
        };
        let expr = &body[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "`${{{expr}}}` is not a variable reference: names are letters, digits and `_` (`${{NAME}}` or `${{NAME:-default}}`)"
            ));
        }
        match (lookup(name), default) {
            (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (used as `${{{name}}}`; set it, or give a default: `${{{name}:-value}}`)"
                ))
            }
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// A deserializer that substitutes `${NAME}` in every scalar the wrapped one reads.
pub struct Subst<D>(D);

impl<D> Subst<D> {
    pub fn new(d: D) -> Self {
        Subst(d)
    }
}

/// A visitor wrapper: substitutes in strings, wraps nested access so the whole tree is seen.
struct V<X> {
    inner: X,
    /// `None`: a string-wanting call gets the substituted string itself. `Some`: any other
    /// call gets the YAML scalar the substituted text spells (so `${PORT}` can be an
    /// integer), through the same `deserialize_*` method.
    redispatch: Option<Redispatch>,
}

/// Which `deserialize_*` method to call again on the substituted scalar.
#[derive(Clone, Copy)]
enum Redispatch {
    Any,
    Bool,
    I64,
    U64,
    I128,
    U128,
    F64,
    Unit,
    Option,
    Ignored,
}

impl<X> V<X> {
    fn str(inner: X) -> Self {
        V {
            inner,
            redispatch: None,
        }
    }
    fn scalar(inner: X, r: Redispatch) -> Self {
        V {
            inner,
            redispatch: Some(r),
        }
    }
}

fn redispatch<'de, X: Visitor<'de>, E: de::Error>(
    r: Redispatch,
    text: &str,
    inner: X,
) -> Result<X::Value, E> {
    // The substituted text read as a YAML scalar; anything else (a value with `: ` or a
    // leading `[`) stays the string it is.
    let value = match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(
            v @ (serde_yaml::Value::Null
            | serde_yaml::Value::Bool(_)
            | serde_yaml::Value::Number(_)
            | serde_yaml::Value::String(_)),
        ) => v,
        _ => serde_yaml::Value::String(text.to_string()),
    };
    let r = match r {
        Redispatch::Any => value.deserialize_any(inner),
        Redispatch::Bool => value.deserialize_bool(inner),
        Redispatch::I64 => value.deserialize_i64(inner),
        Redispatch::U64 => value.deserialize_u64(inner),
        Redispatch::I128 => value.deserialize_i128(inner),
        Redispatch::U128 => value.deserialize_u128(inner),
        Redispatch::F64 => value.deserialize_f64(inner),
        Redispatch::Unit => value.deserialize_unit(inner),
        Redispatch::Option => value.deserialize_option(inner),
        Redispatch::Ignored => value.deserialize_ignored_any(inner),
    };
    // serde_yaml's `Value` errors carry no position; the outer decoder adds the scalar's.
    r.map_err(|e| E::custom(e))
}

impl<'de, X: Visitor<'de>> Visitor<'de> for V<X> {
    type Value = X::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.expecting(f)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<X::Value, E> {
        match substitute(v).map_err(E::custom)? {
            Cow::Borrowed(s) => self.inner.visit_str(s),
            Cow::Owned(s) => match self.redispatch {
                Some(r) => redispatch(r, &s, self.inner),
                None => self.inner.visit_string(s),
            },
        }
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<X::Value, E> {
        match substitute(v).map_err(E::custom)? {
            Cow::Borrowed(s) => self.inner.visit_borrowed_str(s),
            Cow::Owned(s) => match self.redispatch {
                Some(r) => redispatch(r, &s, self.inner),
                None => self.inner.visit_string(s),
            },
        }
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<X::Value, E> {
        match substitute(&v).map_err(E::custom)? {
            Cow::Borrowed(_) => self.inner.visit_string(v),
            Cow::Owned(s) => match self.redispatch {
                Some(r) => redispatch(r, &s, self.inner),
                None => self.inner.visit_string(s),
            },
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<X::Value, E> {
        self.inner.visit_bool(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<X::Value, E> {
        self.inner.visit_i64(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<X::Value, E> {
        self.inner.visit_u64(v)
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<X::Value, E> {
        self.inner.visit_i128(v)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<X::Value, E> {
        self.inner.visit_u128(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<X::Value, E> {
        self.inner.visit_f64(v)
    }
    fn visit_char<E: de::Error>(self, v: char) -> Result<X::Value, E> {
        self.inner.visit_char(v)
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<X::Value, E> {
        self.inner.visit_bytes(v)
    }
    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<X::Value, E> {
        self.inner.visit_borrowed_bytes(v)
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<X::Value, E> {
        self.inner.visit_byte_buf(v)
    }
    fn visit_none<E: de::Error>(self) -> Result<X::Value, E> {
        self.inner.visit_none()
    }
    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<X::Value, D2::Error> {
        self.inner.visit_some(Subst(d))
    }
    fn visit_unit<E: de::Error>(self) -> Result<X::Value, E> {
        self.inner.visit_unit()
    }
    fn visit_newtype_struct<D2: Deserializer<'de>>(self, d: D2) -> Result<X::Value, D2::Error> {
        self.inner.visit_newtype_struct(Subst(d))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<X::Value, A::Error> {
        self.inner.visit_seq(Seq(seq))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<X::Value, A::Error> {
        self.inner.visit_map(Map(map))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<X::Value, A::Error> {
        self.inner.visit_enum(Enum(data))
    }
}

/// A seed wrapper: the value it deserializes goes through [`Subst`] too.
struct Seed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Subst(d))
    }
}

struct Seq<A>(A);

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Seq<A> {
    type Error = A::Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Seed(seed))
    }
    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

struct Map<A>(A);

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Map<A> {
    type Error = A::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        // Keys are names, not values: no substitution.
        self.0.next_key_seed(seed)
    }
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(Seed(seed))
    }
    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

struct Enum<A>(A);

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Enum<A> {
    type Error = A::Error;
    type Variant = Variant<A::Variant>;
    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let (v, access) = self.0.variant_seed(Seed(seed))?;
        Ok((v, Variant(access)))
    }
}

struct Variant<A>(A);

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Variant<A> {
    type Error = A::Error;
    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Seed(seed))
    }
    fn tuple_variant<X: Visitor<'de>>(self, len: usize, v: X) -> Result<X::Value, A::Error> {
        self.0.tuple_variant(len, V::str(v))
    }
    fn struct_variant<X: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: X,
    ) -> Result<X::Value, A::Error> {
        self.0.struct_variant(fields, V::str(v))
    }
}

macro_rules! forward_str {
    ($($m:ident),*) => {$(
        fn $m<X: Visitor<'de>>(self, v: X) -> Result<X::Value, D::Error> {
            self.0.$m(V::str(v))
        }
    )*};
}

/// serde_yaml's typed methods (`deserialize_u16`, …) reject a plain scalar that does not
/// parse as the type without showing it to the visitor, so they ask for `deserialize_any`
/// (which resolves plain scalars as YAML does and hands `${…}` to the visitor as a string);
/// the scalar is then handed on through the method first called.
macro_rules! forward_scalar {
    ($($m:ident => $r:ident),*) => {$(
        fn $m<X: Visitor<'de>>(self, v: X) -> Result<X::Value, D::Error> {
            self.0.deserialize_any(V::scalar(v, Redispatch::$r))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Subst<D> {
    type Error = D::Error;

    forward_str!(
        deserialize_str,
        deserialize_string,
        deserialize_char,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier
    );
    forward_scalar!(
        deserialize_any => Any,
        deserialize_bool => Bool,
        deserialize_i8 => I64,
        deserialize_i16 => I64,
        deserialize_i32 => I64,
        deserialize_i64 => I64,
        deserialize_u8 => U64,
        deserialize_u16 => U64,
        deserialize_u32 => U64,
        deserialize_u64 => U64,
        deserialize_i128 => I128,
        deserialize_u128 => U128,
        deserialize_f32 => F64,
        deserialize_f64 => F64,
        deserialize_ignored_any => Ignored
    );

    fn deserialize_option<X: Visitor<'de>>(self, v: X) -> Result<X::Value, D::Error> {
        self.0.deserialize_option(V::scalar(v, Redispatch::Option))
    }
    fn deserialize_unit<X: Visitor<'de>>(self, v: X) -> Result<X::Value, D::Error> {
        self.0.deserialize_unit(V::scalar(v, Redispatch::Unit))
    }

    fn deserialize_unit_struct<X: Visitor<'de>>(
        self,
        name: &'static str,
        v: X,
    ) -> Result<X::Value, D::Error> {
        self.0
            .deserialize_unit_struct(name, V::scalar(v, Redispatch::Unit))
    }
    fn deserialize_newtype_struct<X: Visitor<'de>>(
        self,
        name: &'static str,
        v: X,
    ) -> Result<X::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, V::str(v))
    }
    fn deserialize_tuple<X: Visitor<'de>>(self, len: usize, v: X) -> Result<X::Value, D::Error> {
        self.0.deserialize_tuple(len, V::str(v))
    }
    fn deserialize_tuple_struct<X: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        v: X,
    ) -> Result<X::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, V::str(v))
    }
    fn deserialize_struct<X: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: X,
    ) -> Result<X::Value, D::Error> {
        self.0.deserialize_struct(name, fields, V::str(v))
    }
    fn deserialize_enum<X: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: X,
    ) -> Result<X::Value, D::Error> {
        self.0.deserialize_enum(name, variants, V::str(v))
    }
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn substitutes_names_defaults_and_escapes() {
        let e = env(&[("A", "x#y: z"), ("EMPTY", "")]);
        assert_eq!(substitute_with("plain", &e).unwrap(), "plain");
        assert_eq!(substitute_with("${A}", &e).unwrap(), "x#y: z");
        assert_eq!(substitute_with("u:${A}@h", &e).unwrap(), "u:x#y: z@h");
        assert_eq!(substitute_with("${B:-dflt}", &e).unwrap(), "dflt");
        assert_eq!(substitute_with("${EMPTY:-dflt}", &e).unwrap(), "dflt");
        assert_eq!(substitute_with("${EMPTY}", &e).unwrap(), "");
        assert_eq!(substitute_with("$${A}", &e).unwrap(), "${A}");
        let err = substitute_with("p ${NOPE} q", &e).unwrap_err();
        assert!(
            err.starts_with("environment variable NOPE is not set"),
            "{err}"
        );
        assert!(substitute_with("${A", &e)
            .unwrap_err()
            .contains("unterminated"));
        assert!(substitute_with("${1X}", &e)
            .unwrap_err()
            .contains("not a variable"));
    }
}
