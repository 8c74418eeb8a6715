//! An ordered `name -> number` map (overlap views, spacing thresholds) that keeps design order.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Named values in the order the design gives them, serialised as a JSON/TOML table.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct NamedValues(pub Vec<(String, f64)>);

impl NamedValues {
    /// The value named `name`, if any.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// Pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0.iter().map(|(n, v)| (n.as_str(), *v))
    }
}

impl Serialize for NamedValues {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for NamedValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NamedVisitor;
        impl<'de> Visitor<'de> for NamedVisitor {
            type Value = NamedValues;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of names to numbers, e.g. {dense = 0.7, sparse = 0.2}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut values = Vec::new();
                // A set, not a scan of `values`: 50,000 names must not take 27 s.
                let mut seen = std::collections::HashSet::new();
                while let Some((name, value)) = map.next_entry::<String, f64>()? {
                    if !seen.insert(name.clone()) {
                        return Err(serde::de::Error::custom(format!("duplicate name `{name}`")));
                    }
                    values.push((name, value));
                }
                Ok(NamedValues(values))
            }
        }
        deserializer.deserialize_map(NamedVisitor)
    }
}
