//! Table API records read in one pass, borrowing from the body.
//!
//! A page of 10,000 records is a few megabytes of JSON. Reading it as a
//! `serde_json::Value` tree allocates a map and a string for every field of
//! every record, and the connector used to parse each body twice (once to
//! look for an error). Here a body is read once; field names and values
//! borrow from the body unless they hold escapes.

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// One record: its fields in wire order. A handful of fields per record, so a
/// linear search beats hashing.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Fields<'a> {
    fields: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// What object-shaped fields said beside their `value`, by field name:
    /// only for fields that arrived as objects (references with `link`,
    /// `sysparm_display_value=all` or `true`), so plain pages pay nothing.
    objects: Vec<(Cow<'a, str>, Extra<'a>)>,
}

/// What a field object holds beside its `value`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Extra<'a> {
    /// `display_value`: a reference's name (its table's display field), a
    /// choice's label, a date in the user's time zone.
    pub display: Option<Cow<'a, str>>,
    /// `link`: `{instance}/api/now/table/{table}/{sys_id}` of a reference.
    pub link: Option<Cow<'a, str>>,
}

impl<'a> Fields<'a> {
    /// A field's value as text: a string as is, a reference object
    /// (`{"value": .., "link": ..}`, `display_value=all`) as its `value`,
    /// another scalar in its JSON form; `None` when the field is missing.
    /// A name given twice keeps the last value, as JSON readers do.
    pub fn get(&self, name: &str) -> Option<&Cow<'a, str>> {
        self.fields
            .iter()
            .rev()
            .find(|(key, _)| same_name(key, name))
            .map(|(_, value)| value)
    }

    /// Whether the record has the field.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A field object's `display_value`, when the field arrived as an object
    /// that has one (`{"display_value": "Service Desk", "link": .., "value": ..}`).
    pub fn display(&self, name: &str) -> Option<&str> {
        self.extra(name).and_then(|e| e.display.as_deref())
    }

    /// The table a reference field's `link` names
    /// (`.../api/now/table/sys_user_group/6f2d...` gives `sys_user_group`).
    pub fn link_table(&self, name: &str) -> Option<&str> {
        let link = self.extra(name)?.link.as_deref()?;
        let (_, rest) = link.split_once("/table/")?;
        rest.split(['/', '?']).next().filter(|t| !t.is_empty())
    }

    fn extra(&self, name: &str) -> Option<&Extra<'a>> {
        self.objects
            .iter()
            .rev()
            .find(|(key, _)| same_name(key, name))
            .map(|(_, extra)| extra)
    }
}

/// `key == name`, rejecting on length and last byte before comparing the
/// rest: a lookup passes a dozen other field names, and in Wasm every full
/// comparison is a call to `memcmp`. The last byte tells apart names that
/// share a prefix (`assignment_group`, `assignment_group.name`).
fn same_name(key: &str, name: &str) -> bool {
    key.len() == name.len() && key.as_bytes().last() == name.as_bytes().last() && key == name
}

/// What a Table API body holds.
pub enum Body<'a> {
    /// `{"result": [...]}`, a bare list, or `{"result": {...}}` for one record.
    Records(Vec<Fields<'a>>),
    /// `{"error": {"message", "detail"}}`: `message (detail)`.
    Error(String),
    /// JSON of another shape; says what was expected.
    Shape(String),
}

/// Reads a body. `Err` when it is not JSON (truncated, garbled, HTML).
pub fn read(body: &[u8]) -> Result<Body<'_>, serde_json::Error> {
    // UTF-8 is checked once for the whole body, not once per string: a page
    // is a hundred thousand short strings. A body that is not UTF-8 is read
    // as bytes so the error says where.
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str::<Envelope<'_>>(text),
        Err(_) => serde_json::from_slice::<Envelope<'_>>(body),
    }
    .map(|envelope| envelope.0)
}

struct Envelope<'a>(Body<'a>);

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EnvelopeVisitor).map(Envelope)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Body<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Table API body")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Body<'de>, A::Error> {
        RecordsVisitor.visit_seq(seq).map(|records| records.0)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body<'de>, A::Error> {
        let mut result = None;
        let mut error = None;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key.0 {
                "result" => result = Some(map.next_value::<Records<'de>>()?),
                "error" => error = Some(map.next_value::<serde_json::Value>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match (error, result) {
            (Some(error), _) => Body::Error(error_message(&error)),
            (None, Some(records)) => records.0,
            (None, None) => Body::Shape("the body has no `result` list of records".into()),
        })
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Body<'de>, E> {
        Ok(Body::Shape("the body has no `result` list of records".into()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Body<'de>, E> {
        self.visit_str("")
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Body<'de>, E> {
        self.visit_str("")
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Body<'de>, E> {
        self.visit_str("")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Body<'de>, E> {
        self.visit_str("")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Body<'de>, E> {
        self.visit_str("")
    }
}

/// `message (detail)` of an error object.
fn error_message(error: &serde_json::Value) -> String {
    let text = |key: &str| {
        error
            .get(key)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
    };
    match (text("message"), text("detail")) {
        (Some(m), Some(d)) => format!("{m} ({d})"),
        (Some(m), None) => m.to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) => error.to_string(),
    }
}

/// The `result` member: a list of records or one record.
struct Records<'a>(Body<'a>);

impl<'de> Deserialize<'de> for Records<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RecordsVisitor)
    }
}

struct RecordsVisitor;

impl<'de> Visitor<'de> for RecordsVisitor {
    type Value = Records<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Records<'de>, A::Error> {
        let mut records = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(100_000));
        while let Some(record) = seq.next_element::<MaybeRecord<'de>>()? {
            match record {
                MaybeRecord::Record(fields) => records.push(fields),
                MaybeRecord::Other => {
                    let at = records.len();
                    // Read the rest so the body is still checked as JSON.
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    return Ok(Records(Body::Shape(format!("`result[{at}]` is not a record object"))));
                }
            }
        }
        Ok(Records(Body::Records(records)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Records<'de>, A::Error> {
        let fields = FieldsVisitor.visit_map(map)?;
        Ok(Records(Body::Records(vec![fields])))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Records<'de>, E> {
        Ok(Records(Body::Shape("the body has no `result` list of records".into())))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Records<'de>, E> {
        self.visit_unit()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Records<'de>, E> {
        self.visit_unit()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Records<'de>, E> {
        self.visit_unit()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Records<'de>, E> {
        self.visit_unit()
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Records<'de>, E> {
        self.visit_unit()
    }
}

/// An element of the result list: a record, or something that is not one.
enum MaybeRecord<'a> {
    Record(Fields<'a>),
    Other,
}

impl<'de> Deserialize<'de> for MaybeRecord<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MaybeVisitor;
        impl<'de> Visitor<'de> for MaybeVisitor {
            type Value = MaybeRecord<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a record object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MaybeRecord<'de>, A::Error> {
                FieldsVisitor.visit_map(map).map(MaybeRecord::Record)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeRecord<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeRecord::Other)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<MaybeRecord<'de>, E> {
                Ok(MaybeRecord::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeRecord<'de>, E> {
                Ok(MaybeRecord::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<MaybeRecord<'de>, E> {
                Ok(MaybeRecord::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<MaybeRecord<'de>, E> {
                Ok(MaybeRecord::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeRecord<'de>, E> {
                Ok(MaybeRecord::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<MaybeRecord<'de>, E> {
                Ok(MaybeRecord::Other)
            }
        }
        deserializer.deserialize_any(MaybeVisitor)
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16));
        let mut objects = Vec::new();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let value = map.next_value::<FieldValue<'de>>()?;
            if let Some(extra) = value.1 {
                objects.push((key.0.clone(), extra));
            }
            fields.push((key.0, value.0));
        }
        Ok(Fields { fields, objects })
    }
}

/// A string that borrows from the body unless it holds escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_string())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// A field's value as text (see [`Fields::get`]); null is empty. The second
/// member is what an object-shaped field said beside its value.
struct FieldValue<'a>(Cow<'a, str>, Option<Extra<'a>>);

impl<'de> Deserialize<'de> for FieldValue<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldValueVisitor)
    }
}

struct FieldValueVisitor;

impl<'de> Visitor<'de> for FieldValueVisitor {
    type Value = FieldValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field value")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<FieldValue<'de>, E> {
        Ok(FieldValue(Cow::Borrowed(s), None))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<FieldValue<'de>, E> {
        Ok(FieldValue(Cow::Owned(s.to_string()), None))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<FieldValue<'de>, E> {
        Ok(FieldValue(Cow::Owned(s), None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<FieldValue<'de>, E> {
        Ok(FieldValue(Cow::Borrowed(""), None))
    }

    fn visit_none<E: de::Error>(self) -> Result<FieldValue<'de>, E> {
        self.visit_unit()
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<FieldValue<'de>, E> {
        Ok(FieldValue(Cow::Borrowed(if b { "true" } else { "false" }), None))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<FieldValue<'de>, E> {
        Ok(FieldValue(Cow::Owned(n.to_string()), None))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<FieldValue<'de>, E> {
        Ok(FieldValue(Cow::Owned(n.to_string()), None))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<FieldValue<'de>, E> {
        Ok(FieldValue(
            Cow::Owned(serde_json::Number::from_f64(x).map_or_else(String::new, |n| n.to_string())),
            None,
        ))
    }

    /// A reference (`{"link", "value"}`) or `display_value=all` object: its
    /// `value`, with its `display_value` and `link` kept aside.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldValue<'de>, A::Error> {
        let mut value = Cow::Borrowed("");
        let mut extra = Extra::default();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key.0 {
                "value" => value = map.next_value::<FieldValue<'de>>()?.0,
                "display_value" => extra.display = Some(map.next_value::<FieldValue<'de>>()?.0),
                "link" => extra.link = Some(map.next_value::<FieldValue<'de>>()?.0),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(FieldValue(value, Some(extra)))
    }

    /// A list (no Table API field is one): its JSON text.
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<FieldValue<'de>, A::Error> {
        let list = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(FieldValue(Cow::Owned(list.to_string()), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(body: &str) -> Vec<Fields<'_>> {
        match read(body.as_bytes()).expect("JSON") {
            Body::Records(records) => records,
            Body::Error(m) | Body::Shape(m) => panic!("{m}"),
        }
    }

    #[test]
    fn reads_strings_references_and_scalars_as_text() {
        let body = r#"{"result":[{"number":"INC1","assignment_group":{"link":"https://x/api/now/table/sys_user_group/ab","value":"ab"},
            "state":{"display_value":"Resolved","value":"6"},"count":2,"ratio":6.5,"active":true,"empty":null,
            "quoted":"say \"hi\"","list":[1,"a"]}]}"#;
        let record = &records(body)[0];
        let text = |name: &str| record.get(name).map(|v| v.as_ref().to_string());
        assert_eq!(text("number").as_deref(), Some("INC1"));
        assert_eq!(text("assignment_group").as_deref(), Some("ab"));
        assert_eq!(text("state").as_deref(), Some("6"));
        assert_eq!(text("count").as_deref(), Some("2"));
        assert_eq!(text("ratio").as_deref(), Some("6.5"));
        assert_eq!(text("active").as_deref(), Some("true"));
        assert_eq!(text("empty").as_deref(), Some(""));
        assert_eq!(text("quoted").as_deref(), Some("say \"hi\""));
        assert_eq!(text("list").as_deref(), Some(r#"[1,"a"]"#));
        assert_eq!(text("missing"), None);
        assert!(
            matches!(record.get("number"), Some(Cow::Borrowed(_))),
            "plain strings borrow"
        );
    }

    #[test]
    fn reference_objects_keep_their_display_value_and_table() {
        // field case 04-servicenow-references-without-names.json: the three shapes.
        let body = r#"{"result":[{"assignment_group":{"display_value":"Service Desk",
            "link":"https://acme.service-now.com/api/now/table/sys_user_group/11aa","value":"11aa"},
            "business_service":{"link":"https://acme.service-now.com/api/now/table/cmdb_ci_service/90c4","value":"90c4"},
            "cmdb_ci":"","state":"6"}]}"#;
        let record = &records(body)[0];
        assert_eq!(record.get("assignment_group").map(|v| v.as_ref()), Some("11aa"));
        assert_eq!(record.display("assignment_group"), Some("Service Desk"));
        assert_eq!(record.link_table("assignment_group"), Some("sys_user_group"));
        assert_eq!(record.display("business_service"), None);
        assert_eq!(record.link_table("business_service"), Some("cmdb_ci_service"));
        assert_eq!(record.get("cmdb_ci").map(|v| v.as_ref()), Some(""));
        assert_eq!((record.display("state"), record.link_table("state")), (None, None));
    }

    #[test]
    fn one_record_a_bare_list_and_the_last_duplicate() {
        assert_eq!(records(r#"{"result":{"sys_id":"a"}}"#).len(), 1);
        assert_eq!(records(r#"[{"sys_id":"a"},{"sys_id":"b"}]"#).len(), 2);
        let record = &records(r#"{"result":[{"sys_id":"a","sys_id":"b"}]}"#)[0];
        assert_eq!(record.get("sys_id").map(|v| v.as_ref()), Some("b"));
    }

    #[test]
    fn errors_shapes_and_broken_json() {
        let error = r#"{"error":{"message":"Invalid table problemo","detail":null},"status":"failure"}"#;
        assert!(matches!(read(error.as_bytes()), Ok(Body::Error(m)) if m == "Invalid table problemo"));
        assert!(matches!(read(br#"{"rows":[]}"#), Ok(Body::Shape(_))));
        assert!(matches!(read(br#"{"result":[{"a":"b"},3]}"#), Ok(Body::Shape(m)) if m.contains("result[1]")));
        assert!(matches!(read(b"\"text\""), Ok(Body::Shape(_))));
        assert!(read(br#"{"result":[{"a":"b"},"#).is_err(), "truncated");
        assert!(read(b"<html></html>").is_err());
        // Bytes that are not UTF-8 inside a string: an error that says where.
        let garbled = read(b"{\"result\":[{\"number\":\"INC\xe9\"}]}")
            .err()
            .map(|e| e.to_string());
        assert!(
            garbled.is_some_and(|e| e.contains("column")),
            "the error names its place"
        );
        // Escapes still decode once the body is read as text.
        let escaped = read(br#"{"result":[{"short_description":"a \"quoted\" \u00e9"}]}"#);
        assert!(
            matches!(escaped, Ok(Body::Records(r)) if r[0].get("short_description").map(|v| v.as_ref()) == Some("a \"quoted\" \u{e9}"))
        );
    }
}
