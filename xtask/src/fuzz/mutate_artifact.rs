//! Seeded mutations of one file of an artifact root: JSON-aware (a field deleted, a type
//! changed, extreme numbers, long strings, deep nesting, a duplicated entry or key, hostile
//! paths and names), byte-level (truncation, bit flips, emptied) and on the file system (the
//! file replaced by a link leading outside the root, a FIFO, a folder, or removed; a folder
//! replaced by a link to a copy outside the root).

use super::mutate::Rng;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Every kind of mutation, in a fixed order (the order of [`KINDS`] is part of the seed's
/// meaning: reordering changes which case a seed gives).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A member of an object removed.
    DeleteField,
    /// A value replaced by one of another type.
    ChangeType,
    /// A number (or a value) replaced by an extreme, negative or non-finite one.
    Number,
    /// A string of 1 MiB.
    LongString,
    /// A value replaced by arrays or objects nested far deeper than any parser's limit.
    DeepNesting,
    /// An array element repeated (a job listed twice).
    DuplicateEntry,
    /// An object key repeated with another value.
    DuplicateKey,
    /// A string replaced by a path that climbs out, is absolute or names a device.
    PathValue,
    /// A string given a newline, a NUL, or a separator.
    OddName,
    /// The file cut short.
    Truncate,
    /// A few bits flipped.
    FlipBits,
    /// The file emptied.
    Empty,
    /// The file replaced by a symbolic link to a copy of it outside the root (or a device).
    Symlink,
    /// The file replaced by a FIFO (which must never be opened blocking).
    Fifo,
    /// The file replaced by a folder.
    Directory,
    /// The file removed.
    Remove,
    /// The file's folder replaced by a symbolic link to a copy of it outside the root.
    DirSymlink,
}

/// All kinds; JSON kinds apply to JSON files only.
pub const KINDS: [Kind; 17] = [
    Kind::DeleteField,
    Kind::ChangeType,
    Kind::Number,
    Kind::LongString,
    Kind::DeepNesting,
    Kind::DuplicateEntry,
    Kind::DuplicateKey,
    Kind::PathValue,
    Kind::OddName,
    Kind::Truncate,
    Kind::FlipBits,
    Kind::Empty,
    Kind::Symlink,
    Kind::Fifo,
    Kind::Directory,
    Kind::Remove,
    Kind::DirSymlink,
];

impl Kind {
    /// Needs a file that parses as JSON.
    pub fn is_json(self) -> bool {
        matches!(
            self,
            Kind::DeleteField
                | Kind::ChangeType
                | Kind::Number
                | Kind::LongString
                | Kind::DeepNesting
                | Kind::DuplicateEntry
                | Kind::DuplicateKey
                | Kind::PathValue
                | Kind::OddName
        )
    }
    /// A short name for the summary and reproducers.
    pub fn name(self) -> &'static str {
        match self {
            Kind::DeleteField => "delete-field",
            Kind::ChangeType => "change-type",
            Kind::Number => "number",
            Kind::LongString => "long-string",
            Kind::DeepNesting => "deep-nesting",
            Kind::DuplicateEntry => "duplicate-entry",
            Kind::DuplicateKey => "duplicate-key",
            Kind::PathValue => "path-value",
            Kind::OddName => "odd-name",
            Kind::Truncate => "truncate",
            Kind::FlipBits => "flip-bits",
            Kind::Empty => "empty",
            Kind::Symlink => "symlink",
            Kind::Fifo => "fifo",
            Kind::Directory => "directory",
            Kind::Remove => "remove",
            Kind::DirSymlink => "dir-symlink",
        }
    }
}

/// What one case changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    /// The file (or, for [`Kind::DirSymlink`], the file whose folder was replaced), relative
    /// to the root.
    pub file: PathBuf,
    /// The kind applied.
    pub kind: Kind,
    /// What exactly: the JSON pointer and value, the cut, the link's target.
    pub detail: String,
}

impl Mutation {
    /// The folder [`Kind::DirSymlink`] made a link, relative to the root (`None` for the
    /// other kinds, and when the file was at the root and was linked itself).
    pub fn linked_dir(&self) -> Option<PathBuf> {
        let parent = self.file.parent()?;
        (self.kind == Kind::DirSymlink && !parent.as_os_str().is_empty())
            .then(|| parent.to_path_buf())
    }
}

/// Raw JSON put in place of a number: extremes, beyond f64 and u64, negative, non-finite
/// spelled as strings, and `NaN` as Python's json writes it (not JSON).
const NUMBERS: [&str; 16] = [
    "1e308",
    "-1e308",
    "1e999",
    "-1",
    "0",
    "-0.0",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "4294967296",
    "5e-324",
    "0.5",
    "\"NaN\"",
    "\"inf\"",
    "\"-Infinity\"",
    "NaN",
];

/// Values of another type.
const OTHER_TYPES: [&str; 9] = [
    "null",
    "true",
    "0",
    "-1",
    "\"x\"",
    "[]",
    "{}",
    "[1, 2]",
    "{\"a\": 1}",
];

/// Path values; `{outside}` is the absolute path of the case's folder outside the root. No
/// value names a real system file: a harness or a product bug that wrote through one would
/// damage the machine (a test of an earlier version of this harness overwrote /etc/passwd
/// through a link). `{outside}/passwd` is a decoy, and a write there is a finding.
const PATHS: [&str; 12] = [
    "../../etc/passwd",
    "{outside}/passwd",
    "/dev/zero",
    "{outside}/victim.json",
    "{outside}",
    "../../../outside/victim.json",
    "dose_1000/../../../../outside/victim.json",
    "..",
    ".",
    "",
    "a/../../b",
    "native_bundle.npz/../../../../../../tmp/x",
];

/// Names a folder or a line of a report must not take.
const NAMES: [&str; 8] = [
    "dense\nbaseline",
    "dense\n| injected | row |",
    "a\u{0}b",
    "a/b",
    "..",
    " ",
    "x\r\ny",
    "\u{202e}gnp.exe",
];

/// Picks the file and kind of case `rng`: JSON files get JSON kinds most of the time;
/// any file gets the byte and file-system kinds.
pub fn pick(files: &[(PathBuf, bool)], rng: &mut Rng) -> (PathBuf, Kind) {
    let json: Vec<&PathBuf> = files.iter().filter(|(_, j)| *j).map(|(p, _)| p).collect();
    // Three cases in four mutate a JSON file: they are what the commands parse.
    let file = if !json.is_empty() && rng.below(4) != 0 {
        json[rng.below(json.len())].clone()
    } else {
        files[rng.below(files.len())].0.clone()
    };
    let is_json = files.iter().any(|(p, j)| *j && *p == file);
    let kinds: Vec<Kind> = KINDS
        .iter()
        .copied()
        .filter(|k| is_json || !k.is_json())
        .collect();
    // JSON files: two cases in three get a JSON-aware kind.
    let kind = if is_json && rng.below(3) != 0 {
        let j: Vec<Kind> = kinds.iter().copied().filter(|k| k.is_json()).collect();
        j[rng.below(j.len())]
    } else {
        let o: Vec<Kind> = kinds.iter().copied().filter(|k| !k.is_json()).collect();
        o[rng.below(o.len())]
    };
    (file, kind)
}

/// Applies `kind` to `root/file`; `outside` is a folder beside the root (link targets, and
/// the absolute paths written into values).
pub fn apply(
    root: &Path,
    outside: &Path,
    file: &Path,
    kind: Kind,
    rng: &mut Rng,
) -> std::io::Result<Mutation> {
    let path = root.join(file);
    let done = |detail: String| {
        Ok(Mutation {
            file: file.to_path_buf(),
            kind,
            detail,
        })
    };
    if kind.is_json() {
        let bytes = std::fs::read(&path)?;
        let value: Value = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
        // A draw can write the bytes back as they were (a 0 replaced by 0): draw again.
        for _ in 0..16 {
            let (text, detail) = json(&value, kind, outside, rng);
            if text.as_bytes() != bytes {
                std::fs::write(&path, text)?;
                return done(detail);
            }
        }
        return Err(std::io::Error::other("no draw changed the file"));
    }
    match kind {
        Kind::Truncate => {
            let bytes = std::fs::read(&path)?;
            let keep = rng.below(bytes.len().max(1));
            std::fs::write(&path, &bytes[..keep])?;
            done(format!("cut to {keep} of {} bytes", bytes.len()))
        }
        Kind::FlipBits => {
            let mut bytes = std::fs::read(&path)?;
            if bytes.is_empty() {
                bytes.push(0);
            }
            // Distinct bits: a bit flipped twice would be no change.
            let mut at = std::collections::BTreeSet::new();
            for _ in 0..1 + rng.below(8) {
                at.insert((rng.below(bytes.len()), rng.below(8)));
            }
            for &(i, bit) in &at {
                bytes[i] ^= 1 << bit;
            }
            std::fs::write(&path, &bytes)?;
            done(format!("bits flipped at bytes {at:?}"))
        }
        Kind::Empty => {
            std::fs::write(&path, b"")?;
            done("emptied".to_string())
        }
        Kind::Symlink => {
            let name = file.file_name().unwrap_or_default();
            let target = match rng.below(4) {
                0 => PathBuf::from("/dev/zero"),
                // A decoy for a system file: never a real one (see PATHS).
                1 => {
                    let decoy = outside.join("passwd");
                    std::fs::write(&decoy, b"root:x:0:0:decoy:/root:/bin/sh\n")?;
                    decoy
                }
                // A valid copy outside: following it would read (and could write) there.
                _ => {
                    let copy = outside.join(name);
                    std::fs::copy(&path, &copy)?;
                    copy
                }
            };
            std::fs::remove_file(&path)?;
            std::os::unix::fs::symlink(&target, &path)?;
            done(format!("a link to {}", target.display()))
        }
        Kind::Fifo => {
            std::fs::remove_file(&path)?;
            // No unsafe in xtask for mkfifo(3): the coreutils tool makes it.
            let status = std::process::Command::new("mkfifo").arg(&path).status()?;
            if !status.success() {
                return Err(std::io::Error::other("mkfifo failed"));
            }
            done("a FIFO".to_string())
        }
        Kind::Directory => {
            std::fs::remove_file(&path)?;
            std::fs::create_dir(&path)?;
            std::fs::write(path.join("inner.json"), b"{}")?;
            done("a folder".to_string())
        }
        Kind::Remove => {
            std::fs::remove_file(&path)?;
            done("removed".to_string())
        }
        Kind::DirSymlink => {
            let dir = path.parent().unwrap_or(root).to_path_buf();
            if dir == root {
                // The root itself is what the commands are given: link its file instead.
                let m = apply(root, outside, file, Kind::Symlink, rng)?;
                return done(format!("at the root, the file: {}", m.detail));
            }
            let copy = outside.join(format!(
                "dir-{}",
                dir.file_name().unwrap_or_default().to_string_lossy()
            ));
            copy_tree(&dir, &copy, false)?;
            std::fs::remove_dir_all(&dir)?;
            std::os::unix::fs::symlink(&copy, &dir)?;
            let rel = dir.strip_prefix(root).unwrap_or(&dir);
            done(format!(
                "folder {} a link to {}",
                rel.display(),
                copy.display()
            ))
        }
        _ => unreachable!("JSON kinds are handled above"),
    }
}

/// A JSON pointer step.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// Pointers to every value in `v` (the root included: an empty pointer).
fn pointers(v: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(at.clone());
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                at.push(Step::Key(k.clone()));
                pointers(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                at.push(Step::Index(i));
                pointers(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn get_mut<'a>(v: &'a mut Value, pointer: &[Step]) -> &'a mut Value {
    pointer.iter().fold(v, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

fn show(pointer: &[Step]) -> String {
    let mut s = String::new();
    for step in pointer {
        match step {
            Step::Key(k) => s.push_str(&format!("/{k}")),
            Step::Index(i) => s.push_str(&format!("/{i}")),
        }
    }
    if s.is_empty() { "/".to_string() } else { s }
}

/// The mutated text of `value` and what changed. Raw text (not JSON, or beyond what a
/// `Value` holds) goes in through a placeholder string replaced after serialising.
fn json(value: &Value, kind: Kind, outside: &Path, rng: &mut Rng) -> (String, String) {
    const MARK: &str = "\u{1}fuzz\u{1}";
    let mark_text = serde_json::to_string(MARK).expect("a string serialises");
    let mut v = value.clone();
    let mut all = Vec::new();
    pointers(&v, &mut Vec::new(), &mut all);
    let of = |pred: &dyn Fn(&Value) -> bool, v: &Value| -> Vec<Vec<Step>> {
        all.iter()
            .filter(|p| pred(get_ref(v, p)))
            .cloned()
            .collect()
    };
    // Members of objects (pointers ending in a key), for deletion.
    let members: Vec<Vec<Step>> = all
        .iter()
        .filter(|p| matches!(p.last(), Some(Step::Key(_))))
        .cloned()
        .collect();
    let choose = |list: &[Vec<Step>], rng: &mut Rng| -> Option<Vec<Step>> {
        (!list.is_empty()).then(|| list[rng.below(list.len())].clone())
    };
    let mut raw: Option<String> = None;
    let detail = match kind {
        Kind::DeleteField => match choose(&members, rng) {
            Some(p) => {
                let (last, parent) = p.split_last().expect("a member has a key");
                if let (Step::Key(k), Value::Object(map)) = (last, get_mut(&mut v, parent)) {
                    map.remove(k);
                }
                format!("deleted {}", show(&p))
            }
            None => {
                v = Value::Object(Default::default());
                "replaced by {}".to_string()
            }
        },
        Kind::ChangeType => {
            let p = choose(&all, rng).unwrap_or_default();
            let target = get_mut(&mut v, &p);
            let kind_of = |x: &Value| std::mem::discriminant(x);
            let options: Vec<&str> = OTHER_TYPES
                .iter()
                .copied()
                .filter(|o| {
                    serde_json::from_str::<Value>(o).is_ok_and(|x| kind_of(&x) != kind_of(target))
                })
                .collect();
            let new = options[rng.below(options.len())];
            *target = serde_json::from_str(new).expect("the table is JSON");
            format!("{} became {new}", show(&p))
        }
        Kind::Number => {
            let numbers = of(&|x| x.is_number(), &v);
            let p = choose(&numbers, rng)
                .or_else(|| choose(&all, rng))
                .unwrap_or_default();
            let new = NUMBERS[rng.below(NUMBERS.len())];
            *get_mut(&mut v, &p) = Value::String(MARK.to_string());
            raw = Some(new.to_string());
            format!("{} became {new}", show(&p))
        }
        Kind::LongString => {
            let strings = of(&|x| x.is_string(), &v);
            let p = choose(&strings, rng)
                .or_else(|| choose(&all, rng))
                .unwrap_or_default();
            let unit = ["x", "é", "../", "\n"][rng.below(4)];
            let long = unit.repeat((1 << 20) / unit.len());
            *get_mut(&mut v, &p) = Value::String(long);
            format!("{} became a 1 MiB string of {unit:?}", show(&p))
        }
        Kind::DeepNesting => {
            let p = choose(&all, rng).unwrap_or_default();
            let depth = [200, 10_000, 100_000][rng.below(3)];
            let nested = if rng.below(2) == 0 {
                format!("{}{}", "[".repeat(depth), "]".repeat(depth))
            } else {
                format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
            };
            *get_mut(&mut v, &p) = Value::String(MARK.to_string());
            raw = Some(nested);
            format!("{} nested {depth} deep", show(&p))
        }
        Kind::DuplicateEntry => {
            let arrays = of(&|x| x.as_array().is_some_and(|a| !a.is_empty()), &v);
            match choose(&arrays, rng) {
                Some(p) => {
                    let items = get_mut(&mut v, &p)
                        .as_array_mut()
                        .expect("chosen as an array");
                    let i = rng.below(items.len());
                    let copy = items[i].clone();
                    let to = rng.below(items.len() + 1);
                    items.insert(to, copy);
                    format!("{}/{i} repeated at {to}", show(&p))
                }
                // No array: the whole document twice, as a list.
                None => {
                    v = Value::Array(vec![v.clone(), v]);
                    "the document repeated in a list".to_string()
                }
            }
        }
        Kind::DuplicateKey => {
            let objects = of(&|x| x.as_object().is_some_and(|o| !o.is_empty()), &v);
            match choose(&objects, rng) {
                Some(p) => {
                    let map = get_mut(&mut v, &p)
                        .as_object_mut()
                        .expect("chosen as an object");
                    let keys: Vec<String> = map.keys().cloned().collect();
                    let key = keys[rng.below(keys.len())].clone();
                    let other = OTHER_TYPES[rng.below(OTHER_TYPES.len())];
                    map.insert(
                        MARK.to_string(),
                        serde_json::from_str(other).expect("the table is JSON"),
                    );
                    raw = Some(serde_json::to_string(&key).expect("a string serialises"));
                    format!("{}: key {key:?} repeated with {other}", show(&p))
                }
                // No object to repeat a key of: one with a repeated key.
                None => {
                    v = serde_json::json!({ MARK: 1 });
                    raw = Some("\"a\": 2, \"a\"".to_string());
                    "replaced by an object with a repeated key".to_string()
                }
            }
        }
        Kind::PathValue => {
            let strings = of(&|x| x.is_string(), &v);
            let p = choose(&strings, rng)
                .or_else(|| choose(&all, rng))
                .unwrap_or_default();
            let new =
                PATHS[rng.below(PATHS.len())].replace("{outside}", &outside.to_string_lossy());
            *get_mut(&mut v, &p) = Value::String(new.clone());
            format!("{} became {new:?}", show(&p))
        }
        Kind::OddName => {
            let strings = of(&|x| x.is_string(), &v);
            let p = choose(&strings, rng)
                .or_else(|| choose(&all, rng))
                .unwrap_or_default();
            let target = get_mut(&mut v, &p);
            let name = NAMES[rng.below(NAMES.len())];
            let new = match (rng.below(2), target.as_str()) {
                (0, Some(old)) => format!("{old}{name}"),
                _ => name.to_string(),
            };
            *target = Value::String(new.clone());
            format!("{} became {new:?}", show(&p))
        }
        _ => unreachable!("only JSON kinds"),
    };
    let mut text = serde_json::to_string_pretty(&v).expect("a Value serialises");
    if let Some(raw) = raw {
        text = text.replacen(&mark_text, &raw, 1);
    }
    text.push('\n');
    (text, detail)
}

fn get_ref<'a>(v: &'a Value, pointer: &[Step]) -> &'a Value {
    pointer.iter().fold(v, |v, step| match step {
        Step::Key(k) => &v[k.as_str()],
        Step::Index(i) => &v[*i],
    })
}

/// Copies `from` to `to` (created), keeping links as links, FIFOs as FIFOs, and never
/// opening anything but a regular file; with `hard`, regular files are hard links (a case's
/// copy: [`unshare`] the file before writing it).
pub fn copy_tree(from: &Path, to: &Path, hard: bool) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    std::fs::create_dir_all(to)?;
    let mut entries: Vec<_> = std::fs::read_dir(from)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let t = entry.file_type()?;
        if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if t.is_dir() {
            copy_tree(&src, &dst, hard)?;
        } else if t.is_fifo() {
            std::process::Command::new("mkfifo").arg(&dst).status()?;
        } else if t.is_file() && hard {
            std::fs::hard_link(&src, &dst)?;
        } else if t.is_file() {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// Makes `path`, a hard link of a [`copy_tree`], a file of its own, so that writing it leaves
/// the original as it was.
pub fn unshare(path: &Path) -> std::io::Result<()> {
    let bytes = std::fs::read(path)?;
    std::fs::remove_file(path)?;
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small root: a manifest-like JSON file in a folder, a flat JSON file, a binary file.
    fn small_root(dir: &Path) -> Vec<(PathBuf, bool)> {
        // Fresh, or fail: writing over a FIFO left by an earlier case would block, and over a
        // link would write wherever it points.
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                panic!("cannot clear {}: {e}", dir.display())
            }
            _ => {}
        }
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("dose_1000/dense/gs1")).unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        let manifest = serde_json::json!({
            "format_version": 1,
            "artifact_root": "root",
            "jobs": [
                {"dose": 1000.0, "view": "dense", "gridsize": 1,
                 "artifact_dir": "root/dose_1000/dense/gs1",
                 "result": {"status": "success", "final_loss": 0.05}},
            ],
            "skipped_count": 0,
        });
        std::fs::write(
            root.join("training_manifest.json"),
            serde_json::to_string_pretty(&manifest).unwrap(),
        )
        .unwrap();
        std::fs::write(
            root.join("dose_1000/dense/gs1/result.json"),
            br#"{"status": "success", "bundle_path": "native_bundle.npz", "epochs": 2}"#,
        )
        .unwrap();
        std::fs::write(
            root.join("dose_1000/dense/gs1/native_bundle.npz"),
            b"PK\x03\x04 not really a bundle",
        )
        .unwrap();
        vec![
            (PathBuf::from("training_manifest.json"), true),
            (PathBuf::from("dose_1000/dense/gs1/result.json"), true),
            (
                PathBuf::from("dose_1000/dense/gs1/native_bundle.npz"),
                false,
            ),
        ]
    }

    /// What a path is now: its bytes, or its kind (a link with its target).
    fn state(path: &Path) -> String {
        use std::os::unix::fs::FileTypeExt;
        match std::fs::symlink_metadata(path) {
            Err(_) => "missing".to_string(),
            Ok(m) if m.file_type().is_symlink() => {
                format!("link {:?}", std::fs::read_link(path).unwrap())
            }
            Ok(m) if m.file_type().is_fifo() => "fifo".to_string(),
            Ok(m) if m.is_dir() => "dir".to_string(),
            Ok(_) => format!("{:?}", std::fs::read(path).unwrap()),
        }
    }

    use crate::fuzz::unit_temp as temp;

    /// Every kind changes the file it is applied to (for the folder link: the folder).
    #[test]
    fn every_kind_changes_the_file() {
        let dir = temp("every-kind");
        for kind in KINDS {
            for (file, is_json) in small_root(&dir.join("files")) {
                if kind.is_json() && !is_json {
                    continue;
                }
                for case in 0..6 {
                    let case_dir = dir.join("case");
                    let files = small_root(&case_dir);
                    assert!(files.iter().any(|(f, _)| *f == file));
                    let root = case_dir.join("root");
                    let before = state(&root.join(&file));
                    let parent = root.join(&file).parent().unwrap().to_path_buf();
                    let parent_before = state(&parent);
                    let m = apply(
                        &root,
                        &case_dir.join("outside"),
                        &file,
                        kind,
                        &mut Rng::new(7, case),
                    )
                    .unwrap_or_else(|e| panic!("{kind:?} on {}: {e}", file.display()));
                    assert_eq!(m.kind, kind);
                    let changed = if kind == Kind::DirSymlink && parent != root {
                        state(&parent) != parent_before
                    } else {
                        state(&root.join(&file)) != before
                    };
                    assert!(
                        changed,
                        "{kind:?} case {case} left {} as it was ({})",
                        file.display(),
                        m.detail
                    );
                }
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The same seed and case give the same file, kind, detail and bytes; other cases differ.
    #[test]
    fn the_mutator_is_deterministic() {
        let dir = temp("deterministic");
        let mut outcomes = Vec::new();
        for _ in 0..2 {
            let mut this = Vec::new();
            for case in 0..60 {
                // The same folder in both runs: details name the outside folder.
                let case_dir = dir.join(format!("{case}"));
                let files = small_root(&case_dir);
                let root = case_dir.join("root");
                let mut rng = Rng::new(99, case);
                let (file, kind) = pick(&files, &mut rng);
                let m = apply(&root, &case_dir.join("outside"), &file, kind, &mut rng).unwrap();
                let after = state(&root.join(&m.file));
                this.push((m, after));
            }
            outcomes.push(this);
        }
        assert_eq!(outcomes[0], outcomes[1]);
        let kinds: std::collections::BTreeSet<&str> =
            outcomes[0].iter().map(|(m, _)| m.kind.name()).collect();
        assert!(kinds.len() > 8, "60 cases used only {kinds:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
