//! `sonic_rs::Value` as an instance representation for the `jsonschema` crate.
//!
//! Parsing dominates validation time: `sonic-rs` parses FHIR resources about three times
//! faster than `serde_json` into `serde_json::Value`, and it keeps every number exactly as
//! written (`1.50` stays `1.50`, `1e400` is a number, not an error). `jsonschema` validates
//! any representation that implements its `json` traits; this module is that glue and
//! nothing else.
//!
//! Objects are member lists, so a document may hold a name twice. JSON Schema tools in the
//! wild (ajv on `JSON.parse`) see only the last value, so [`dedupe`] rewrites such documents
//! before validation to keep verdicts identical.

use std::borrow::Cow;

use jsonschema::JsonType;
use jsonschema::json::{Array, Json, JsonNumber, Node, NodeIdentity, Object};
use sonic_rs::{JsonContainerTrait, JsonValueTrait, RawNumber};

/// Marker type naming the `sonic_rs::Value` representation.
pub struct Sonic;

impl Json for Sonic {
    type Node<'a> = &'a sonic_rs::Value;
    type PreparedKey = String;
    type StringBuffer = Option<sonic_rs::Value>;

    // Lookups scan the member list, so a members pass is cheaper almost always.
    const KEYS_PER_LOOKUP: usize = 64;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> String {
        key.to_owned()
    }

    fn with_string_node<T>(
        buffer: &mut Option<sonic_rs::Value>,
        string: &str,
        f: impl FnOnce(&sonic_rs::Value) -> T,
    ) -> T {
        let node = buffer.insert(sonic_rs::Value::copy_str(string));
        f(node)
    }
}

/// A number exactly as the document wrote it.
pub struct SonicNumber(RawNumber);

impl SonicNumber {
    fn text(&self) -> &str {
        self.0.as_str()
    }
}

impl JsonNumber for SonicNumber {
    fn as_u64(&self) -> Option<u64> {
        self.text().parse().ok()
    }

    fn as_i64(&self) -> Option<i64> {
        self.text().parse().ok()
    }

    fn as_f64(&self) -> Option<f64> {
        self.text().parse().ok()
    }

    fn as_str(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.text())
    }

    fn to_number(&self) -> Cow<'_, serde_json::Number> {
        Cow::Owned(to_serde_number(self.text()))
    }
}

/// `serde_json` without `arbitrary_precision` holds no number beyond `f64`; those saturate.
/// Only error construction reaches here, and onramp words its messages from the document.
fn to_serde_number(text: &str) -> serde_json::Number {
    if let Ok(number) = serde_json::from_str::<serde_json::Number>(text) {
        return number;
    }
    let value: f64 = text.parse().unwrap_or(0.0);
    serde_json::Number::from_f64(f64::MAX.copysign(value)).unwrap_or_else(|| 0.into())
}

impl<'a> Node<'a, Sonic> for &'a sonic_rs::Value {
    type Object = &'a sonic_rs::Object;
    type Array = &'a [sonic_rs::Value];
    type Number = SonicNumber;

    fn as_object(&self) -> Option<&'a sonic_rs::Object> {
        JsonContainerTrait::as_object(*self)
    }

    fn as_array(&self) -> Option<&'a [sonic_rs::Value]> {
        JsonContainerTrait::as_array(*self).map(|array| &array[..])
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        JsonValueTrait::as_str(*self).map(Cow::Borrowed)
    }

    fn as_number(&self) -> Option<SonicNumber> {
        JsonValueTrait::as_raw_number(*self).map(SonicNumber)
    }

    fn is_number(&self) -> bool {
        JsonValueTrait::is_number(*self)
    }

    fn as_boolean(&self) -> Option<bool> {
        JsonValueTrait::as_bool(*self)
    }

    fn is_null(&self) -> bool {
        JsonValueTrait::is_null(*self)
    }

    fn is_string(&self) -> bool {
        JsonValueTrait::is_str(*self)
    }

    fn json_type(&self) -> JsonType {
        match JsonValueTrait::get_type(*self) {
            sonic_rs::JsonType::Null => JsonType::Null,
            sonic_rs::JsonType::Boolean => JsonType::Boolean,
            sonic_rs::JsonType::Number => JsonType::Number,
            sonic_rs::JsonType::String => JsonType::String,
            sonic_rs::JsonType::Array => JsonType::Array,
            sonic_rs::JsonType::Object => JsonType::Object,
        }
    }

    // `const` and `enum` compare on every `resourceType` and coded element: keep the common
    // scalar cases off the allocating `to_value` path.
    fn equals_value(&self, expected: &serde_json::Value) -> bool {
        match expected {
            serde_json::Value::String(expected) => JsonValueTrait::as_str(*self) == Some(expected),
            serde_json::Value::Bool(expected) => JsonValueTrait::as_bool(*self) == Some(*expected),
            serde_json::Value::Null => JsonValueTrait::is_null(*self),
            serde_json::Value::Number(expected) => Node::<Sonic>::as_number(self)
                .is_some_and(|number| jsonschema::json::cmp::equal_numbers(&number, expected)),
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                jsonschema::json::cmp::equal(&to_serde(self), expected)
            }
        }
    }

    fn to_value(&self) -> Cow<'a, serde_json::Value> {
        Cow::Owned(to_serde(self))
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::new(std::ptr::from_ref(*self) as usize))
    }
}

/// The document as a `serde_json::Value`, for the cold paths that need one.
pub fn to_serde(value: &sonic_rs::Value) -> serde_json::Value {
    use serde_json::Value;
    match JsonValueTrait::get_type(value) {
        sonic_rs::JsonType::Null => Value::Null,
        sonic_rs::JsonType::Boolean => Value::Bool(value.as_bool().unwrap_or_default()),
        sonic_rs::JsonType::Number => value.as_raw_number().map_or(Value::Null, |number| {
            Value::Number(to_serde_number(number.as_str()))
        }),
        sonic_rs::JsonType::String => Value::String(value.as_str().unwrap_or_default().to_owned()),
        sonic_rs::JsonType::Array => Value::Array(
            value
                .as_array()
                .map(|items| items.iter().map(to_serde).collect())
                .unwrap_or_default(),
        ),
        sonic_rs::JsonType::Object => Value::Object(
            value
                .as_object()
                .map(|members| {
                    members
                        .iter()
                        .map(|(name, member)| (name.to_owned(), to_serde(member)))
                        .collect()
                })
                .unwrap_or_default(),
        ),
    }
}

impl<'a> Object<'a, Sonic> for &'a sonic_rs::Object {
    type Node = &'a sonic_rs::Value;
    type MemberName = &'a str;
    type MembersIter = sonic_rs::value::object::Iter<'a>;

    fn len(&self) -> usize {
        sonic_rs::Object::len(self)
    }

    fn get(&self, key: &String) -> Option<&'a sonic_rs::Value> {
        sonic_rs::Object::get(self, key)
    }

    fn members(&self) -> sonic_rs::value::object::Iter<'a> {
        sonic_rs::Object::iter(self)
    }
}

impl<'a> Array<'a, Sonic> for &'a [sonic_rs::Value] {
    type Node = &'a sonic_rs::Value;
    type ElementsIter = std::slice::Iter<'a, sonic_rs::Value>;

    fn len(&self) -> usize {
        <[sonic_rs::Value]>::len(self)
    }

    fn elements(&self) -> std::slice::Iter<'a, sonic_rs::Value> {
        self.iter()
    }
}

/// Rewrite every object that names a member twice so that only the last value remains, as
/// `JSON.parse` does. Returns where names were repeated (the JSON pointer of each repeated
/// member), in document order, and whether any object has a `_name` member (a primitive's
/// id and extensions, which the walkers look for only in documents that have them); a
/// document without duplicates (nearly all) is only read, in one pass.
pub fn dedupe(value: &mut sonic_rs::Value) -> (Vec<String>, bool) {
    let mut companions = false;
    if !has_duplicates(value, &mut companions) {
        return (Vec::new(), companions);
    }
    let mut repeated = Vec::new();
    find_repeats(value, &mut String::new(), &mut repeated);
    rewrite(value);
    (repeated, has_companions(value))
}

fn find_repeats(value: &sonic_rs::Value, pointer: &mut String, out: &mut Vec<String>) {
    let escape = |name: &str| name.replace('~', "~0").replace('/', "~1");
    if let Some(object) = value.as_object() {
        let mut names: Vec<&str> = Vec::with_capacity(object.len());
        for (name, member) in object.iter() {
            if names.contains(&name)
                && !out
                    .iter()
                    .any(|p| *p == format!("{pointer}/{}", escape(name)))
            {
                out.push(format!("{pointer}/{}", escape(name)));
            }
            names.push(name);
            let length = pointer.len();
            pointer.push('/');
            pointer.push_str(&escape(name));
            find_repeats(member, pointer, out);
            pointer.truncate(length);
        }
    } else if let Some(items) = value.as_array() {
        for (index, item) in items.iter().enumerate() {
            let length = pointer.len();
            pointer.push('/');
            pointer.push_str(&index.to_string());
            find_repeats(item, pointer, out);
            pointer.truncate(length);
        }
    }
}

/// Whether any object of the document has a member named `_…` (a primitive's id and
/// extensions): the walkers look for such companions only in documents that have them.
pub fn has_companions(value: &sonic_rs::Value) -> bool {
    match value.get_type() {
        sonic_rs::JsonType::Object => value.as_object().is_some_and(|object| {
            object
                .iter()
                .any(|(name, member)| name.starts_with('_') || has_companions(member))
        }),
        sonic_rs::JsonType::Array => value
            .as_array()
            .is_some_and(|items| items.iter().any(has_companions)),
        _ => false,
    }
}

/// Whether some object names a member twice; notes in `companions` whether a `_name`
/// member was seen (complete only when the answer is no: the walk stops at a repeat).
fn has_duplicates(value: &sonic_rs::Value, companions: &mut bool) -> bool {
    // One type check per node: this walk runs on every document.
    match value.get_type() {
        sonic_rs::JsonType::Object => value
            .as_object()
            .is_some_and(|object| object_has_duplicates(object, companions)),
        sonic_rs::JsonType::Array => value
            .as_array()
            .is_some_and(|items| items.iter().any(|item| has_duplicates(item, companions))),
        _ => false,
    }
}

fn object_has_duplicates(object: &sonic_rs::Object, companions: &mut bool) -> bool {
    // FHIR objects are small: compare names on the stack; sort only the rare big object.
    const SMALL: usize = 24;
    let mut names = [""; SMALL];
    for (count, (name, member)) in object.iter().enumerate() {
        if count == SMALL {
            *companions |= object.iter().any(|(name, _)| name.starts_with('_'));
            return has_duplicates_sorted(object)
                || object.iter().any(|(_, m)| has_duplicates(m, companions));
        }
        *companions |= name.starts_with('_');
        if names[..count].contains(&name) || has_duplicates(member, companions) {
            return true;
        }
        names[count] = name;
    }
    false
}

fn has_duplicates_sorted(object: &sonic_rs::Object) -> bool {
    let mut names: Vec<&str> = object.iter().map(|(name, _)| name).collect();
    names.sort_unstable();
    names.windows(2).any(|pair| pair[0] == pair[1])
}

/// Re-parse the document from text in which every object keeps one member per name: at its
/// first position, with its last value (what `JSON.parse` builds). Building the text keeps
/// member order, which sonic-rs's owned objects would not.
fn rewrite(value: &mut sonic_rs::Value) {
    let mut text = String::new();
    write_deduped(value, &mut text);
    if let Ok(rebuilt) = sonic_rs::from_str(&text) {
        *value = rebuilt;
    }
}

fn write_deduped(value: &sonic_rs::Value, out: &mut String) {
    if let Some(object) = value.as_object() {
        let members: Vec<(&str, &sonic_rs::Value)> = object.iter().collect();
        out.push('{');
        let mut first = true;
        for (position, (name, _)) in members.iter().enumerate() {
            if members[..position]
                .iter()
                .any(|(earlier, _)| earlier == name)
            {
                continue;
            }
            let last = members
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map_or(&members[position].1, |(_, v)| v);
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&sonic_rs::to_string(name).unwrap_or_default());
            out.push(':');
            write_deduped(last, out);
        }
        out.push('}');
    } else if let Some(items) = value.as_array() {
        out.push('[');
        for (index, item) in items.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            write_deduped(item, out);
        }
        out.push(']');
    } else {
        out.push_str(&sonic_rs::to_string(value).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> sonic_rs::Value {
        sonic_rs::from_str(text).expect("well-formed")
    }

    #[test]
    fn the_adapter_meets_the_validator_contract() {
        let document = jsonschema::json::conformance::document().to_string();
        let value = parse(&document);
        jsonschema::json::conformance::assert_conformance::<Sonic>(&&value);
    }

    #[test]
    fn dedupe_keeps_the_last_value_at_every_depth() {
        let mut value = parse(r#"{"a":1,"b":[{"x":1,"x":{"y":1,"y":2}}],"a":3}"#);
        assert_eq!(dedupe(&mut value).0, ["/b/0/x", "/b/0/x/y", "/a"]);
        assert_eq!(
            sonic_rs::to_string(&value).expect("serializes"),
            r#"{"a":3,"b":[{"x":{"y":2}}]}"#
        );
        let mut numbers = parse(r#"{"v":1,"w":1.50,"v":1e400}"#);
        assert!(!dedupe(&mut numbers).0.is_empty());
        assert_eq!(
            sonic_rs::to_string(&numbers).expect("serializes"),
            r#"{"v":1e400,"w":1.50}"#
        );
    }

    #[test]
    fn dedupe_leaves_documents_without_repeats_alone() {
        let mut value = parse(r#"{"a":1,"b":[{"x":1,"y":2}]}"#);
        assert_eq!(dedupe(&mut value), (Vec::new(), false));
        let mut value = parse(r#"{"a":1,"b":[{"x":1,"_y":{"id":"i"}}]}"#);
        assert_eq!(dedupe(&mut value), (Vec::new(), true));
    }

    #[test]
    fn big_objects_are_checked_too() {
        let members: Vec<String> = (0..40).map(|i| format!(r#""k{i}":{i}"#)).collect();
        let mut value = parse(&format!("{{{},\"k3\":0}}", members.join(",")));
        assert_eq!(dedupe(&mut value).0, ["/k3"]);
        assert_eq!(value.get("k3").and_then(|v| v.as_u64()), Some(0));
    }
}
