//! A posted body read strictly: a JSON object that repeats a key is refused, as is a NUL
//! anywhere in it, so what is stored is exactly what was signed and sent.

use crate::web::error::ApiError;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Number, Value};
use std::fmt;

pub(crate) fn path_error(path: String, inner: impl fmt::Display) -> ApiError {
    if path.is_empty() || path == "." {
        ApiError::BadRequest(format!("invalid JSON body: {inner}"))
    } else {
        ApiError::BadRequest(format!("invalid JSON body: {path}: {inner}"))
    }
}

/// A JSON value read strictly: an object that repeats a key is refused (PostgreSQL's
/// JSONB would silently keep the last one, so what is stored would not be what was
/// signed and sent).
pub(crate) struct Strict(pub(crate) Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Strict, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a JSON number")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "the key {key:?} appears more than once in one object; send each key once"
                )));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Strings end up in JSONB and VARCHAR columns, where PostgreSQL refuses NUL: refused in
/// any string and any key, at any depth. `path` names `value` (`errors[0].message`).
pub(crate) fn no_nul_in(path: &mut String, key: &str, value: &Value) -> Result<(), ApiError> {
    if key.contains('\0') {
        return Err(ApiError::BadRequest(format!(
            "a key of the body ({}) must not contain NUL characters",
            path.replace('\0', "\\u0000")
        )));
    }
    match value {
        Value::String(s) if s.contains('\0') => Err(ApiError::BadRequest(format!(
            "{path} must not contain NUL characters"
        ))),
        Value::Array(items) => {
            let len = path.len();
            for (i, item) in items.iter().enumerate() {
                path.push_str(&format!("[{i}]"));
                no_nul_in(path, "", item)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(object) => {
            let len = path.len();
            for (k, v) in object {
                path.push('.');
                path.push_str(k);
                no_nul_in(path, k, v)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
