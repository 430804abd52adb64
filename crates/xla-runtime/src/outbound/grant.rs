//! Origins, grants and the address check.
//!
//! A request is allowed when its origin (scheme, host, port) matches a host
//! the plugin's manifest asks for **and** a grant the operator gave the
//! connector instance. Loopback, private, link-local and other non-public
//! addresses are refused unless the operator's grant names that host
//! exactly (no wildcard), because a wildcard grant must never become a door
//! into the operator's own network.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A request's destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// Lower-case host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Port, the scheme's default when the URL has none.
    pub port: u16,
}

impl Origin {
    /// Parses `scheme://host[:port]` (a trailing `/` and path are ignored).
    pub fn parse(text: &str) -> Result<Origin, GrantError> {
        let grant = Grant::parse(text)?;
        match (grant.host, grant.port) {
            (HostPattern::Exact(host), PortPattern::Exact(port)) => Ok(Origin {
                scheme: grant.scheme,
                host,
                port,
            }),
            _ => Err(GrantError::new(text, "an origin cannot contain wildcards")),
        }
    }

    /// The origin of a request URI.
    pub fn from_uri(uri: &http::Uri) -> Option<Origin> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let host = uri
            .host()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = uri.port_u16().or_else(|| default_port(&scheme))?;
        Some(Origin { scheme, host, port })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// A grant or manifest host entry that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid origin `{text}`: {reason} (expected scheme://host[:port], e.g. https://acme.service-now.com)")]
pub struct GrantError {
    text: String,
    reason: String,
}

impl GrantError {
    fn new(text: &str, reason: &str) -> Self {
        GrantError {
            text: text.to_string(),
            reason: reason.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// Any host (`*`).
    Any,
    /// `*.example.com`: any subdomain, not the apex.
    Suffix(String),
    /// Exactly this host.
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Exact(u16),
}

/// An origin pattern: `https://acme.service-now.com`, `https://*.nexthink.cloud`,
/// `http://127.0.0.1:8080`, `http://localhost:*`, or `*`. In a manifest, `*`
/// means "wherever the operator grants" (a source at a customer-chosen URL);
/// in an operator's grant it means any public origin (never a non-public
/// address, which takes a grant naming it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    scheme: String,
    host: HostPattern,
    port: PortPattern,
    text: String,
}

impl Grant {
    /// Parses a grant.
    pub fn parse(text: &str) -> Result<Grant, GrantError> {
        let trimmed = text.trim();
        if trimmed == "*" {
            return Ok(Grant {
                scheme: "*".into(),
                host: HostPattern::Any,
                port: PortPattern::Any,
                text: trimmed.into(),
            });
        }
        let (scheme, rest) = trimmed
            .split_once("://")
            .ok_or_else(|| GrantError::new(text, "missing scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        let Some(default) = default_port(&scheme) else {
            return Err(GrantError::new(text, "the scheme must be http or https"));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.contains('@') {
            return Err(GrantError::new(text, "user info is not allowed"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| GrantError::new(text, "bad host or port"))?;
        let port = match port {
            None => PortPattern::Exact(default),
            Some("*") => PortPattern::Any,
            Some(p) => PortPattern::Exact(p.parse().map_err(|_| GrantError::new(text, "bad port"))?),
        };
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(GrantError::new(text, "a wildcard must be `*.` followed by a domain"));
            }
            HostPattern::Suffix(suffix.to_string())
        } else if host.is_empty() || host.contains('*') {
            return Err(GrantError::new(text, "bad host"));
        } else {
            HostPattern::Exact(host)
        };
        Ok(Grant {
            scheme,
            host,
            port,
            text: trimmed.into(),
        })
    }

    /// Whether `origin` matches this pattern.
    pub fn matches(&self, origin: &Origin) -> bool {
        let scheme_ok = self.scheme == "*" || self.scheme == origin.scheme;
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Exact(p) => p == origin.port,
        };
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Suffix(suffix) => origin
                .host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.ends_with('.') && head.len() > 1),
            HostPattern::Exact(host) => *host == origin.host,
        };
        scheme_ok && port_ok && host_ok
    }

    /// The one origin this grant allows, when it has no wildcard.
    pub fn origin(&self) -> Option<Origin> {
        match (&self.host, &self.port) {
            (HostPattern::Exact(host), PortPattern::Exact(port)) if self.scheme != "*" => Some(Origin {
                scheme: self.scheme.clone(),
                host: host.clone(),
                port: *port,
            }),
            _ => None,
        }
    }

    /// Whether this grant names `origin`'s host exactly, which is what it
    /// takes to allow a loopback or private address.
    pub fn names_exactly(&self, origin: &Origin) -> bool {
        matches!(&self.host, HostPattern::Exact(h) if *h == origin.host) && self.matches(origin)
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, Some(port))),
        Some(_) => None,
        None => Some((authority, None)),
    }
}

/// Whether an address is reachable only inside the operator's network (or
/// this machine): loopback, private, link-local, shared, unspecified,
/// multicast, broadcast or documentation ranges.
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_non_public_v4(v4),
        IpAddr::V6(v6) => is_non_public_v6(v6) || embedded_ipv4(v6).into_iter().any(is_non_public_v4),
    }
}

/// The IPv4 addresses an IPv6 address can lead to: a packet to it may be
/// translated, tunnelled or mapped to each of them, so it is only as public
/// as the least public one. Covers IPv4-mapped and -compatible (RFC 4291),
/// IPv4-translated (RFC 2765), NAT64's well-known prefix (RFC 6052), 6to4
/// (RFC 3056), Teredo's server and client (RFC 4380) and ISATAP interface
/// identifiers (RFC 5214).
fn embedded_ipv4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    let mut found = Vec::new();
    // ::a.b.c.d, ::ffff:a.b.c.d, ::ffff:0:a.b.c.d and 64:ff9b::a.b.c.d carry it in the low 32 bits.
    let low96_zero = s[..6].iter().all(|&x| x == 0);
    let mapped = s[..5].iter().all(|&x| x == 0) && s[5] == 0xffff;
    let translated = s[..4].iter().all(|&x| x == 0) && s[4] == 0xffff && s[5] == 0;
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0);
    if low96_zero || mapped || translated || nat64 {
        found.push(v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        found.push(v4(s[1], s[2]));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        found.push(v4(s[2], s[3]));
        found.push(v4(!s[6], !s[7]));
    }
    if (s[4] & 0xfdff) == 0 && s[5] == 0x5efe {
        found.push(v4(s[6], s[7]));
    }
    found
}

fn is_non_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240
}

fn is_non_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated, still routed inside sites)
        || (first == 0x0064 && ip.segments()[1] == 0xff9b && ip.segments()[2] == 0x0001) // local-use NAT64 (RFC 8215)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(s: &str) -> Origin {
        Origin::parse(s).expect("valid origin")
    }

    #[test]
    fn exact_grants_match_scheme_host_and_port() {
        let g = Grant::parse("https://acme.service-now.com").unwrap();
        assert!(g.matches(&origin("https://acme.service-now.com")));
        assert!(g.matches(&origin("https://ACME.service-now.com:443")));
        assert!(!g.matches(&origin("http://acme.service-now.com")));
        assert!(!g.matches(&origin("https://acme.service-now.com:8443")));
        assert!(!g.matches(&origin("https://evil.com")));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let g = Grant::parse("https://*.nexthink.cloud").unwrap();
        assert!(g.matches(&origin("https://acme.eu.nexthink.cloud")));
        assert!(!g.matches(&origin("https://nexthink.cloud")));
        assert!(!g.matches(&origin("https://evilnexthink.cloud")));
        assert!(!g.names_exactly(&origin("https://acme.eu.nexthink.cloud")));
        assert_eq!(g.origin(), None, "a wildcard is no one origin");
        let exact = Grant::parse("https://ACME.service-now.com/").unwrap();
        assert_eq!(exact.origin(), Some(origin("https://acme.service-now.com:443")));
    }

    #[test]
    fn bad_grants_are_refused_with_the_reason() {
        assert!(
            Grant::parse("acme.com")
                .unwrap_err()
                .to_string()
                .contains("missing scheme")
        );
        assert!(Grant::parse("ftp://acme.com").is_err());
        assert!(Grant::parse("https://user@acme.com").is_err());
        assert!(Grant::parse("https://acme.com:x").is_err());
        assert!(Grant::parse("https://*.").is_err());
    }

    #[test]
    fn private_ranges_are_non_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_non_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "151.101.1.1", "2606:4700::1111"] {
            assert!(!is_non_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn ipv6_forms_that_embed_a_private_ipv4_are_non_public() {
        for ip in [
            "::127.0.0.1",                          // IPv4-compatible
            "::ffff:10.0.0.1",                      // IPv4-mapped
            "::ffff:0:192.168.0.1",                 // IPv4-translated
            "64:ff9b::a9fe:a9fe",                   // NAT64 of 169.254.169.254
            "64:ff9b::127.0.0.1",                   // NAT64 of loopback
            "64:ff9b:1::8.8.8.8",                   // local-use NAT64: never public
            "2002:7f00:1::1",                       // 6to4 of 127.0.0.1
            "2002:a9fe:a9fe::",                     // 6to4 of the metadata address
            "2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo, client 127.0.0.1
            "2001:0:a00:1:8000:63bf:3fff:fdd2",     // Teredo, server 10.0.0.1
            "fe80::5efe:10.0.0.1",                  // ISATAP
            "2001:db9::200:5efe:192.168.1.1",       // ISATAP under a global prefix
            "fec0::1",                              // site-local
        ] {
            assert!(is_non_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["64:ff9b::8.8.8.8", "2002:808:808::1", "::ffff:151.101.1.1"] {
            assert!(!is_non_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn ipv6_origins_parse() {
        let o = origin("http://[::1]:8080");
        assert_eq!(o.host, "::1");
        assert_eq!(o.port, 8080);
    }
}
