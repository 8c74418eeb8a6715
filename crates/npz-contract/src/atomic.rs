//! Atomic artifact writes: a reader never sees half a file, and a failed write leaves the old
//! file (or nothing) in place. Every artifact of the toolkit (NPZ, JSON, bundles, reports) is
//! written through here.
//!
//! Data files ([`AtomicFile`], e.g. NPZ) are also flushed to disk before the rename. Small text
//! artifacts ([`write_atomic`]) are not: a `fsync` costs ~1.5 ms on this kind of disk, which
//! is all of the cost of a job's `training_config.json` and `result.json` and would make a
//! 10,000-job dry run take half a minute; the rename alone is what keeps readers (and a killed
//! process) from ever seeing half a file.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A file being written beside its final path; [`AtomicFile::commit`] renames it into place.
/// Dropped without commit, the temporary file is removed.
pub struct AtomicFile {
    file: Option<File>,
    temp: PathBuf,
    target: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file `.<name>.tmp-<pid>` in `target`'s folder (which must exist).
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        let name = target.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} names no file", target.display()),
            )
        })?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".tmp-{}", std::process::id()));
        let temp = target.with_file_name(temp_name);
        let file = File::create(&temp)?;
        Ok(AtomicFile {
            file: Some(file),
            temp,
            target: target.to_path_buf(),
        })
    }

    /// The open temporary file.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("file is open until commit")
    }

    /// Flushes to disk and renames onto the target.
    pub fn commit(self) -> io::Result<()> {
        self.finish(true)
    }

    /// Renames onto the target, flushing to disk first when `sync`.
    fn finish(mut self, sync: bool) -> io::Result<()> {
        let file = self.file.take().expect("file is open until commit");
        if sync {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&self.temp, &self.target)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

// Zip writers seek back to patch sizes and CRCs into local headers.
impl Seek for AtomicFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file().seek(pos)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Writes `bytes` to `path` atomically (without waiting for the disk: see the module doc).
/// Errors name the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let named = |e: io::Error| io::Error::new(e.kind(), format!("writing {}: {e}", path.display()));
    let mut file = AtomicFile::create(path).map_err(named)?;
    file.write_all(bytes).map_err(named)?;
    file.finish(false).map_err(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a file.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn abandoned_write_leaves_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        write_atomic(&path, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_folder_is_named() {
        let err = write_atomic(Path::new("/no/such/dir/x.json"), b"").unwrap_err();
        assert!(err.to_string().contains("/no/such/dir/x.json"), "{err}");
    }
}
