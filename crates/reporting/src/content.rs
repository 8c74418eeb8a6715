//! Content digests of Phase C/D data: what "the same data" means when studies ran in
//! different folders (Phase D records its source paths, so the files' bytes differ while their
//! arrays do not).

use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

/// A recorded path with the study folder it was written in left out: `run1/phase_c/x.npz` and
/// `/tmp/run2/phase_c/x.npz` are both `<study>/phase_c/x.npz` (Phase D records its sources).
fn study_relative(text: &str) -> String {
    let parts: Vec<&str> = text.split('/').collect();
    match parts
        .iter()
        .position(|p| *p == "phase_c" || *p == "phase_d")
    {
        Some(k) if k > 0 => format!("<study>/{}", parts[k..].join("/")),
        _ => text.to_string(),
    }
}

fn normalise_paths(value: &mut Value) {
    match value {
        Value::String(s) => *s = study_relative(s),
        Value::Array(items) => items.iter_mut().for_each(normalise_paths),
        Value::Object(map) => map.values_mut().for_each(normalise_paths),
        _ => {}
    }
}

fn json_digest(text: &str) -> Option<String> {
    let mut value: Value = serde_json::from_str(text).ok()?;
    normalise_paths(&mut value);
    Some(runner::sha256_bytes(value.to_string().as_bytes()))
}

/// The SHA-256 of a data file's content: for an NPZ, of every member's bytes (the JSON
/// `_metadata` with recorded paths made study-relative); for a JSON file, of its value with
/// such paths; else of the file. Two studies run into different folders then agree.
pub(crate) fn digest(path: &Path) -> std::io::Result<String> {
    use npz_contract::confine;
    let io = |e: std::io::Error| e;
    let name = path.to_string_lossy();
    // Only a regular file is read (a FIFO or a device is refused, never waited on), never
    // through a link at its name; a JSON file is read whole only up to a cap.
    if name.ends_with(".json") {
        let text = confine::read_to_string_capped(path, confine::JSON_CAP).map_err(io)?;
        if let Some(d) = json_digest(&text) {
            return Ok(d);
        }
    }
    if name.ends_with(".npz") {
        let file = confine::open_regular(path).map_err(io)?;
        let bad = |e: zip::result::ZipError| {
            std::io::Error::other(format!("{}: not a readable NPZ: {e}", path.display()))
        };
        let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(bad)?;
        let mut names: Vec<String> = archive.file_names().map(str::to_string).collect();
        names.sort();
        let mut listing = String::new();
        for member in &names {
            let digest = if member == "_metadata.npy" {
                npz_contract::NpzReader::open(path)
                    .and_then(|mut r| r.read_string("_metadata"))
                    .ok()
                    .and_then(|t| json_digest(&t))
            } else {
                None
            };
            let digest = match digest {
                Some(d) => d,
                // Hashed as it inflates: memory stays at a chunk however large the member.
                None => {
                    let entry = archive.by_name(member).map_err(bad)?;
                    runner::sha256_reader(entry).map_err(io)?.0
                }
            };
            let _ = writeln!(listing, "{digest}  {member}");
        }
        return Ok(runner::sha256_bytes(listing.as_bytes()));
    }
    runner::sha256_reader(confine::open_regular(path)?)
        .map(|(sha, _)| sha)
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_paths_lose_their_study_folder() {
        assert_eq!(
            study_relative("/tmp/a b/phase_c/dose_1000/patched_train.npz"),
            "<study>/phase_c/dose_1000/patched_train.npz"
        );
        assert_eq!(study_relative("run/phase_d"), "<study>/phase_d");
        assert_eq!(study_relative("phase_c/x"), "phase_c/x");
        assert_eq!(study_relative("elsewhere/x"), "elsewhere/x");
    }
}
