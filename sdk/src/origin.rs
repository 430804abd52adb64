//! Origins given in a connector's config (`instance_url`, `base_url`,
//! `results_origin`): what the operator grants to the instance, and what
//! every request of the connector is built from.
//!
//! An origin here is an absolute `https` URL with a host and nothing else:
//! no user or password (the host holds credentials, per granted origin), no
//! path, query or fragment (the connector knows its API's paths). Plain
//! `http` is accepted only for `127.0.0.1` and `localhost`, where the
//! simulators and tests run. A trailing `/` is allowed, since the URL
//! standard adds one anyway. Origins are compared as the URL standard's
//! origin (scheme, host, port: `https://a.example` and
//! `https://a.example:443` are one).

use crate::PluginError;
use crate::config::field_error;

/// Parses the origin given in config field `field`; `example` is how one
/// looks for this source, shown in the message when `text` is more than an
/// origin (`https://acme.service-now.com`).
///
/// Every refusal is a [`PluginError::Config`] naming the field (see
/// [`field_error`]): not a URL, not https (http outside loopback), no host,
/// credentials in the URL, or a path, query or fragment.
pub fn parse_origin(field: &str, text: &str, example: &str) -> Result<url::Url, PluginError> {
    let url = url::Url::parse(text).map_err(|e| field_error(field, format!("`{text}` is not a URL: {e}")))?;
    let host = url.host_str().unwrap_or_default();
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_name(host) => {}
        "http" => {
            return Err(field_error(
                field,
                format!("use https:// (plain http is only allowed for 127.0.0.1 and localhost), not `{url}`"),
            ));
        }
        other => return Err(field_error(field, format!("scheme `{other}` is not https"))),
    }
    if host.is_empty() {
        return Err(field_error(field, format!("`{url}` has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(field_error(
            field,
            "must not carry credentials; the operator grants origins (and any credential) in the host",
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(field_error(
            field,
            format!("give only an origin, like `{example}`, not `{text}`"),
        ));
    }
    Ok(url)
}

/// `https://host[:port]` of an origin, without a trailing slash: the prefix
/// of the connector's request URLs.
pub fn serialize(origin: &url::Url) -> String {
    origin.origin().ascii_serialization()
}

fn is_loopback_name(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "https://acme.example";

    fn refusal(text: &str) -> String {
        match parse_origin("instance_url", text, EXAMPLE) {
            Err(PluginError::Config(m)) => m,
            other => panic!("{text} is refused, not {other:?}"),
        }
    }

    #[test]
    fn accepts_origins_and_loopback_http() {
        for (text, origin) in [
            ("https://acme.service-now.com", "https://acme.service-now.com"),
            ("https://acme.service-now.com/", "https://acme.service-now.com"),
            ("https://acme.example:8443", "https://acme.example:8443"),
            ("https://acme.example:443", "https://acme.example"),
            ("http://127.0.0.1:8089", "http://127.0.0.1:8089"),
            ("http://localhost:8089/", "http://localhost:8089"),
        ] {
            let url = parse_origin("instance_url", text, EXAMPLE).expect(text);
            assert_eq!(serialize(&url), origin);
        }
    }

    #[test]
    fn refusals_name_the_field_and_the_fix() {
        for (text, says) in [
            ("acme.example", "is not a URL"),
            ("http://acme.example", "use https://"),
            ("ftp://acme.example", "scheme `ftp`"),
            ("https://admin:pw@acme.example", "must not carry credentials"),
            ("https://key@acme.example", "must not carry credentials"),
            (
                "https://acme.example/api/now",
                "give only an origin, like `https://acme.example`",
            ),
            ("https://acme.example/?X-Amz-Signature=1", "give only an origin"),
            ("https://acme.example/#top", "give only an origin"),
        ] {
            let m = refusal(text);
            assert!(
                m.starts_with("config field `instance_url`: ") && m.contains(says),
                "{text}: {m}"
            );
        }
    }
}
