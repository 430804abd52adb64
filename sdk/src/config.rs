//! Typed plugin configuration from the JSON string the host passes in.

use crate::PluginError;
use serde::de::DeserializeOwned;

/// Parses `json` into the plugin's config type.
///
/// A mistake becomes [`PluginError::Config`] naming the field path, e.g.
/// ``config field `auth.client_id`: missing field `client_id` ``.
pub fn parse_config<T: DeserializeOwned>(json: &str) -> Result<T, PluginError> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            PluginError::Config(format!("config: {inner}"))
        } else {
            PluginError::Config(format!("config field `{path}`: {inner}"))
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

    #[test]
    fn reports_malformed_json() {
        let err = parse_config::<Cfg>("{not json").unwrap_err();
        assert!(matches!(err, PluginError::Config(_)));
    }
}
