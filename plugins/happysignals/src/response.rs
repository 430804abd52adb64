//! Survey responses to records.
//!
//! A response arrives as an API item (JSON: numbers, `null`, a list of
//! factors) or as a CSV row (all text, factors joined with `;`); both become
//! a [`Response`] over a JSON object and map the same way. A field the
//! mapping needs that does not parse is a [`PluginError::BadData`] naming the
//! response and the field; a dimension whose value is empty is left out.

use serde_json::{Map, Value};
use std::borrow::Cow;
use xla_sdk::time::parse_rfc3339_utc;
use xla_sdk::{Layer, Name, PluginError, Record};

/// One survey response, as the API or the CSV export gave it.
pub struct Response<'a> {
    fields: &'a Map<String, Value>,
    /// Its place in the body, to name a response without an id.
    position: usize,
}

/// Dimensions every observation of a response carries, and the fields they
/// come from.
const DIMENSIONS: [(&str, &str); 5] = [
    ("ticket", "ticket_number"),
    ("ticket_type", "ticket_type"),
    ("channel", "channel"),
    ("country", "country"),
    ("category", "category"),
];

impl<'a> Response<'a> {
    /// Wraps the `position`-th response of a body.
    pub fn new(fields: &'a Map<String, Value>, position: usize) -> Self {
        Response { fields, position }
    }

    /// A field as text: `""` when missing or null; numbers as written.
    pub fn text(&self, field: &str) -> Cow<'a, str> {
        match self.fields.get(field) {
            Some(Value::String(s)) => Cow::Borrowed(s.trim()),
            None | Some(Value::Null) => Cow::Borrowed(""),
            Some(other) => Cow::Owned(other.to_string()),
        }
    }

    /// How messages name the response: its id, else its position.
    pub fn label(&self) -> String {
        let id = self.text("id");
        if id.is_empty() {
            format!("response #{}", self.position)
        } else {
            format!("response `{id}`")
        }
    }

    fn bad(&self, field: &str, why: impl std::fmt::Display) -> PluginError {
        PluginError::BadData(format!("{}: field `{field}` {why}", self.label()))
    }

    /// The response id.
    pub fn id(&self) -> Result<String, PluginError> {
        let id = self.text("id");
        if id.is_empty() {
            return Err(self.bad("id", "is missing"));
        }
        Ok(id.into_owned())
    }

    /// `created` in unix ms.
    pub fn created(&self) -> Result<i64, PluginError> {
        let text = self.text("created");
        if text.is_empty() {
            return Err(self.bad("created", "is missing"));
        }
        parse_rfc3339_utc(&text).ok_or_else(|| {
            self.bad(
                "created",
                format!("`{text}` is not a UTC date-time like `2026-10-03T14:22:09Z`"),
            )
        })
    }

    fn score(&self) -> Result<f64, PluginError> {
        let text = self.text("score");
        let score: f64 = text
            .parse()
            .map_err(|_| self.bad("score", format!("`{text}` is not a number")))?;
        if !(0.0..=10.0).contains(&score) || score.fract() != 0.0 {
            return Err(self.bad("score", format!("`{text}` is not a whole number from 0 to 10")));
        }
        Ok(score)
    }

    fn lost_time(&self) -> Result<Option<f64>, PluginError> {
        let text = self.text("lost_time_minutes");
        if text.is_empty() {
            return Ok(None);
        }
        let minutes: f64 = text
            .parse()
            .map_err(|_| self.bad("lost_time_minutes", format!("`{text}` is not a number")))?;
        if !minutes.is_finite() || minutes < 0.0 {
            return Err(self.bad("lost_time_minutes", format!("`{text}` is not a number of minutes")));
        }
        Ok(Some(minutes))
    }

    /// The ticked factors: a list of strings, or one `;`-joined string (CSV).
    fn factors(&self) -> Result<Vec<String>, PluginError> {
        match self.fields.get("factors") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(text)) => Ok(text
                .split(';')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(String::from)
                .collect()),
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .filter_map(|(i, factor)| match factor {
                    Value::String(text) => {
                        let text = text.trim();
                        (!text.is_empty()).then(|| Ok(text.to_string()))
                    }
                    _ => Some(Err(self.bad("factors", format!("item {i} is not a string")))),
                })
                .collect(),
            Some(_) => Err(self.bad("factors", "is neither a list of strings nor text")),
        }
    }

    fn dimensions(&self) -> Vec<(Name, Name)> {
        DIMENSIONS
            .iter()
            .filter_map(|(dimension, field)| {
                let value = self.text(field);
                let value = if *dimension == "ticket_type" {
                    value.to_lowercase()
                } else {
                    value.into_owned()
                };
                (!value.is_empty()).then(|| (Name::from(*dimension), Name::from(value)))
            })
            .collect()
    }

    /// What the response says, in the metric vocabulary (`docs/metrics.md`):
    /// one record with id = the response id, at `created`, the ticket's
    /// dimensions once, `happiness_rating` and `lost_time_minutes` (when
    /// answered); then one record per ticked factor, `<id>#<factor>`, with
    /// the same dimensions plus `factor` and `factor_selected` = 1 (a factor
    /// is a dimension of its own value, so it cannot share the first record).
    pub fn records(&self) -> Result<Vec<Record>, PluginError> {
        let id = self.id()?;
        let at = self.created()?;
        let score = self.score()?;
        let lost_time = self.lost_time()?;
        let factors = self.factors()?;
        let dimensions = self.dimensions();
        let record = |id: String| Record {
            dimensions: dimensions.clone(),
            ..Record::new(id, at)
        };
        let mut answer = record(id.clone()).value("happiness_rating", Layer::Experience, score);
        if let Some(minutes) = lost_time {
            answer.push("lost_time_minutes", Layer::Experience, minutes);
        }
        let mut records = vec![answer];
        for factor in factors {
            records.push(record(format!("{id}#{factor}")).dim("factor", factor).value(
                "factor_selected",
                Layer::Experience,
                1.0,
            ));
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("an object"),
        }
    }

    #[test]
    fn bad_fields_are_named_with_the_response() {
        let base = json!({"id": "hs-1", "created": "2026-10-03T14:22:09Z", "score": 7});
        let cases = [
            ("score", json!(11)),
            ("score", json!(7.5)),
            ("score", json!("seven")),
            ("score", Value::Null),
            ("created", json!("2026-10-03 14:22:09")),
            ("lost_time_minutes", json!(-5)),
            ("lost_time_minutes", json!("an hour")),
            ("factors", json!([1])),
            ("factors", json!({"a": 1})),
        ];
        for (field, value) in cases {
            let mut fields = map(base.clone());
            fields.insert(field.into(), value.clone());
            match Response::new(&fields, 0).records() {
                Err(PluginError::BadData(m)) => {
                    assert!(m.contains("`hs-1`") && m.contains(&format!("`{field}`")), "{m}")
                }
                other => panic!("{field} = {value}: {other:?}"),
            }
        }
        let fields = map(json!({"score": 7}));
        match Response::new(&fields, 3).records() {
            Err(PluginError::BadData(m)) => assert!(m.contains("#3") && m.contains("`id`"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn text_fields_map_like_json_ones() {
        let json = map(json!({"id": "hs-1", "created": "2026-10-03T14:22:09Z", "score": 9,
            "lost_time_minutes": 15, "factors": ["Service was fast", "Easy to get help"],
            "ticket_number": "INC1", "ticket_type": "Incident", "channel": "", "country": "Finland"}));
        let text = map(json!({"id": "hs-1", "created": "2026-10-03T14:22:09Z", "score": "9",
            "lost_time_minutes": "15", "factors": "Service was fast;Easy to get help",
            "ticket_number": "INC1", "ticket_type": "Incident", "channel": "", "country": "Finland"}));
        let a = Response::new(&json, 0).records().expect("maps");
        let b = Response::new(&text, 0).records().expect("maps");
        assert_eq!(a, b);
        assert_eq!(a.len(), 3, "the answer and two factors");
        assert_eq!(a[0].values.len(), 2, "rating and lost time in one record");
        assert_eq!(
            a[0].text_dimensions(),
            [("ticket", "INC1"), ("ticket_type", "incident"), ("country", "Finland")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }
}
