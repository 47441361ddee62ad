//! Internally tagged enums without serde's buffering.
//!
//! Every message and most of what they carry is an enum whose variant is named by a tag inside
//! its own object (`{"fact":"ns-identity","kind":"pid",...}`). serde's derive for that
//! (`#[serde(tag = "...")]`) cannot know where in the object the tag is, so it first copies the
//! whole object into a buffer of its own, then reads the variant from the buffer; an enum inside
//! that object is buffered again from the copy, and so on at every level. A case's probe sends
//! some 15 KB of such lines (the sysctl facts nest three levels: the fact, its observation, each
//! entry's result), and decoding them cost about six times as much as parsing them (issue 17).
//!
//! The enums here are derived externally tagged with `#[serde(remote = "Self")]` (which makes the
//! derived code inherent functions instead of the traits), and [`tagged!`] implements the traits
//! around them:
//! - encoding writes the object with the tag first, then the variant's fields: what the tagged
//!   derive writes, byte for byte;
//! - decoding takes the first key: when it is the tag (as every encoder here writes it), the
//!   variant is read from its value and its fields straight from the rest of the object, nothing
//!   buffered; otherwise (a hand-written line may put the tag anywhere) the object is read into a
//!   [`serde_json::Value`] and decoded from there, as the tagged derive would have.
//!
//! Struct and unit variants only: the wire has no newtype or tuple variant, and encoding one
//! fails.

use std::fmt;

use serde::de::{self, DeserializeSeed, EnumAccess, IgnoredAny, IntoDeserializer, MapAccess, VariantAccess, Visitor};
use serde::ser::{self, Impossible, SerializeMap, SerializeStructVariant};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Implements `Serialize` and `Deserialize` for `$ty`, an enum derived with
/// `#[serde(remote = "Self")]`, as internally tagged with the key `$tag` (see the module's docs).
macro_rules! tagged {
    ($ty:ty, $tag:literal) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                <$ty>::serialize(self, $crate::wire::tagged::TagFirst { inner: serializer, tag: $tag })
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <$ty>::deserialize($crate::wire::tagged::TagFirst { inner: deserializer, tag: $tag })
            }
        }
    };
}
pub(crate) use tagged;

/// A serializer or deserializer that turns the externally tagged form of an enum into the
/// internally tagged one with the key `tag`, and back.
pub struct TagFirst<T> {
    pub inner: T,
    pub tag: &'static str,
}

fn unsupported<E: ser::Error>(what: &str) -> E {
    E::custom(format!("an internally tagged wire enum cannot be encoded from {what}"))
}

impl<S: Serializer> Serializer for TagFirst<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Impossible<S::Ok, S::Error>;
    type SerializeTuple = Impossible<S::Ok, S::Error>;
    type SerializeTupleStruct = Impossible<S::Ok, S::Error>;
    type SerializeTupleVariant = Impossible<S::Ok, S::Error>;
    type SerializeMap = Impossible<S::Ok, S::Error>;
    type SerializeStruct = Impossible<S::Ok, S::Error>;
    type SerializeStructVariant = Fields<S::SerializeMap>;

    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<S::Ok, S::Error> {
        let mut map = self.inner.serialize_map(Some(1))?;
        map.serialize_entry(self.tag, variant)?;
        map.end()
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Fields<S::SerializeMap>, S::Error> {
        let mut map = self.inner.serialize_map(Some(len + 1))?;
        map.serialize_entry(self.tag, variant)?;
        Ok(Fields(map))
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(unsupported("a newtype variant"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        Err(unsupported("a tuple variant"))
    }
    fn serialize_bool(self, _: bool) -> Result<S::Ok, S::Error> {
        Err(unsupported("a bool"))
    }
    fn serialize_i8(self, _: i8) -> Result<S::Ok, S::Error> {
        Err(unsupported("a number"))
    }
    fn serialize_i16(self, _: i16) -> Result<S::Ok, S::Error> {
        Err(unsupported("a number"))
    }
    fn serialize_i32(self, _: i32) -> Result<S::Ok, S::Error> {
        Err(unsupported("a number"))
    }
    fn serialize_i64(self, _: i64) -> Result<S::Ok, S::Error> {
        Err(unsupported("a number"))
    }
    fn serialize_u8(self, _: u8) -> Result<S::Ok, S::Error> {
        Err(unsupported("a number"))
    }
    fn serialize_u16(self, _: u16) -> Result<S::Ok, S::Error> {
        Err(unsupported("a number"))
    }
    fn serialize_u32(self, _: u32) -> Result<S::Ok, S::Error> {
        Err(unsupported("a number"))
    }
    fn serialize_u64(self, _: u64) -> Result<S::Ok, S::Error> {
        Err(unsupported("a number"))
    }
    fn serialize_f32(self, _: f32) -> Result<S::Ok, S::Error> {
        Err(unsupported("a number"))
    }
    fn serialize_f64(self, _: f64) -> Result<S::Ok, S::Error> {
        Err(unsupported("a number"))
    }
    fn serialize_char(self, _: char) -> Result<S::Ok, S::Error> {
        Err(unsupported("a char"))
    }
    fn serialize_str(self, _: &str) -> Result<S::Ok, S::Error> {
        Err(unsupported("a string"))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<S::Ok, S::Error> {
        Err(unsupported("bytes"))
    }
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        Err(unsupported("an option"))
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<S::Ok, S::Error> {
        Err(unsupported("an option"))
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        Err(unsupported("a unit"))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<S::Ok, S::Error> {
        Err(unsupported("a unit struct"))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, _: &T) -> Result<S::Ok, S::Error> {
        Err(unsupported("a newtype struct"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Err(unsupported("a sequence"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, S::Error> {
        Err(unsupported("a tuple"))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, S::Error> {
        Err(unsupported("a tuple struct"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Err(unsupported("a map"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, S::Error> {
        Err(unsupported("a struct"))
    }
}

/// A struct variant's fields, after its tag, as entries of the object.
pub struct Fields<M>(M);

impl<M: SerializeMap> SerializeStructVariant for Fields<M> {
    type Ok = M::Ok;
    type Error = M::Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), M::Error> {
        self.0.serialize_entry(key, value)
    }

    fn end(self) -> Result<M::Ok, M::Error> {
        self.0.end()
    }
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for TagFirst<D> {
    type Error = D::Error;

    /// What the externally tagged derive asks for: the object is read here instead.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_map(Object { tag: self.tag, visitor })
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_any(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// Reads the tagged object and hands the enum's visitor its variant.
struct Object<V> {
    tag: &'static str,
    visitor: V,
}

/// The first key of an object: the tag, or another (kept for the fallback).
enum FirstKey {
    Tag,
    Other(String),
}

struct FirstKeySeed(&'static str);

impl<'de> DeserializeSeed<'de> for FirstKeySeed {
    type Value = FirstKey;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<FirstKey, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FirstKeySeed {
    type Value = FirstKey;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<FirstKey, E> {
        Ok(if v == self.0 { FirstKey::Tag } else { FirstKey::Other(v.to_owned()) })
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Object<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with a {:?} tag", self.tag)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<V::Value, A::Error> {
        match map.next_key_seed(FirstKeySeed(self.tag))? {
            None => Err(de::Error::missing_field(self.tag)),
            Some(FirstKey::Tag) => self.visitor.visit_enum(Rest(map)),
            Some(FirstKey::Other(first)) => {
                let mut object = serde_json::Map::new();
                object.insert(first, map.next_value()?);
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    object.insert(k, v);
                }
                let variant = match object.remove(self.tag) {
                    Some(v) => String::deserialize(v).map_err(de::Error::custom)?,
                    None => return Err(de::Error::missing_field(self.tag)),
                };
                self.visitor.visit_enum(Buffered { variant, rest: object, error: std::marker::PhantomData })
            }
        }
    }
}

/// The object after its tag: the tag's value names the variant, the rest are its fields.
struct Rest<A>(A);

impl<'de, A: MapAccess<'de>> EnumAccess<'de> for Rest<A> {
    type Error = A::Error;
    type Variant = Self;

    fn variant_seed<T: DeserializeSeed<'de>>(mut self, seed: T) -> Result<(T::Value, Self), A::Error> {
        let variant = self.0.next_value_seed(seed)?;
        Ok((variant, self))
    }
}

impl<'de, A: MapAccess<'de>> VariantAccess<'de> for Rest<A> {
    type Error = A::Error;

    fn unit_variant(mut self) -> Result<(), A::Error> {
        // As the tagged derive: other keys beside a unit variant's tag are passed over.
        while self.0.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        seed.deserialize(de::value::MapAccessDeserializer::new(self.0))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("an internally tagged wire enum has no tuple variants"))
    }

    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.0)
    }
}

/// An object whose tag was not its first key, read whole: the variant and the other keys.
struct Buffered<E> {
    variant: String,
    rest: serde_json::Map<String, serde_json::Value>,
    error: std::marker::PhantomData<E>,
}

impl<'de, E: de::Error> EnumAccess<'de> for Buffered<E> {
    type Error = E;
    type Variant = Self;

    fn variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<(T::Value, Self), E> {
        let variant: de::value::StrDeserializer<'_, E> = self.variant.as_str().into_deserializer();
        let v = seed.deserialize(variant)?;
        Ok((v, self))
    }
}

impl<'de, E: de::Error> VariantAccess<'de> for Buffered<E> {
    type Error = E;

    fn unit_variant(self) -> Result<(), E> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, E> {
        seed.deserialize(serde_json::Value::Object(self.rest)).map_err(E::custom)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, E> {
        Err(E::custom("an internally tagged wire enum has no tuple variants"))
    }

    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], visitor: V) -> Result<V::Value, E> {
        serde_json::Value::Object(self.rest).deserialize_map(visitor).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    /// What serde's own internally tagged derive makes of the same enum.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "t", rename_all = "kebab-case")]
    enum Derived {
        Unit,
        Fields {
            n: u32,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            text: Option<String>,
            inner: DerivedInner,
        },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "u", rename_all = "kebab-case")]
    enum DerivedInner {
        Yes { why: String },
        No,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(remote = "Self", rename_all = "kebab-case")]
    enum Mine {
        Unit,
        Fields {
            n: u32,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            text: Option<String>,
            inner: MineInner,
        },
    }
    tagged!(Mine, "t");

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(remote = "Self", rename_all = "kebab-case")]
    enum MineInner {
        Yes { why: String },
        No,
    }
    tagged!(MineInner, "u");

    fn pairs() -> Vec<(Derived, Mine)> {
        vec![
            (Derived::Unit, Mine::Unit),
            (
                Derived::Fields { n: 7, text: None, inner: DerivedInner::No },
                Mine::Fields { n: 7, text: None, inner: MineInner::No },
            ),
            (
                Derived::Fields { n: 0, text: Some("a \"b\"\n".into()), inner: DerivedInner::Yes { why: "x".into() } },
                Mine::Fields { n: 0, text: Some("a \"b\"\n".into()), inner: MineInner::Yes { why: "x".into() } },
            ),
        ]
    }

    /// Byte for byte what the tagged derive writes, and each reads the other's.
    #[test]
    fn encodes_as_the_tagged_derive_and_reads_its_lines() {
        for (derived, mine) in pairs() {
            let line = serde_json::to_string(&derived).unwrap();
            assert_eq!(serde_json::to_string(&mine).unwrap(), line);
            assert_eq!(serde_json::from_str::<Mine>(&line).unwrap(), mine, "{line}");
            assert_eq!(serde_json::from_str::<Derived>(&line).unwrap(), derived, "{line}");
        }
    }

    /// A tag that is not the first key, at either level, is found all the same; a unit variant's
    /// other keys are passed over, as the derive passes them.
    #[test]
    fn reads_a_tag_anywhere_in_its_object() {
        for line in [
            r#"{"n":3,"inner":{"why":"w","u":"yes"},"t":"fields"}"#,
            r#"{"t":"fields","inner":{"why":"w","u":"yes"},"n":3}"#,
            r#"{"inner":{"u":"yes","why":"w"},"t":"fields","n":3}"#,
        ] {
            let want = Mine::Fields { n: 3, text: None, inner: MineInner::Yes { why: "w".into() } };
            assert_eq!(serde_json::from_str::<Mine>(line).unwrap(), want, "{line}");
        }
        assert_eq!(serde_json::from_str::<Mine>(r#"{"t":"unit","extra":[1,{"a":2}]}"#).unwrap(), Mine::Unit);
        assert_eq!(serde_json::from_str::<Mine>(r#"{"extra":1,"t":"unit"}"#).unwrap(), Mine::Unit);
    }

    /// Bad lines fail with what is wrong, whichever way they are read.
    #[test]
    fn says_what_is_wrong_with_a_bad_object() {
        let err = |line: &str| serde_json::from_str::<Mine>(line).unwrap_err().to_string();
        assert!(err(r#"{"n":3}"#).contains("missing field `t`"), "{}", err(r#"{"n":3}"#));
        assert!(err("{}").contains("missing field `t`"), "{}", err("{}"));
        for line in [r#"{"t":"nope"}"#, r#"{"n":1,"t":"nope"}"#] {
            assert!(err(line).contains("unknown variant `nope`"), "{}", err(line));
        }
        for line in [r#"{"t":"fields","inner":{"u":"no"}}"#, r#"{"inner":{"u":"no"},"t":"fields"}"#] {
            assert!(err(line).contains("missing field `n`"), "{}", err(line));
        }
        assert!(err(r#"{"n":1,"t":5}"#).contains("invalid type"), "{}", err(r#"{"n":1,"t":5}"#));
        assert!(err(r#"{"t":5}"#).contains("invalid type"), "{}", err(r#"{"t":5}"#));
        assert!(err(r#""fields""#).contains("invalid type: string"), "{}", err(r#""fields""#));
        assert!(err(r#"{"t":"fields","n":"x","inner":{"u":"no"}}"#).contains("invalid type: string \"x\""));
    }
}
