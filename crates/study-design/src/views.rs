//! The two ways a study file gives an overlap view: a fraction f (`dense = 0.7`, spacing
//! threshold `(1 - f) N`, the original's form) or the overlap it must have
//! (`o60 = { overlap = 0.6 }`, realised by Phase D from the probe's measured diameter).

use crate::design::Design;
use crate::named::NamedValues;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// How far a view's realised overlap may lie from its target unless the view says otherwise.
pub const DEFAULT_OVERLAP_TOLERANCE: f64 = 0.05;

/// A view given by the overlap it must have.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OverlapTarget {
    /// Mean nearest-neighbour disc overlap, with the probe's measured diameter, that each split
    /// of the view must realise.
    pub overlap: f64,
    /// Largest accepted `|realised - overlap|`, per split.
    pub tolerance: f64,
}

/// One view as a study file gives it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum RawView {
    /// `name = f`, or `name = { fraction = f }`.
    Fraction(f64),
    /// `name = { overlap = o }` with an optional `tolerance`.
    Target(OverlapTarget),
}

/// The file form of `overlap_views`: names in file order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RawViews(pub Vec<(String, RawView)>);

impl RawViews {
    /// The design's two fields: every view in order (a target view's value is its target
    /// overlap) and the target views.
    pub(crate) fn split(self) -> (NamedValues, BTreeMap<String, OverlapTarget>) {
        let mut targets = BTreeMap::new();
        let values = self
            .0
            .into_iter()
            .map(|(name, view)| match view {
                RawView::Fraction(f) => (name, f),
                RawView::Target(t) => {
                    targets.insert(name.clone(), t);
                    (name, t.overlap)
                }
            })
            .collect();
        (NamedValues(values), targets)
    }
}

impl<'de> Deserialize<'de> for RawView {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ViewVisitor;
        impl<'de> Visitor<'de> for ViewVisitor {
            type Value = RawView;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "an overlap fraction (e.g. 0.7) or a table with the overlap the view must \
                     have (e.g. { overlap = 0.6 } or { overlap = 0.6, tolerance = 0.03 })",
                )
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawView, E> {
                Ok(RawView::Fraction(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawView, E> {
                Ok(RawView::Fraction(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawView, E> {
                Ok(RawView::Fraction(v as f64))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawView, A::Error> {
                let (mut overlap, mut tolerance, mut fraction) = (None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "overlap" => &mut overlap,
                        "tolerance" => &mut tolerance,
                        "fraction" => &mut fraction,
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown view key `{other}`: use `overlap` (with an optional \
                                 `tolerance`) or `fraction`"
                            )));
                        }
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom(format!("duplicate view key `{key}`")));
                    }
                    *slot = Some(map.next_value::<f64>()?);
                }
                match (overlap, fraction) {
                    (Some(_), Some(_)) => Err(de::Error::custom(
                        "a view gives both `overlap` and `fraction`: give one (the overlap it \
                         must have, or the fraction f of its spacing threshold (1 - f) N)",
                    )),
                    (None, Some(_)) if tolerance.is_some() => Err(de::Error::custom(
                        "`tolerance` belongs to an `overlap` target, not to a `fraction`",
                    )),
                    (None, Some(f)) => Ok(RawView::Fraction(f)),
                    (Some(o), None) => Ok(RawView::Target(OverlapTarget {
                        overlap: o,
                        tolerance: tolerance.unwrap_or(DEFAULT_OVERLAP_TOLERANCE),
                    })),
                    (None, None) => Err(de::Error::custom(
                        "a view table needs `overlap` (e.g. { overlap = 0.6 })",
                    )),
                }
            }
        }
        deserializer.deserialize_any(ViewVisitor)
    }
}

impl<'de> Deserialize<'de> for RawViews {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ViewsVisitor;
        impl<'de> Visitor<'de> for ViewsVisitor {
            type Value = RawViews;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a table of view names to overlap fractions or targets, e.g. \
                     {dense = 0.7, o60 = {overlap = 0.6}}",
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawViews, A::Error> {
                let mut views = Vec::new();
                // A set, not a scan of `views`: 50,000 names must not take seconds.
                let mut seen = std::collections::HashSet::new();
                while let Some(name) = map.next_key::<String>()? {
                    if !seen.insert(name.clone()) {
                        return Err(de::Error::custom(format!("duplicate name `{name}`")));
                    }
                    let view = map.next_value::<RawView>().map_err(|e| {
                        de::Error::custom(format!("overlap_views['{}']: {e}", name.escape_debug()))
                    })?;
                    views.push((name, view));
                }
                Ok(RawViews(views))
            }
        }
        deserializer.deserialize_map(ViewsVisitor)
    }
}

/// `overlap_views` as written back: a number per fraction view, a table per target view, so
/// that a design without targets writes exactly what it did before they existed.
pub(crate) struct ViewsExport<'a>(pub &'a Design);

impl Serialize for ViewsExport<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let design = self.0;
        let mut map = serializer.serialize_map(Some(design.overlap_views.0.len()))?;
        for (name, value) in design.overlap_views.iter() {
            match design.overlap_targets.get(name) {
                Some(target) => map.serialize_entry(name, target)?,
                None => map.serialize_entry(name, &value)?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RawViews, String> {
        #[derive(Deserialize)]
        struct File {
            overlap_views: RawViews,
        }
        toml::from_str::<File>(text)
            .map(|f| f.overlap_views)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn both_forms_parse_in_order() {
        let views = parse(
            "overlap_views = { dense = 0.7, o60 = { overlap = 0.6 }, one = 1, \
             f = { fraction = 0.2 }, t = { overlap = 0.1, tolerance = 0.02 } }",
        )
        .unwrap();
        let (values, targets) = views.split();
        assert_eq!(
            values.0,
            [
                ("dense".to_string(), 0.7),
                ("o60".to_string(), 0.6),
                ("one".to_string(), 1.0),
                ("f".to_string(), 0.2),
                ("t".to_string(), 0.1)
            ]
        );
        assert_eq!(
            targets.into_iter().collect::<Vec<_>>(),
            [
                (
                    "o60".to_string(),
                    OverlapTarget {
                        overlap: 0.6,
                        tolerance: DEFAULT_OVERLAP_TOLERANCE
                    }
                ),
                (
                    "t".to_string(),
                    OverlapTarget {
                        overlap: 0.1,
                        tolerance: 0.02
                    }
                )
            ]
        );
    }

    #[test]
    fn bad_view_tables_are_named() {
        let check = |text: &str, expected: &str| {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        };
        check(
            "overlap_views = { a = { overlap = 0.6, fraction = 0.7 } }",
            "overlap_views['a']: a view gives both `overlap` and `fraction`",
        );
        check(
            "overlap_views = { a = { overlap = 0.6, spacing = 3.0 } }",
            "overlap_views['a']: unknown view key `spacing`",
        );
        check(
            "overlap_views = { a = {} }",
            "overlap_views['a']: a view table needs `overlap`",
        );
        check(
            "overlap_views = { a = { fraction = 0.6, tolerance = 0.1 } }",
            "`tolerance` belongs to an `overlap` target",
        );
        check("overlap_views = { a = 'dense' }", "overlap_views['a']");
        check(
            "overlap_views = { a = { overlap = 'x' } }",
            "overlap_views['a']",
        );
    }
}
