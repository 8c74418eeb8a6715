//! Atomic artifact writes: a reader never sees half a file, and a failed write leaves the old
//! file (or nothing) in place. Every artifact of the toolkit (NPZ, JSON, bundles, reports) is
//! written through here.
//!
//! Data files ([`AtomicFile`], e.g. NPZ) are also flushed to disk before the rename. Small text
//! artifacts ([`write_atomic`]) are not: a `fsync` costs ~1.5 ms on this kind of disk, which
//! is all of the cost of a job's `training_config.json` and `result.json` and would make a
//! 10,000-job dry run take half a minute; the rename alone is what keeps readers (and a killed
//! process) from ever seeing half a file.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The temporary files this process has open, and whether new ones are still allowed: a
/// signal handler ([`abandon_all`]) removes them all before the process exits.
struct Registry {
    temps: BTreeSet<PathBuf>,
    closed: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    temps: BTreeSet::new(),
    closed: false,
});

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every temporary file this process has open and refuses new ones from then on; for
/// a process about to exit on a signal (nothing half-written is left behind). Returns the
/// files removed. The registry stays locked while they are removed, so no writer creates a
/// new temporary file meanwhile.
pub fn abandon_all() -> Vec<PathBuf> {
    let mut registry = registry();
    registry.closed = true;
    let temps = std::mem::take(&mut registry.temps);
    for temp in &temps {
        let _ = std::fs::remove_file(temp);
    }
    temps.into_iter().collect()
}

/// `.<name>.tmp-<pid>` -> the pid, for a name the toolkit's own temporary files have.
pub fn temp_pid(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    let (_, pid) = rest.rsplit_once(".tmp-")?;
    pid.parse().ok()
}

/// Whether process `pid` is alive (Linux: `/proc/<pid>` exists; elsewhere assumed alive).
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        // This process has written nothing yet when it sweeps: a temp with its pid is from a
        // dead process whose pid was reused.
        return false;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Removes, under `root` (recursively, never following symlinks), the toolkit's own temporary
/// files (`.<name>.tmp-<pid>`) whose process is gone: what a killed run left behind; and every
/// symbolic link with a temporary file's name, whatever its pid (the toolkit never makes one:
/// it is planted, and removed without being followed). Returns the files removed; a missing
/// `root` is no error.
pub fn remove_stale_temps(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) if dir != root => {
                let _ = e;
                continue;
            }
            Err(e) => return Err(e),
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if let Some(pid) = entry.file_name().to_str().and_then(temp_pid)
                && (kind.is_symlink() || (kind.is_file() && !alive(pid)))
                && std::fs::remove_file(&path).is_ok()
            {
                removed.push(path);
            }
        }
    }
    removed.sort();
    Ok(removed)
}

/// Creates `path` new for writing (`O_EXCL | O_NOFOLLOW`); an entry already there that is not
/// a folder is removed first (a link itself, not what it points to), once.
fn create_new(path: &Path) -> io::Result<File> {
    let open = || {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            &mut options,
            libc::O_NOFOLLOW | libc::O_CLOEXEC,
        );
        options.open(path)
    };
    match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path)?;
            open()
        }
        other => other,
    }
}

/// A file being written beside its final path; [`AtomicFile::commit`] renames it into place.
/// Dropped without commit, the temporary file is removed.
pub struct AtomicFile {
    file: Option<File>,
    temp: PathBuf,
    target: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file `.<name>.tmp-<pid>` in `target`'s folder (which must exist),
    /// new (`O_EXCL | O_NOFOLLOW`): whatever is already at that name (a planted link, a file
    /// left by a dead process whose pid this one reuses) is removed, never followed or
    /// truncated.
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
        let mut registry = registry();
        if registry.closed {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "the process is stopping (interrupted)",
            ));
        }
        let file = create_new(&temp)?;
        registry.temps.insert(temp.clone());
        drop(registry);
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
        let synced = if sync { file.sync_all() } else { Ok(()) };
        drop(file);
        let renamed = synced.and_then(|()| std::fs::rename(&self.temp, &self.target));
        if renamed.is_err() {
            let _ = std::fs::remove_file(&self.temp);
        }
        registry().temps.remove(&self.temp);
        renamed
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
            registry().temps.remove(&self.temp);
        }
    }
}

/// Writes `bytes` to `path` atomically (without waiting for the disk: see the module doc).
/// Errors name the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`], the contents written by `fill` through a buffer as it makes them (a file
/// too large to hold whole first).
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let named = |e: io::Error| io::Error::new(e.kind(), format!("writing {}: {e}", path.display()));
    let mut file = AtomicFile::create(path).map_err(named)?;
    let mut buffered = io::BufWriter::with_capacity(1 << 16, &mut file);
    fill(&mut buffered)
        .and_then(|()| buffered.flush())
        .map_err(named)?;
    drop(buffered);
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
    fn stale_temps_of_dead_processes_are_removed_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("dose_1000");
        std::fs::create_dir(&sub).unwrap();
        // pid 1 is alive; u32::MAX - 1 is beyond pid_max, so dead.
        let dead = sub.join(format!(".patched_train.npz.tmp-{}", u32::MAX - 1));
        let live = sub.join(".patched_test.npz.tmp-1");
        let other = sub.join(".hidden.tmp-x");
        for f in [&dead, &live, &other] {
            std::fs::write(f, b"x").unwrap();
        }
        assert_eq!(remove_stale_temps(dir.path()).unwrap(), vec![dead.clone()]);
        assert!(!dead.exists() && live.exists() && other.exists());
        assert_eq!(temp_pid(".native_bundle.npz.tmp-42"), Some(42));
        assert_eq!(temp_pid("native_bundle.npz"), None);
    }

    /// Issue 26, finding 2: a link planted with this process's temp name was followed (and its
    /// target truncated and overwritten); the sweep skipped links with temp names.
    #[test]
    fn planted_temp_links_are_removed_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, b"keep").unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let target = root.join("training_manifest.json");
        let own = root.join(format!(
            ".training_manifest.json.tmp-{}",
            std::process::id()
        ));
        let other = root.join(".skip_summary.json.tmp-1");
        std::os::unix::fs::symlink(&outside, &own).unwrap();
        std::os::unix::fs::symlink(&outside, &other).unwrap();
        write_atomic(&target, b"manifest").unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
        assert_eq!(std::fs::read(&target).unwrap(), b"manifest");
        assert!(std::fs::symlink_metadata(&own).is_err());
        // pid 1 is alive, yet its "temp" is a link: removed.
        assert_eq!(remove_stale_temps(&root).unwrap(), vec![other.clone()]);
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
    }

    #[test]
    fn missing_folder_is_named() {
        let err = write_atomic(Path::new("/no/such/dir/x.json"), b"").unwrap_err();
        assert!(err.to_string().contains("/no/such/dir/x.json"), "{err}");
    }
}
