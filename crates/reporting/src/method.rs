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
    let dirs = manifest["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|job| job["artifact_dir"].as_str().unwrap_or(""));
    name_of(root, manifest, dirs)
}

/// The naming rule of [`method_name`], given the manifest's fields (its jobs need not be in
/// it) and its jobs' folders.
fn name_of<'a>(root: &Path, manifest: &Value, dirs: impl Iterator<Item = &'a str>) -> String {
    let backend = manifest["backend"]
        .as_str()
        .unwrap_or("unknown")
        .to_string();
    if backend != "native" {
        return backend;
    }
    let locations = crate::pictures::locations(root, manifest);
    match native_algorithm(&locations, dirs) {
        Some(a) => format!("native:{a}"),
        None => backend,
    }
}

/// [`method_name`] of the artifact root `root`, its manifest streamed (checked as every
/// reader checks it) and only its jobs' folders kept: a sweep's manifest is hundreds of MB.
pub fn root_method_name(root: &Path) -> Result<String, crate::output::ReportError> {
    let mut dirs: Vec<String> = Vec::new();
    let head = crate::manifest::TrainingManifest::stream(root, |_, job| {
        dirs.push(job.artifact_dir.to_string_lossy().into_owned());
    })
    .map_err(crate::output::read_error)?;
    let manifest = serde_json::to_value(&head.manifest).expect("a parsed manifest serialises");
    Ok(name_of(root, &manifest, dirs.iter().map(String::as_str)))
}

/// The algorithm the first of the job dirs `dirs` (as the manifest records them) whose
/// `training_config.json` can be read resolved.
pub(crate) fn native_algorithm<'d>(
    locations: &crate::manifest::Locations,
    dirs: impl Iterator<Item = &'d str>,
) -> Option<String> {
    dirs.into_iter().find_map(|dir| {
        let dir = locations.job_dir(Path::new(dir)).ok()?;
        let text = npz_contract::confine::read_to_string_capped(
            &dir.join("training_config.json"),
            npz_contract::confine::JSON_CAP,
        )
        .ok()?;
        let config: Value = serde_json::from_str(&text).ok()?;
        config["solver"]["algorithm"].as_str().map(str::to_string)
    })
}
