//! Which method an artifact root holds (`native:rpie`, `tensorflow`) and its folder name: what
//! the report titles its pictures with, and what the comparison and the review match roots by.

use serde_json::Value;
use std::path::Path;

/// `native:rpie` -> `native-rpie`: a method's folder name.
pub fn slug(method: &str) -> String {
    method
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The method an artifact root holds: its backend, and for the native one the algorithm its
/// jobs' `training_config.json` resolved (`native:rpie`).
pub fn method_name(root: &Path, manifest: &Value) -> String {
    let backend = manifest["backend"]
        .as_str()
        .unwrap_or("unknown")
        .to_string();
    if backend != "native" {
        return backend;
    }
    let locations = crate::pictures::locations(root, manifest);
    let algorithm = manifest["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|job| {
            let dir = crate::pictures::job_dir(&locations, job).ok()?;
            let text = npz_contract::confine::read_to_string_capped(
                &dir.join("training_config.json"),
                npz_contract::confine::JSON_CAP,
            )
            .ok()?;
            let config: Value = serde_json::from_str(&text).ok()?;
            config["solver"]["algorithm"].as_str().map(str::to_string)
        });
    match algorithm {
        Some(a) => format!("native:{a}"),
        None => backend,
    }
}
