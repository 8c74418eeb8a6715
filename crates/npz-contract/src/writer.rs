//! Writing NPZ archives that `numpy.load` reads back: NumPy's own `.npy` v1 headers, members in
//! insertion order with fixed timestamps, written to a temporary file renamed into place.

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use ndarray::{ArrayBase, Data, Dimension};
use zip::write::SimpleFileOptions;
use zip::{DateTime, ZipWriter};

use crate::atomic::AtomicFile;
use crate::element::NpzElement;
use crate::header::encode_header;
use crate::{Compression, NpzError};

/// Bytes encoded per write.
const CHUNK_BYTES: usize = 256 * 1024;

/// The temporary file under the zip writer. After its first I/O error (a full disk) it
/// accepts and discards everything: the error has already reached [`NpzWriter`]'s caller, and
/// `ZipWriter`'s `Drop`, which finalises an unfinished archive and prints any failure raw to
/// stderr ("ZipWriter drop failed: Io(...)"), then has nothing to print. A failed file is never
/// committed ([`NpzWriter::finish`] checks), so discarding cannot produce a bad artifact.
struct Sink {
    file: AtomicFile,
    failed: bool,
    /// Position and length as the zip writer sees them, kept after a failure so that its
    /// bookkeeping (it asserts on positions) stays consistent while writes are discarded.
    pos: u64,
    len: u64,
}

impl Sink {
    fn new(file: AtomicFile) -> Sink {
        Sink {
            file,
            failed: false,
            pos: 0,
            len: 0,
        }
    }

    fn advance(&mut self, n: usize) {
        self.pos += n as u64;
        self.len = self.len.max(self.pos);
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.failed {
            match self.file.write(buf) {
                Ok(n) => {
                    self.advance(n);
                    return Ok(n);
                }
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
        self.advance(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.failed {
            return Ok(());
        }
        self.file.flush().inspect_err(|_| self.failed = true)
    }
}

impl std::io::Seek for Sink {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        if !self.failed {
            match self.file.seek(pos) {
                Ok(p) => {
                    self.pos = p;
                    return Ok(p);
                }
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
        let base = |origin: u64, delta: i64| origin.saturating_add_signed(delta);
        self.pos = match pos {
            std::io::SeekFrom::Start(p) => p,
            std::io::SeekFrom::Current(d) => base(self.pos, d),
            std::io::SeekFrom::End(d) => base(self.len, d),
        };
        Ok(self.pos)
    }
}

/// Writes an NPZ archive. Nothing appears at the target path until [`NpzWriter::finish`];
/// dropped unfinished, the temporary file is removed.
pub struct NpzWriter {
    path: PathBuf,
    compression: Compression,
    zip: ZipWriter<BufWriter<Sink>>,
    keys: HashSet<String>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for NpzWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpzWriter")
            .field("path", &self.path)
            .field("compression", &self.compression)
            .finish()
    }
}

impl NpzWriter {
    /// Starts writing `path` (its folder must exist) through a temporary file beside it.
    pub fn create(path: &Path, compression: Compression) -> Result<Self, NpzError> {
        let file = AtomicFile::create(path).map_err(|source| NpzError::Io {
            path: path.to_path_buf(),
            action: "creating a temporary file beside".to_string(),
            source,
        })?;
        Ok(NpzWriter {
            path: path.to_path_buf(),
            compression,
            zip: ZipWriter::new(BufWriter::with_capacity(CHUNK_BYTES, Sink::new(file))),
            keys: HashSet::new(),
            buf: Vec::with_capacity(CHUNK_BYTES + 64),
        })
    }

    fn io(&self, key: &str, source: std::io::Error) -> NpzError {
        NpzError::Io {
            path: self.path.clone(),
            action: format!("writing member '{key}'"),
            source,
        }
    }

    fn zip_err(&self, key: &str, e: zip::result::ZipError) -> NpzError {
        let source = match e {
            zip::result::ZipError::Io(io) => io,
            other => std::io::Error::other(other.to_string()),
        };
        self.io(key, source)
    }

    fn start(&mut self, key: &str, total_bytes: u64) -> Result<(), NpzError> {
        let invalid = |reason: &str| NpzError::InvalidKey {
            path: self.path.clone(),
            key: key.to_string(),
            reason: reason.to_string(),
        };
        if key.is_empty() {
            return Err(invalid("keys must not be empty"));
        }
        if key.contains('\0') {
            return Err(invalid("keys must not contain NUL"));
        }
        if !self.keys.insert(key.to_string()) {
            return Err(invalid("already written to this archive"));
        }
        let method = match self.compression {
            Compression::Stored => zip::CompressionMethod::Stored,
            Compression::Deflated => zip::CompressionMethod::Deflated,
        };
        // ZIP64 only when a member might not fit 32-bit sizes (deflate can grow incompressible
        // data by a few bytes per 16 KiB block): small files stay plain ZIP.
        let margin = total_bytes / 1000 + (1 << 20);
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .last_modified_time(DateTime::default())
            .unix_permissions(0o644)
            .large_file(total_bytes.saturating_add(margin) >= u64::from(u32::MAX));
        self.zip
            .start_file(format!("{key}.npy"), options)
            .map_err(|e| self.zip_err(key, e))
    }

    /// Adds `array` as member `<key>.npy` (C order, little-endian), whatever its memory layout.
    pub fn add<T: NpzElement, S: Data<Elem = T>, D: Dimension>(
        &mut self,
        key: &str,
        array: &ArrayBase<S, D>,
    ) -> Result<(), NpzError> {
        let header = encode_header(T::DESCR, array.shape());
        let data_bytes = (array.len() as u64).saturating_mul(T::SIZE as u64);
        self.start(key, header.len() as u64 + data_bytes)?;
        self.zip.write_all(&header).map_err(|e| self.io(key, e))?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut result = Ok(());
        let mut flush = |zip: &mut ZipWriter<_>, buf: &mut Vec<u8>| {
            if result.is_ok() {
                result = zip.write_all(buf);
            }
            buf.clear();
        };
        if let Some(items) = array.as_slice() {
            for chunk in items.chunks(CHUNK_BYTES / T::SIZE) {
                for x in chunk {
                    x.encode(&mut buf);
                }
                flush(&mut self.zip, &mut buf);
            }
        } else {
            for x in array.iter() {
                x.encode(&mut buf);
                if buf.len() >= CHUNK_BYTES {
                    flush(&mut self.zip, &mut buf);
                }
            }
            flush(&mut self.zip, &mut buf);
        }
        self.buf = buf;
        result.map_err(|e| self.io(key, e))
    }

    /// Adds a 0-d unicode member (`<U`), e.g. `_metadata` JSON.
    pub fn add_string(&mut self, key: &str, value: &str) -> Result<(), NpzError> {
        self.add_unicode(key, &[value], &[])
    }

    /// Adds a 1-d unicode member (`<U`), e.g. `filenames`.
    pub fn add_strings(&mut self, key: &str, values: &[String]) -> Result<(), NpzError> {
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        self.add_unicode(key, &refs, &[values.len()])
    }

    fn add_unicode(&mut self, key: &str, values: &[&str], shape: &[usize]) -> Result<(), NpzError> {
        // NumPy sizes `<U` to the longest string, at least one character.
        let width = values
            .iter()
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0)
            .max(1);
        let header = encode_header(&format!("<U{width}"), shape);
        let data_bytes = (values.len() * width * 4) as u64;
        self.start(key, header.len() as u64 + data_bytes)?;
        let mut bytes = header;
        bytes.reserve(values.len() * width * 4);
        for s in values {
            let mut n = 0;
            for c in s.chars() {
                bytes.extend_from_slice(&u32::from(c).to_le_bytes());
                n += 1;
            }
            bytes.resize(bytes.len() + (width - n) * 4, 0);
        }
        self.zip.write_all(&bytes).map_err(|e| self.io(key, e))
    }

    /// Completes the archive and renames it onto the target path.
    pub fn finish(self) -> Result<(), NpzError> {
        let path = self.path.clone();
        let io = |source| NpzError::Io {
            path: path.clone(),
            action: "finishing".to_string(),
            source,
        };
        let buffered = self.zip.finish().map_err(|e| match e {
            zip::result::ZipError::Io(source) => io(source),
            other => io(std::io::Error::other(other.to_string())),
        })?;
        let sink = buffered.into_inner().map_err(|e| io(e.into_error()))?;
        if sink.failed {
            // An earlier write failed and its error was returned; never commit such a file.
            return Err(io(std::io::Error::other(
                "an earlier write to this archive failed",
            )));
        }
        sink.file.commit().map_err(io)
    }
}
