//! [`Name`]: a dimension key, dimension value or metric name of a
//! [`crate::Record`].
//!
//! A batch of ten thousand records names the same few hundred strings over
//! and over (`service`, `assignment_group`, `Service Desk`, `ticket_resolved`).
//! A connector writes its keys and metric names as literals, which cost no
//! allocation here; the host reads each distinct string of a batch once
//! (contract 0.2's names table) and shares it between the records that use
//! it, so that a batch is not twenty allocations per record on either side.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// A string that is a literal, owned, or shared. Compares, orders, hashes
/// and serialises as the `str` it holds, whatever its kind.
#[derive(Clone)]
pub struct Name(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Owned(String),
    Shared(Arc<str>),
}

impl Name {
    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Owned(s) => s,
            Repr::Shared(s) => s,
        }
    }

    /// Where the text lives and how long it is: equal for two `Name`s that
    /// are clones of one shared or literal string. While both are alive, two
    /// different texts never have the same address, so a cache keyed on it
    /// may skip hashing the text (the store does, within one commit).
    pub fn address(&self) -> (usize, usize) {
        let s = self.as_str();
        (s.as_ptr() as usize, s.len())
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Default for Name {
    fn default() -> Self {
        Name(Repr::Static(""))
    }
}

impl From<&'static str> for Name {
    fn from(s: &'static str) -> Self {
        Name(Repr::Static(s))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Self {
        Name(Repr::Owned(s))
    }
}

impl From<&String> for Name {
    fn from(s: &String) -> Self {
        Name(Repr::Owned(s.clone()))
    }
}

impl From<Arc<str>> for Name {
    fn from(s: Arc<str>) -> Self {
        Name(Repr::Shared(s))
    }
}

impl From<std::borrow::Cow<'static, str>> for Name {
    fn from(s: std::borrow::Cow<'static, str>) -> Self {
        match s {
            std::borrow::Cow::Borrowed(s) => Name(Repr::Static(s)),
            std::borrow::Cow::Owned(s) => Name(Repr::Owned(s)),
        }
    }
}

impl From<Name> for String {
    fn from(name: Name) -> String {
        match name.0 {
            Repr::Owned(s) => s,
            other => Name(other).as_str().to_string(),
        }
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Name> for str {
    fn eq(&self, other: &Name) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Name> for String {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Name::from)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Name {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <String as utoipa::PartialSchema>::schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Name {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_kind_is_the_text_it_holds() {
        let shared: Arc<str> = Arc::from("service");
        let kinds = [
            Name::from("service"),
            Name::from("service".to_string()),
            Name::from(shared.clone()),
        ];
        for name in &kinds {
            assert_eq!(name, "service");
            assert_eq!(name, &kinds[0]);
            assert_eq!(format!("{name}/{name:?}"), "service/\"service\"");
            assert_eq!(serde_json::to_string(name).expect("json"), "\"service\"");
        }
        let set: HashSet<&Name> = kinds.iter().collect();
        assert_eq!(set.len(), 1, "hashes as its text");
        assert!(set.contains(&Name::from("service")));
        let back: Name = serde_json::from_str("\"channel\"").expect("json");
        assert_eq!(back, "channel");
        let (a, b) = (Name::from("a"), Name::from("b".to_string()));
        assert_eq!(a.cmp(&b), std::cmp::Ordering::Less, "orders as its text");
    }

    #[test]
    fn clones_of_one_shared_string_share_an_address() {
        let a = Name::from(Arc::<str>::from("Service Desk"));
        let b = a.clone();
        assert_eq!(a.address(), b.address());
        let owned = Name::from("Service Desk".to_string());
        assert_ne!(a.address(), owned.address(), "equal text elsewhere is another address");
        assert_eq!(String::from(owned), "Service Desk");
    }
}
