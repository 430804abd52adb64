//! Typed plugin configuration and scorer parameters from the JSON string
//! the host passes in, and the one shape of a config error.

use crate::PluginError;
use serde::de::DeserializeOwned;

/// Parses `json` into the plugin's config type.
///
/// A mistake becomes [`PluginError::Config`] naming the field path, e.g.
/// ``config field `auth.client_id`: missing field `client_id` ``.
pub fn parse_config<T: DeserializeOwned>(json: &str) -> Result<T, PluginError> {
    parse_labelled(json, "config")
}

/// Parses a scorer's `parameters` into its parameter type; an empty string
/// reads as `{}`, so a type whose fields all have defaults needs no
/// parameters at all.
///
/// A mistake becomes [`PluginError::Config`] naming the field path, e.g.
/// ``parameters field `weights.experience`: invalid type: string "x", expected f64``.
pub fn parse_parameters<T: DeserializeOwned>(json: &str) -> Result<T, PluginError> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    parse_labelled(json, "parameters")
}

/// A [`PluginError::Config`] naming the field, in the shape every config
/// error has: ``config field `page_size`: must be between 1 and 1000, not 0``.
/// `field` is the path as the operator writes it (`tables[1]`, `auth.scope`).
pub fn field_error(field: &str, message: impl std::fmt::Display) -> PluginError {
    PluginError::Config(format!("config field `{field}`: {message}"))
}

fn parse_labelled<T: DeserializeOwned>(json: &str, label: &str) -> Result<T, PluginError> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            PluginError::Config(format!("{label}: {inner}"))
        } else {
            PluginError::Config(format!("{label} field `{path}`: {inner}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cfg {
        base_url: String,
        page: Page,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Page {
        size: u32,
    }

    #[test]
    fn names_the_field_that_is_wrong() {
        let err = parse_config::<Cfg>(r#"{"base_url":"x","page":{"size":"ten"}}"#).unwrap_err();
        let PluginError::Config(msg) = err else {
            panic!("expected a config error, got {err:?}")
        };
        assert!(msg.contains("page.size"), "{msg}");
    }

    #[derive(serde::Deserialize, Debug, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Params {
        limit: u32,
    }

    #[test]
    fn empty_parameters_read_as_an_empty_object() {
        assert_eq!(parse_parameters::<Params>("").unwrap().limit, 0);
        assert_eq!(parse_parameters::<Params>("  ").unwrap().limit, 0);
        assert_eq!(parse_parameters::<Params>("{\"limit\":3}").unwrap().limit, 3);
    }

    #[test]
    fn parameter_errors_say_parameters() {
        let err = parse_parameters::<Params>(r#"{"limit":"many"}"#).unwrap_err();
        assert!(err.to_string().contains("parameters field `limit`"), "{err}");
        let err = parse_parameters::<Params>(r#"{"limt":3}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `limt`"), "{err}");
    }

    #[test]
    fn reports_malformed_json() {
        let err = parse_config::<Cfg>("{not json").unwrap_err();
        assert!(matches!(err, PluginError::Config(_)));
    }
}
