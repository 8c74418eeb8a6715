//! A job's log file (`<artifact_dir>/train.log`): header, backend output, outcome.
//!
//! A log is a stream, written as the job runs so that `tail -f` shows it; it is the one file of
//! a job that is not written atomically.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An open job log.
pub struct JobLog {
    file: File,
    path: PathBuf,
    error: Option<io::Error>,
}

impl JobLog {
    /// Creates (or truncates) the log at `path`; its folder must exist.
    pub fn create(path: &Path) -> io::Result<JobLog> {
        let file = File::create(path)?;
        Ok(JobLog {
            file,
            path: path.to_path_buf(),
            error: None,
        })
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

    /// A second handle on the log file (the same open file: writes through either handle go
    /// to the end in order), for a child process's stdout and stderr.
    pub fn try_clone_file(&self) -> io::Result<File> {
        self.file.try_clone()
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
