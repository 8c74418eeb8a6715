//! SHA-256 and size of a bundle or an input file, and reading files in 64 KiB chunks (bundles
//! and trainer logs can be large). Input files are hashed once per process ([`file_digest`]):
//! `study` checks Phase C's outputs and then `train` checks the same files as its inputs.
//! A bundle is hashed only once [`checked_bundle`] found it a regular file inside its job dir,
//! and read without following a link ([`hash_bundle`]).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

/// Lowercase hex SHA-256 (what `sha256sum` prints) and size in bytes of the file at `path`,
/// a regular file (a FIFO or a device is refused, never read; a link at its name is not
/// followed).
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    sha256_reader(npz_contract::confine::open_regular(path)?)
}

/// Lowercase hex SHA-256 and size of everything `reader` yields.
pub fn sha256_reader(reader: impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    read_chunks(reader, |chunk| {
        hasher.update(chunk);
        size += chunk.len() as u64;
    })?;
    Ok((hex(&hasher.finalize()), size))
}

/// Size and SHA-256 of a file, as recorded in `result.json` for a job's inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDigest {
    /// Size in bytes.
    pub size_bytes: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// What identifies a file's version cheaply (device, inode, size, modification time): if any
/// of it changed, the file is hashed again.
type FileKey = (u64, u64, u64, Option<SystemTime>);

fn memo() -> &'static Mutex<HashMap<FileKey, FileDigest>> {
    static MEMO: OnceLock<Mutex<HashMap<FileKey, FileDigest>>> = OnceLock::new();
    MEMO.get_or_init(|| Mutex::new(HashMap::new()))
}

/// [`FileDigest`] of the file at `path`, hashed at most once per process for the same file
/// version (device, inode, size and modification time unchanged). The memo only saves
/// re-reading a file this process already read; it never stands in for a hash across runs.
/// Only a regular file is hashed, opened without following a link at its name: a FIFO, a
/// device (`/dev/zero`) or a link there is refused at once, never read.
pub fn file_digest(path: &Path) -> io::Result<FileDigest> {
    let file = npz_contract::confine::open_regular(path)?;
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let meta = file.metadata().map_err(named)?;
    #[cfg(unix)]
    let (device, inode) = (
        std::os::unix::fs::MetadataExt::dev(&meta),
        std::os::unix::fs::MetadataExt::ino(&meta),
    );
    #[cfg(not(unix))]
    let (device, inode) = (0, 0);
    let key = (device, inode, meta.len(), meta.modified().ok());
    if let Some(found) = memo().lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(found.clone());
    }
    let (sha256, size_bytes) = sha256_reader(file).map_err(named)?;
    let digest = FileDigest { size_bytes, sha256 };
    memo()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, digest.clone());
    Ok(digest)
}

/// [`file_digest`] of every path, on up to `threads` threads (SHA-256 runs at a few hundred
/// MB/s per core; a default study's inputs are ~400 MB). Results in the order of `paths`.
pub fn file_digests(paths: &[PathBuf], threads: usize) -> Vec<io::Result<FileDigest>> {
    map_ordered(paths, threads, |path| file_digest(path))
}

/// `f` of every item on up to `threads` threads (each takes the next item left), the results
/// in the order of `items`: what is written from them does not depend on which thread
/// finished first.
pub fn map_ordered<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every item was taken by a thread that finished")
        })
        .collect()
}

/// Reads `reader` to its end in 64 KiB chunks, handing each to `visit` (memory stays at one
/// chunk however large the file).
pub(crate) fn read_chunks(mut reader: impl Read, mut visit: impl FnMut(&[u8])) -> io::Result<()> {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => visit(&buffer[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// `wts.h5.zip` from `<artifact_dir>/wts.h5.zip`: the bundle's path relative to the artifact
/// dir, with `/` separators; `None` when the bundle is not inside it.
pub(crate) fn relative_bundle_path(bundle: &Path, artifact_dir: &Path) -> Option<String> {
    let relative: PathBuf = match bundle.strip_prefix(artifact_dir) {
        Ok(rel) => rel.to_path_buf(),
        // One side absolute, the other relative: compare absolute paths, then the real
        // locations of the folders (never of the file itself: it may be a planted link, which
        // `checked_bundle` reports as such).
        Err(_) => {
            let bundle = std::path::absolute(bundle).ok()?;
            let dir = std::path::absolute(artifact_dir).ok()?;
            match bundle.strip_prefix(&dir) {
                Ok(rel) => rel.to_path_buf(),
                Err(_) => {
                    let parent = bundle.parent()?.canonicalize().ok()?;
                    let dir = dir.canonicalize().ok()?;
                    parent.strip_prefix(dir).ok()?.join(bundle.file_name()?)
                }
            }
        }
    };
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| match c {
            Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect();
    let parts = parts.filter(|p| !p.is_empty())?;
    Some(parts.join("/"))
}

/// Checks that `bundle` is a regular file (not a symlink) whose real path is inside the real
/// `artifact_dir`, and returns its path relative to the artifact dir.
pub fn checked_bundle(bundle: &Path, artifact_dir: &Path) -> Result<String, String> {
    let outside = || {
        format!(
            "the bundle {} is outside the job's artifact dir {}",
            bundle.display(),
            artifact_dir.display()
        )
    };
    let relative = relative_bundle_path(bundle, artifact_dir).ok_or_else(outside)?;
    let meta = std::fs::symlink_metadata(bundle)
        .map_err(|e| format!("cannot read the bundle {}: {e}", bundle.display()))?;
    if meta.file_type().is_symlink() {
        return Err(format!(
            "the bundle {} is a symbolic link (to {}); a bundle must be a regular file written \
             in the job's artifact dir",
            bundle.display(),
            std::fs::read_link(bundle).map_or("?".into(), |t| t.display().to_string())
        ));
    }
    if !meta.is_file() {
        return Err(format!(
            "the bundle {} is not a regular file",
            bundle.display()
        ));
    }
    // A folder on the way may be a link out of the artifact dir: compare the real paths.
    let real = bundle
        .canonicalize()
        .map_err(|e| format!("cannot resolve the bundle {}: {e}", bundle.display()))?;
    let dir = artifact_dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", artifact_dir.display()))?;
    if !real.starts_with(&dir) {
        return Err(format!(
            "{}; its real path is {}",
            outside(),
            real.display()
        ));
    }
    Ok(relative)
}

/// SHA-256 and size of a bundle, read without following a symlink at its last component.
pub fn hash_bundle(bundle: &Path) -> std::io::Result<(String, u64)> {
    sha256_reader(npz_contract::confine::open_regular(bundle)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_input_order_whatever_finishes_first() {
        let items: Vec<u64> = (0..40).collect();
        let out = map_ordered(&items, 4, |&i| {
            // Early items take longest.
            std::thread::sleep(std::time::Duration::from_millis(40 - i));
            i * i
        });
        assert_eq!(out, items.iter().map(|i| i * i).collect::<Vec<_>>());
        assert!(map_ordered(&[] as &[u64], 4, |&i| i).is_empty());
    }

    #[test]
    fn known_digests() {
        // `printf '' | sha256sum` and `printf abc | sha256sum`.
        assert_eq!(
            sha256_bytes(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.zip");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            (
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string(),
                3
            )
        );
    }

    #[test]
    fn streams_files_larger_than_a_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            (sha256_bytes(&bytes), bytes.len() as u64)
        );
    }
}
