//! A job's log file (`<artifact_dir>/train.log`): header, backend output, outcome.
//!
//! A log is a stream, written as the job runs so that `tail -f` shows it; it is the one file of
//! a job that is not written atomically. It is never opened through a symlink (a link planted
//! at its path is replaced, never followed), and a trainer's output in it is capped
//! ([`JobLog::output`]): a runaway trainer cannot fill the disk through it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Default cap on the trainer output kept in a job's log (`--log-limit`).
pub const DEFAULT_LOG_LIMIT: u64 = 64 * 1024 * 1024;

/// An open job log.
pub struct JobLog {
    file: File,
    path: PathBuf,
    error: Option<io::Error>,
    limit: u64,
    output_bytes: u64,
    dropped_bytes: u64,
}

/// Creates a new file at `path` for writing, never through a symlink and never into a file
/// that another path also names: whatever is at `path` (a file, a symlink to a file outside the
/// root, a hard link) is removed first, and the file is created anew (`O_EXCL | O_NOFOLLOW`).
pub fn create_fresh(path: &Path) -> io::Result<File> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is a folder", path.display()),
            ));
        }
        Ok(_) => std::fs::remove_file(path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    options.open(path)
}

impl JobLog {
    /// Creates (or replaces) the log at `path`; its folder must exist.
    pub fn create(path: &Path) -> io::Result<JobLog> {
        let file = create_fresh(path)?;
        Ok(JobLog {
            file,
            path: path.to_path_buf(),
            error: None,
            limit: DEFAULT_LOG_LIMIT,
            output_bytes: 0,
            dropped_bytes: 0,
        })
    }

    /// The same log, keeping at most `limit` bytes of trainer output.
    pub fn with_limit(mut self, limit: u64) -> JobLog {
        self.limit = limit;
        self
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line` and a newline; the first write error is kept for [`JobLog::take_error`].
    pub fn line(&mut self, line: &str) {
        if self.error.is_some() {
            return;
        }
        // One write per line (`writeln!` on a File makes one per piece): a log line then never
        // interleaves with the trainer's output, and a 10,000-job dry run makes half the calls.
        let mut text = String::with_capacity(line.len() + 1);
        text.push_str(line);
        text.push('\n');
        if let Err(err) = self.file.write_all(text.as_bytes()) {
            self.error = Some(err);
        }
    }

    /// Appends a child's output, up to the log's limit; past it, one note says where the log
    /// was cut and the rest is counted ([`JobLog::dropped_bytes`]), not written.
    pub fn output(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let room = self.limit.saturating_sub(self.output_bytes);
        let kept = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if kept > 0
            && let Err(err) = self.file.write_all(&bytes[..kept])
        {
            self.error = Some(err);
            return;
        }
        self.output_bytes += kept as u64;
        if kept < bytes.len() {
            if self.dropped_bytes == 0 {
                let limit = self.limit;
                self.line(&format!(
                    "\n[dose-overlap: train.log cut here: the trainer's output reached the log's \
                     limit of {limit} bytes (--log-limit); the rest is not kept]"
                ));
            }
            self.dropped_bytes += (bytes.len() - kept) as u64;
        }
    }

    /// A second handle on the log file (the same open file: writes through either handle go
    /// to the end in order). Output written through it bypasses the limit: trainers get a pipe
    /// read into [`JobLog::output`] instead (`contain`).
    pub fn try_clone_file(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    /// Bytes of child output not written because of the limit.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped_bytes
    }

    /// The first write error, if any.
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// Flushes to disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_symlink_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "keep me").unwrap();
        let log_path = dir.path().join("train.log");
        std::os::unix::fs::symlink(&outside, &log_path).unwrap();
        let mut log = JobLog::create(&log_path).unwrap();
        log.line("hello");
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep me");
        assert!(!std::fs::symlink_metadata(&log_path).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&log_path).unwrap(), "hello\n");
    }

    #[test]
    fn output_past_the_limit_is_cut_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.log");
        let mut log = JobLog::create(&path).unwrap().with_limit(10);
        log.output(b"0123456");
        log.output(b"789abcdef");
        log.output(b"more");
        log.line("Outcome: x");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("0123456789\n[dose-overlap: train.log cut here"),
            "{text}"
        );
        assert_eq!(text.matches("cut here").count(), 1);
        assert!(text.ends_with("Outcome: x\n"), "{text}");
        assert_eq!(log.dropped_bytes(), 10);
    }
}
