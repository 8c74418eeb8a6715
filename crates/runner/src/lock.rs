//! One writer per artifact root (and per study folder): an exclusive `flock` on
//! `<root>/.dose-overlap.lock`, held by `train`, `collect` and `study` for as long as they run.
//! `run-job` (a SLURM array's task: many run at once on one root) holds it shared, so that no
//! task writes into a root while one of those runs, nor one of those while a task does.
//!
//! The kernel releases the lock when its holder dies, however it dies, so a lock left by a
//! dead process never blocks; the file's text (pid and start time) is only there to name the
//! holder in the message a second process prints. The descriptor is close-on-exec (as every
//! file std opens), so a trainer child never inherits the lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// File name of the lock inside the folder it guards.
pub const LOCK_FILE: &str = ".dose-overlap.lock";

/// Why a folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live process holds it.
    #[error(
        "another dose-overlap ({holder}) is using {}: wait for it to finish, or stop it, then run again",
        root.display()
    )]
    Busy {
        /// The folder.
        root: PathBuf,
        /// `pid 123, since 2026-01-01T00:00:00Z`, as the holder wrote it.
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock {}: {cause}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
}

/// A held lock; dropping it releases the lock (the file stays: its presence means nothing).
#[derive(Debug)]
pub struct RootLock {
    file: File,
    path: PathBuf,
    exclusive: bool,
}

impl Drop for RootLock {
    /// An exclusive holder empties the file before the kernel releases the lock, so that a
    /// later message never names a holder that is gone.
    fn drop(&mut self) {
        if self.exclusive {
            let _ = self.file.set_len(0);
        }
    }
}

impl RootLock {
    /// Takes the exclusive lock on `root` (which must exist) without waiting.
    pub fn acquire(root: &Path) -> Result<RootLock, LockError> {
        RootLock::take(root, false)
    }

    /// Takes the lock on `root` shared (other shared holders are welcome, an exclusive one
    /// is not) without waiting: what each `run-job` task holds.
    pub fn acquire_shared(root: &Path) -> Result<RootLock, LockError> {
        RootLock::take(root, true)
    }

    /// [`RootLock::acquire_shared`], waiting up to `patience` while an exclusive holder
    /// (a `collect` looking at pending tasks, say) has it.
    pub fn acquire_shared_within(
        root: &Path,
        patience: std::time::Duration,
    ) -> Result<RootLock, LockError> {
        retry_while_busy(patience, || RootLock::take(root, true))
    }

    fn take(root: &Path, shared: bool) -> Result<RootLock, LockError> {
        let path = root.join(LOCK_FILE);
        let io = |cause| LockError::Io {
            path: path.clone(),
            cause,
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        let mut file = options.open(&path).map_err(io)?;
        let locked = if shared {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = (&mut file).take(4096).read_to_string(&mut text);
                let holder = match text.trim() {
                    "" => "a process that is just starting, or run-job tasks".to_string(),
                    holder => holder.to_string(),
                };
                return Err(LockError::Busy {
                    root: root.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(cause)) => return Err(io(cause)),
        }
        if shared {
            // Several hold it at once: none names itself (the text is the last exclusive
            // holder's, emptied when it let go).
            return Ok(RootLock {
                file,
                path,
                exclusive: false,
            });
        }
        let since = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
        let holder = format!("pid {}, since {since}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(holder.as_bytes()))
            .map_err(io)?;
        Ok(RootLock {
            file,
            path,
            exclusive: true,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns a held exclusive lock into a shared one, so that `run-job` tasks may share the
    /// root while another `train`, `collect` or `study` is still kept out: what
    /// `train --executor slurm` does before it submits the tasks it then waits for. The file
    /// still names this process, which is the one a second writer is waiting for.
    pub fn share(&self) -> Result<(), LockError> {
        // flock converts in place; the conversion is not atomic, so an exclusive holder that
        // slipped in between is reported, never waited for.
        self.file.try_lock_shared().map_err(|e| self.refusal(e))
    }

    /// Takes the lock exclusive again after [`RootLock::share`], waiting up to `patience` for
    /// shared holders to let go (a SLURM task that squeue no longer lists may still be exiting).
    pub fn exclusive_again(&self, patience: std::time::Duration) -> Result<(), LockError> {
        retry_while_busy(patience, || {
            self.file.try_lock().map_err(|e| self.refusal(e))
        })
    }

    fn refusal(&self, e: TryLockError) -> LockError {
        match e {
            TryLockError::WouldBlock => LockError::Busy {
                root: self
                    .path
                    .parent()
                    .map_or_else(PathBuf::new, Path::to_path_buf),
                holder: "run-job tasks or another dose-overlap".to_string(),
            },
            TryLockError::Error(cause) => LockError::Io {
                path: self.path.clone(),
                cause,
            },
        }
    }
}

/// Calls `attempt` until it is not refused as busy or `patience` has passed (every 100 ms).
fn retry_while_busy<T>(
    patience: std::time::Duration,
    mut attempt: impl FnMut() -> Result<T, LockError>,
) -> Result<T, LockError> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        match attempt() {
            Err(LockError::Busy { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = RootLock::acquire(dir.path()).unwrap();
        let err = RootLock::acquire(dir.path()).unwrap_err().to_string();
        let pid = format!("pid {}, since ", std::process::id());
        assert!(err.starts_with("another dose-overlap (pid "), "{err}");
        assert!(err.contains(&pid), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        drop(first);
        // Released: the next one gets it, although the file is still there.
        assert!(dir.path().join(LOCK_FILE).is_file());
        RootLock::acquire(dir.path()).unwrap();
    }

    /// Issue 26, finding 14: `run-job` took no lock, so a task wrote into a root `train` or
    /// `collect` was writing. Tasks share the lock; an exclusive holder excludes them.
    #[test]
    fn shared_holders_exclude_an_exclusive_one_and_back() {
        let dir = tempfile::tempdir().unwrap();
        let a = RootLock::acquire_shared(dir.path()).unwrap();
        let b = RootLock::acquire_shared(dir.path()).unwrap();
        let err = RootLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains("run-job tasks"), "{err}");
        drop((a, b));
        let train = RootLock::acquire(dir.path()).unwrap();
        let err = RootLock::acquire_shared(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(train);
        RootLock::acquire_shared(dir.path()).unwrap();
    }

    /// A task that starts while `collect` holds the root for a moment waits for it.
    #[test]
    fn a_task_waits_for_a_brief_exclusive_holder() {
        let dir = tempfile::tempdir().unwrap();
        let collect = RootLock::acquire(dir.path()).unwrap();
        let err =
            RootLock::acquire_shared_within(dir.path(), std::time::Duration::from_millis(200))
                .unwrap_err()
                .to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        let released = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(collect);
        });
        RootLock::acquire_shared_within(dir.path(), std::time::Duration::from_secs(20)).unwrap();
        released.join().unwrap();
    }

    /// `train --executor slurm --wait` holds the root while its tasks run: shared while they
    /// run (tasks welcome, a second train not), exclusive again to collect.
    #[test]
    fn a_shared_lock_lets_tasks_in_and_keeps_writers_out_until_taken_back() {
        let dir = tempfile::tempdir().unwrap();
        let train = RootLock::acquire(dir.path()).unwrap();
        RootLock::acquire_shared(dir.path()).unwrap_err();
        train.share().unwrap();
        let task = RootLock::acquire_shared(dir.path()).unwrap();
        let err = RootLock::acquire(dir.path()).unwrap_err().to_string();
        // The second writer is told which process it waits for.
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        let err = train
            .exclusive_again(std::time::Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(err.contains("run-job tasks"), "{err}");
        drop(task);
        train
            .exclusive_again(std::time::Duration::from_millis(300))
            .unwrap();
        RootLock::acquire_shared(dir.path()).unwrap_err();
    }
}
