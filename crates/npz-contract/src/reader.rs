//! Reading NPZ archives: every member's `.npy` header is inspected with bounded reads when the
//! archive is opened, and array data is only ever read for members whose header agrees with the
//! member's size, into buffers sized from that checked header.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use zip::ZipArchive;

use crate::element::NpzElement;
use crate::header::{self, Dtype, DtypeKind};
use crate::{Compression, NpzError, pyzip};

/// Bytes decoded per step when streaming a member: big enough to amortise calls, small enough
/// to stay in cache between the read and the decode.
const CHUNK_BYTES: usize = 256 * 1024;

/// Members from this size on are read on a second thread while the caller decodes.
const PIPELINE_MIN_BYTES: u64 = 4 << 20;

/// Chunk buffers in flight between the reading thread and the decoding one.
const PIPELINE_BUFFERS: usize = 3;

/// Deflate cannot expand data more than 1032:1; a member claiming more lies about its size.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Largest 0-d string member read ([`NpzReader::read_string`], e.g. `_metadata`): provenance
/// JSON is a few KiB; a declared size 1000x the file (deflate) must not become an allocation.
pub const MAX_STRING_BYTES: u64 = 1 << 20;

/// Most items a 1-d string member may hold for [`NpzReader::read_strings`] (each is a `String`
/// in memory, whatever its stored width; `<U0` items store nothing at all).
pub const MAX_STRING_ITEMS: usize = 1 << 22;

/// Items reserved before any data is read; beyond this the array grows as data arrives, so a
/// forged (deflate-inflated) size costs memory only once the data really exists.
const INITIAL_RESERVE_BYTES: usize = 1 << 20;

/// NumPy refuses `.npy` headers longer than this (`max_header_size`) unless told otherwise.
const NUMPY_MAX_HEADER_LEN: usize = 10_000;

/// One `.npy` member whose header passed inspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// The key (the member name without `.npy`).
    pub key: String,
    /// The header's `descr`, e.g. `<f4`, `>c8`, `<U8`, `|O`.
    pub descr: String,
    /// The array's shape (empty for 0-d).
    pub shape: Vec<usize>,
    /// Whether the data is stored in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The parsed `descr`.
    pub dtype: Dtype,
    /// How the member is stored in the archive.
    pub compression: Compression,
    /// Bytes of array data after the header (checked against shape x itemsize unless pickled).
    pub data_bytes: u64,
    items: usize,
    index: usize,
    header_bytes: u64,
}

impl MemberInfo {
    /// NumPy's name for the dtype (`float32`, `complex64`, `unicode <U8`, `object (pickled)`).
    pub fn dtype_name(&self) -> String {
        header::dtype_name(&self.descr, &self.dtype)
    }

    /// Number of items (1 for 0-d). Checked against overflow when the archive was opened.
    pub fn len(&self) -> usize {
        self.items
    }

    /// Whether the array holds no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shape as Python writes it: `()`, `(5,)`, `(3, 4)`.
    pub fn shape_text(&self) -> String {
        header::shape_repr(&self.shape)
    }
}

/// An archive member that cannot be read as an array, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedMember {
    /// The member's name inside the zip (`x.npy`).
    pub name: String,
    /// The key it would have (the name without `.npy`).
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
    /// Its index in the archive.
    index: usize,
}

/// A stored value that does not fit `T` (an integer out of range), naming the member.
fn out_of_range<T>(path: &Path, info: &MemberInfo, value: String) -> NpzError {
    NpzError::OutOfRange {
        path: path.to_path_buf(),
        key: info.key.clone(),
        expected: std::any::type_name::<T>().to_string(),
        found: format!("the value {value} ({})", info.dtype_name()),
    }
}

/// An open NPZ archive.
pub struct NpzReader {
    path: PathBuf,
    archive: ZipArchive<BufReader<File>>,
    members: Vec<MemberInfo>,
    rejected: Vec<RejectedMember>,
}

impl std::fmt::Debug for NpzReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpzReader")
            .field("path", &self.path)
            .field("members", &self.members)
            .field("rejected", &self.rejected)
            .finish()
    }
}

impl NpzReader {
    /// Opens `path`, lists its members and inspects every member's header (bounded reads; no
    /// array data is read). A member with a bad header does not fail the whole archive: it is
    /// listed in [`NpzReader::rejected`] and reading it gives an error naming the reason.
    pub fn open(path: &Path) -> Result<Self, NpzError> {
        let io_err = |action: &str, source| NpzError::Io {
            path: path.to_path_buf(),
            action: action.to_string(),
            source,
        };
        // Checked before opening: opening a FIFO for reading would block.
        let meta = std::fs::metadata(path).map_err(|e| io_err("cannot open", e))?;
        if !meta.is_file() {
            let what = if meta.is_dir() {
                "a directory"
            } else {
                "not a regular file"
            };
            return Err(NpzError::NotAnArchive {
                path: path.to_path_buf(),
                reason: format!("it is {what}"),
            });
        }
        let mut file = File::open(path).map_err(|e| io_err("cannot open", e))?;
        let file_len = file
            .metadata()
            .map_err(|e| io_err("cannot read metadata", e))?
            .len();
        if file_len == 0 {
            return Err(NpzError::NotAnArchive {
                path: path.to_path_buf(),
                reason: "the file is empty".into(),
            });
        }
        precheck_directory(&file, file_len).map_err(|reason| NpzError::NotAnArchive {
            path: path.to_path_buf(),
            reason,
        })?;
        let python = pyzip::python_view(&mut file, file_len);
        let archive =
            ZipArchive::new(BufReader::new(file)).map_err(|e| NpzError::NotAnArchive {
                path: path.to_path_buf(),
                reason: describe_zip_error(&e),
            })?;
        let numpy_refuses = |why: String| NpzError::NotAnArchive {
            path: path.to_path_buf(),
            reason: format!("numpy.load cannot read it: {why}"),
        };
        let python = python.map_err(numpy_refuses)?;
        pyzip::check_names(&python).map_err(numpy_refuses)?;
        let mut reader = NpzReader {
            path: path.to_path_buf(),
            archive,
            members: Vec::new(),
            rejected: Vec::new(),
        };
        agree_with_python(&mut reader.archive, &python).map_err(numpy_refuses)?;
        for index in 0..reader.archive.len() {
            match inspect(&mut reader.archive, index, file_len) {
                Ok(Some(info)) => reader.members.push(info),
                Ok(None) => {}
                Err(rejected) => reader.rejected.push(rejected),
            }
        }
        Ok(reader)
    }

    /// The file this reader reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The members whose header passed inspection, in archive order.
    pub fn members(&self) -> &[MemberInfo] {
        &self.members
    }

    /// Members that cannot be read (malformed, forged or inconsistent header, unsupported
    /// compression, not `.npy`).
    pub fn rejected(&self) -> &[RejectedMember] {
        &self.rejected
    }

    /// The member with this key, if its header passed inspection.
    pub fn member(&self, key: &str) -> Option<&MemberInfo> {
        self.members.iter().find(|m| m.key == key)
    }

    fn lookup(&self, key: &str) -> Result<MemberInfo, NpzError> {
        if let Some(info) = self.member(key) {
            return Ok(info.clone());
        }
        if let Some(bad) = self.rejected.iter().find(|r| r.key == key) {
            return Err(NpzError::BadMember {
                path: self.path.clone(),
                key: key.to_string(),
                reason: bad.reason.clone(),
            });
        }
        Err(NpzError::MissingKey {
            path: self.path.clone(),
            key: key.to_string(),
            found: self
                .members
                .iter()
                .map(|m| m.key.clone())
                .chain(self.rejected.iter().map(|r| r.key.clone()))
                .collect(),
        })
    }

    fn wrong_dtype(&self, info: &MemberInfo, expected: &str) -> NpzError {
        NpzError::WrongDtype {
            path: self.path.clone(),
            key: info.key.clone(),
            expected: expected.to_string(),
            found: format!("{} ({})", info.dtype_name(), info.descr),
        }
    }

    /// Reads a numeric member as an array of `T` in standard (C) layout, converting within a
    /// kind (float and complex widths, integer widths with a range check, either byte order,
    /// Fortran order). A missing key, another kind or a pickled member is an error naming the
    /// key, what was expected and what was found. Memory grows with the data actually read:
    /// a member whose declared size its stored bytes do not hold fails when they run out.
    pub fn read<T: NpzElement>(&mut self, key: &str) -> Result<ArrayD<T>, NpzError> {
        let info = self.lookup(key)?;
        if !T::accepts(&info.dtype) {
            return Err(self.wrong_dtype(&info, T::EXPECTED));
        }
        let n = info.len();
        let too_large = |path: &Path| NpzError::TooLarge {
            path: path.to_path_buf(),
            key: key.to_string(),
            bytes: n as u128 * T::SIZE as u128,
        };
        let mut out: Vec<T> = Vec::new();
        out.try_reserve_exact(n.min(INITIAL_RESERVE_BYTES / T::SIZE.max(1)))
            .map_err(|_| too_large(&self.path))?;
        let path = self.path.clone();
        let align = info.dtype.itemsize.unwrap_or(1).max(1);
        self.stream_bytes(&info, align, |bytes| {
            out.try_reserve(bytes.len() / align)
                .map_err(|_| too_large(&path))?;
            T::decode(&info.dtype, bytes, &mut out).map_err(|v| out_of_range::<T>(&path, &info, v))
        })?;
        let corrupt = |e: ndarray::ShapeError| NpzError::Corrupt {
            path: self.path.clone(),
            key: key.to_string(),
            reason: e.to_string(),
        };
        if info.fortran_order && info.shape.len() > 1 {
            let array = ArrayD::from_shape_vec(IxDyn(&info.shape).f(), out).map_err(corrupt)?;
            Ok(array.as_standard_layout().into_owned())
        } else {
            ArrayD::from_shape_vec(IxDyn(&info.shape), out).map_err(corrupt)
        }
    }

    /// Streams a numeric member as `T` in chunks of storage order (C order, or Fortran order
    /// when [`MemberInfo::fortran_order`]), without holding the whole array: for checks that
    /// visit every value once. Conversions as in [`NpzReader::read`].
    pub fn for_each_chunk<T: NpzElement>(
        &mut self,
        key: &str,
        mut visit: impl FnMut(&[T]),
    ) -> Result<(), NpzError> {
        let info = self.lookup(key)?;
        if !T::accepts(&info.dtype) {
            return Err(self.wrong_dtype(&info, T::EXPECTED));
        }
        let path = self.path.clone();
        let mut items: Vec<T> = Vec::new();
        let align = info.dtype.itemsize.unwrap_or(1).max(1);
        self.stream_bytes(&info, align, |bytes| {
            items.clear();
            T::decode(&info.dtype, bytes, &mut items)
                .map_err(|v| out_of_range::<T>(&path, &info, v))?;
            visit(&items);
            Ok(())
        })
    }

    /// Reads a member's stored data through without decoding it, so that the zip layer checks
    /// its length and CRC-32: integrity for members no other check reads (pickles included,
    /// whose bytes are never interpreted).
    pub fn verify(&mut self, key: &str) -> Result<(), NpzError> {
        let info = self.lookup(key)?;
        self.stream_bytes(&info, 1, |_| Ok(()))
    }

    /// Reads every member that is not a `.npy` array (a `notes.txt`) through, so that the zip
    /// layer checks its length and CRC-32: `numpy.load` lists such members as keys and reading
    /// one checks them. Errors name the member.
    pub fn verify_other_members(&mut self) -> Vec<String> {
        let others: Vec<(usize, String)> = self
            .rejected
            .iter()
            .filter(|r| r.reason.starts_with("not a .npy member"))
            .map(|r| (r.index, r.name.clone()))
            .collect();
        let mut errors = Vec::new();
        let mut buf = vec![0u8; CHUNK_BYTES];
        for (index, name) in others {
            let result = self
                .archive
                .by_index(index)
                .map_err(|e| describe_zip_error(&e))
                .and_then(|mut member| {
                    loop {
                        match member.read(&mut buf) {
                            Ok(0) => break Ok(()),
                            Ok(_) => {}
                            Err(e) => break Err(io_reason(e)),
                        }
                    }
                });
            if let Err(reason) = result {
                errors.push(format!("member '{name}' is corrupt: {reason}"));
            }
        }
        errors
    }

    /// Reads a 0-d unicode (`<U`) member, e.g. a JSON `_metadata` string, of at most
    /// [`MAX_STRING_BYTES`] stored bytes.
    pub fn read_string(&mut self, key: &str) -> Result<String, NpzError> {
        let info = self.lookup(key)?;
        if !info.shape.is_empty() {
            return Err(NpzError::WrongShape {
                path: self.path.clone(),
                key: key.to_string(),
                expected: "() (a 0-d string)".to_string(),
                found: info.shape_text(),
            });
        }
        if info.dtype.kind == DtypeKind::Unicode && info.data_bytes > MAX_STRING_BYTES {
            return Err(NpzError::Limit {
                path: self.path.clone(),
                key: key.to_string(),
                what: format!(
                    "is a {} string of {} bytes ({})",
                    info.descr,
                    info.data_bytes,
                    info.dtype_name()
                ),
                limit: format!(
                    "{MAX_STRING_BYTES} bytes for a 0-d string such as _metadata (provenance JSON is a few KiB)"
                ),
            });
        }
        let mut out = String::new();
        self.for_each_string(&info, |s| {
            out = s.to_string();
            Ok(())
        })?;
        Ok(out)
    }

    /// Reads a 1-d unicode (`<U`) member, e.g. `filenames`, of at most [`MAX_STRING_ITEMS`].
    pub fn read_strings(&mut self, key: &str) -> Result<Vec<String>, NpzError> {
        let info = self.lookup(key)?;
        if info.shape.len() != 1 {
            return Err(NpzError::WrongShape {
                path: self.path.clone(),
                key: key.to_string(),
                expected: "(n,) (a 1-d array of strings)".to_string(),
                found: info.shape_text(),
            });
        }
        if info.dtype.kind == DtypeKind::Unicode && info.len() > MAX_STRING_ITEMS {
            return Err(NpzError::Limit {
                path: self.path.clone(),
                key: key.to_string(),
                what: format!("holds {} strings", info.len()),
                limit: format!("{MAX_STRING_ITEMS} strings"),
            });
        }
        let mut out: Vec<String> = Vec::new();
        self.for_each_string(&info, |s| {
            out.push(s.to_string());
            Ok(())
        })?;
        Ok(out)
    }

    /// Checks a unicode member's items (valid code points) without holding them: the
    /// validator's pass over `filenames`.
    pub fn check_strings(&mut self, key: &str) -> Result<(), NpzError> {
        let info = self.lookup(key)?;
        self.for_each_string(&info, |_| Ok(()))
    }

    /// Streams a unicode member's items in storage order, decoding each as its code points
    /// arrive (an item may span chunks; no buffer is sized from the declared width), and hands
    /// each complete item to `visit`. Only 0-d and 1-d members come here, where C and Fortran
    /// order coincide.
    fn for_each_string(
        &mut self,
        info: &MemberInfo,
        mut visit: impl FnMut(&str) -> Result<(), NpzError>,
    ) -> Result<(), NpzError> {
        if info.dtype.kind != DtypeKind::Unicode {
            return Err(self.wrong_dtype(info, "unicode strings (<U)"));
        }
        let units_per_item = info.dtype.itemsize.unwrap_or(0) / 4;
        if units_per_item == 0 {
            // `<U0`: items hold nothing; each is the empty string.
            for _ in 0..info.len() {
                visit("")?;
            }
            return Ok(());
        }
        let big = info.dtype.order == header::ByteOrder::Big;
        let path = self.path.clone();
        let corrupt = |reason: String| NpzError::Corrupt {
            path: path.clone(),
            key: info.key.clone(),
            reason,
        };
        // The item so far, and the NULs seen since its last non-NUL (NumPy strips trailing
        // NULs only, so inner ones are kept once something follows them).
        let mut item = String::new();
        let (mut units, mut pending_nuls) = (0usize, 0usize);
        self.stream_bytes(info, 4, |bytes| {
            for c in bytes.chunks_exact(4) {
                let w = [c[0], c[1], c[2], c[3]];
                let u = if big {
                    u32::from_be_bytes(w)
                } else {
                    u32::from_le_bytes(w)
                };
                if u == 0 {
                    pending_nuls += 1;
                } else {
                    let ch = char::from_u32(u).ok_or_else(|| {
                        corrupt(format!("invalid unicode code point {u:#x} in a <U string"))
                    })?;
                    // Bounded by the stored bytes: at most one char per 4 bytes read.
                    item.extend(std::iter::repeat_n('\0', pending_nuls));
                    pending_nuls = 0;
                    item.push(ch);
                }
                units += 1;
                if units == units_per_item {
                    visit(&item)?;
                    item.clear();
                    (units, pending_nuls) = (0, 0);
                }
            }
            Ok(())
        })
    }

    /// Reads the member's data in chunks of whole `align`-byte units (about CHUNK_BYTES) and hands
    /// each to `sink`, then checks the member ends there, which also makes the zip reader
    /// verify the CRC. Large members are read on a scoped thread (inflate, CRC) while this one
    /// runs `sink` (decoding, page faults of the new array): the two costs overlap.
    fn stream_bytes(
        &mut self,
        info: &MemberInfo,
        align: usize,
        mut sink: impl FnMut(&[u8]) -> Result<(), NpzError>,
    ) -> Result<(), NpzError> {
        let corrupt = |reason: String| NpzError::Corrupt {
            path: self.path.clone(),
            key: info.key.clone(),
            reason,
        };
        let mut member = self
            .archive
            .by_index(info.index)
            .map_err(|e| corrupt(describe_zip_error(&e)))?;
        let mut skip = vec![0u8; usize::try_from(info.header_bytes).unwrap_or(0)];
        member
            .read_exact(&mut skip)
            .map_err(|e| corrupt(io_reason(e)))?;
        // Chunks hold whole units of `align` bytes (an item of a numeric dtype, a code point of
        // a string), never a whole item of a declared width: buffers stay CHUNK_BYTES.
        let align = align.clamp(1, 64);
        let chunk = (CHUNK_BYTES / align).max(1) * align;
        let chunk = chunk.min(usize::try_from(info.data_bytes).unwrap_or(usize::MAX));
        let data_bytes = info.data_bytes;

        if data_bytes < PIPELINE_MIN_BYTES {
            let mut buf = vec![0u8; chunk];
            let mut left = data_bytes;
            while left > 0 {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                member
                    .read_exact(&mut buf[..take])
                    .map_err(|e| corrupt(io_reason(e)))?;
                sink(&buf[..take])?;
                left -= take as u64;
            }
            return check_end(&mut member).map_err(corrupt);
        }

        enum Msg {
            Data(Vec<u8>, usize),
            End(Result<(), String>),
        }
        let (full_tx, full_rx) = mpsc::sync_channel::<Msg>(PIPELINE_BUFFERS);
        let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(PIPELINE_BUFFERS);
        for _ in 0..PIPELINE_BUFFERS {
            empty_tx
                .send(vec![0u8; chunk])
                .expect("the channel holds every buffer");
        }
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut left = data_bytes;
                while left > 0 {
                    // Either channel closing means the consumer stopped: stop too.
                    let Ok(mut buf) = empty_rx.recv() else { return };
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    if let Err(e) = member.read_exact(&mut buf[..take]) {
                        let _ = full_tx.send(Msg::End(Err(io_reason(e))));
                        return;
                    }
                    left -= take as u64;
                    if full_tx.send(Msg::Data(buf, take)).is_err() {
                        return;
                    }
                }
                let _ = full_tx.send(Msg::End(check_end(&mut member)));
            });
            let result = loop {
                match full_rx.recv() {
                    Ok(Msg::Data(buf, len)) => {
                        if let Err(e) = sink(&buf[..len]) {
                            break Err(e);
                        }
                        let _ = empty_tx.send(buf);
                    }
                    Ok(Msg::End(end)) => break end.map_err(corrupt),
                    Err(_) => break Err(corrupt("the reading thread stopped early".to_string())),
                }
            };
            // Unblocks the reading thread if it is still running, before the scope joins it.
            drop(full_rx);
            drop(empty_tx);
            result
        })
    }
}

/// Turns an I/O error met inside a member into what it means for the user.
fn io_reason(e: std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            "the member ends before its data does (truncated archive)".to_string()
        }
        std::io::ErrorKind::InvalidData if e.to_string().contains("checksum") => {
            "CRC-32 mismatch: the stored data was altered or damaged".to_string()
        }
        _ => e.to_string(),
    }
}

/// After the data the header describes, the member must end (reading to the end is also what
/// makes the zip reader check the CRC).
fn check_end(member: &mut impl Read) -> Result<(), String> {
    let mut probe = [0u8; 1];
    match member.read(&mut probe) {
        Ok(0) => Ok(()),
        Ok(_) => Err("the member holds more data than its header describes".to_string()),
        Err(e) => Err(io_reason(e)),
    }
}

/// Turns zip errors into sentences a user can act on.
fn describe_zip_error(e: &zip::result::ZipError) -> String {
    use zip::result::ZipError;
    match e {
        ZipError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the archive ends early (truncated)".to_string()
        }
        ZipError::InvalidArchive(why) => format!("invalid or truncated ZIP archive ({why})"),
        ZipError::UnsupportedArchive(why) => format!("unsupported ZIP feature ({why})"),
        other => other.to_string(),
    }
}

/// Checks the end-of-central-directory record's counts against the file's size before the zip
/// reader sizes anything from them: a few hundred hostile bytes must not claim billions of
/// entries.
fn precheck_directory(file: &File, file_len: u64) -> Result<(), String> {
    use std::io::{Seek, SeekFrom};
    // EOCD is 22 bytes plus a comment of at most 65535 bytes at the end of the file.
    let tail_len = file_len.min(22 + 65_535);
    let mut tail = vec![0u8; usize::try_from(tail_len).unwrap_or(0)];
    let mut f = file;
    f.seek(SeekFrom::Start(file_len - tail_len))
        .map_err(|e| e.to_string())?;
    f.read_exact(&mut tail).map_err(|e| e.to_string())?;
    f.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let Some(pos) = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
    else {
        if file_len < 22 {
            return Err(format!(
                "the file is only {file_len} bytes, too short for a ZIP archive"
            ));
        }
        return Err(
            "no ZIP end-of-central-directory record (not a ZIP file, or truncated)".to_string(),
        );
    };
    let eocd = &tail[pos..];
    let entries = u64::from(u16::from_le_bytes([eocd[10], eocd[11]]));
    // Each central directory entry is at least 46 bytes.
    if entries.saturating_mul(46) > file_len {
        return Err(format!(
            "the directory claims {entries} members, more than a {file_len}-byte file can hold"
        ));
    }
    // ZIP64: the locator (20 bytes) precedes the EOCD and points at the ZIP64 EOCD record.
    let abs = file_len - tail_len + pos as u64;
    if abs >= 20 + 56 {
        let mut loc = [0u8; 20];
        f.seek(SeekFrom::Start(abs - 20))
            .map_err(|e| e.to_string())?;
        f.read_exact(&mut loc).map_err(|e| e.to_string())?;
        if loc[..4] == [0x50, 0x4b, 0x06, 0x07] {
            let rec = u64::from_le_bytes(loc[8..16].try_into().expect("8 bytes"));
            if rec.saturating_add(56) > file_len {
                return Err("the ZIP64 directory locator points past the end of the file (truncated or forged)".into());
            }
            let mut z = [0u8; 56];
            f.seek(SeekFrom::Start(rec)).map_err(|e| e.to_string())?;
            f.read_exact(&mut z).map_err(|e| e.to_string())?;
            if z[..4] == [0x50, 0x4b, 0x06, 0x06] {
                let n = u64::from_le_bytes(z[32..40].try_into().expect("8 bytes"));
                let n_disk = u64::from_le_bytes(z[24..32].try_into().expect("8 bytes"));
                if n.max(n_disk).saturating_mul(46) > file_len {
                    return Err(format!(
                        "the ZIP64 directory claims {} members, more than a {file_len}-byte file can hold",
                        n.max(n_disk)
                    ));
                }
            }
        }
        f.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The `zip` crate must read every member where Python's `zipfile` does: same members in the
/// same order, same names, headers, data offsets, sizes, CRCs and methods. Otherwise the bytes
/// checked here are not the bytes NumPy would load.
fn agree_with_python(
    archive: &mut ZipArchive<BufReader<File>>,
    python: &[pyzip::PyEntry],
) -> Result<(), String> {
    if archive.len() != python.len() {
        return Err(format!(
            "Python's zipfile lists {} member(s) where the central directory's offset gives {} \
             (corrupt central-directory size or offset)",
            python.len(),
            archive.len()
        ));
    }
    for (index, py) in python.iter().enumerate() {
        // Members the zip crate cannot open are rejected (with its reason) when inspected.
        let Ok(file) = archive.by_index_raw(index) else {
            continue;
        };
        let method = match file.compression() {
            zip::CompressionMethod::Stored => 0,
            zip::CompressionMethod::Deflated => 8,
            _ => continue,
        };
        let same = file.name() == py.name
            && file.header_start() == py.header_offset
            && file.data_start() == py.data_start
            && file.compressed_size() == py.compress_size
            && file.size() == py.file_size
            && file.crc32() == py.crc
            && method == py.method;
        if !same {
            return Err(format!(
                "member '{}' is not where Python's zipfile reads it (corrupt central-directory offset \
                 or sizes, or a second directory)",
                py.name.escape_debug()
            ));
        }
    }
    Ok(())
}

/// Inspects member `index`: `Ok(None)` for directories, `Err` for anything unreadable.
fn inspect(
    archive: &mut ZipArchive<BufReader<File>>,
    index: usize,
    file_len: u64,
) -> Result<Option<MemberInfo>, RejectedMember> {
    let fallback_name = archive.name_for_index(index).unwrap_or("?").to_string();
    let reject = |name: &str, reason: String| RejectedMember {
        name: name.to_string(),
        key: name.strip_suffix(".npy").unwrap_or(name).to_string(),
        reason,
        index,
    };
    let mut file = archive
        .by_index(index)
        .map_err(|e| reject(&fallback_name, describe_zip_error(&e)))?;
    let name = file.name().to_string();
    if file.is_dir() {
        return Ok(None);
    }
    let Some(key) = name.strip_suffix(".npy").map(str::to_string) else {
        return Err(reject(&name, "not a .npy member".to_string()));
    };
    let compression = match file.compression() {
        zip::CompressionMethod::Stored => Compression::Stored,
        zip::CompressionMethod::Deflated => Compression::Deflated,
        other => {
            return Err(reject(
                &name,
                format!(
                    "compression method {other:?} is not supported (expected stored or deflated)"
                ),
            ));
        }
    };
    let (size, packed) = (file.size(), file.compressed_size());
    if packed > file_len {
        return Err(reject(
            &name,
            format!("claims {packed} compressed bytes in a {file_len}-byte file"),
        ));
    }
    match compression {
        Compression::Stored if size != packed => {
            return Err(reject(
                &name,
                format!("stored member claims {size} bytes but occupies {packed}"),
            ));
        }
        Compression::Deflated
            if size
                > packed
                    .saturating_mul(MAX_DEFLATE_RATIO)
                    .saturating_add(1024) =>
        {
            return Err(reject(
                &name,
                format!(
                    "claims {size} bytes inflated from {packed}: more than deflate can expand (forged size)"
                ),
            ));
        }
        _ => {}
    }
    let mut prefix = Vec::with_capacity(12);
    let want = size.min(12);
    (&mut file)
        .take(want)
        .read_to_end(&mut prefix)
        .map_err(|e| reject(&name, format!("reading its header: {e}")))?;
    let preamble = header::parse_preamble(&prefix).map_err(|r| reject(&name, r))?;
    let header_bytes = (preamble.prefix_len + preamble.header_len) as u64;
    if header_bytes > size {
        return Err(reject(
            &name,
            format!(
                "header length field says {} bytes but the member holds only {size} bytes (forged or truncated)",
                preamble.header_len
            ),
        ));
    }
    if preamble.header_len > NUMPY_MAX_HEADER_LEN {
        return Err(reject(
            &name,
            format!(
                "header text is {} bytes; numpy.load refuses headers over {NUMPY_MAX_HEADER_LEN} \
                 (max_header_size)",
                preamble.header_len
            ),
        ));
    }
    let mut text = vec![0u8; preamble.header_len];
    // The preamble read took 12 bytes; a v1 header's text starts at byte 10.
    let already = prefix.len() - preamble.prefix_len;
    let already = already.min(text.len());
    text[..already].copy_from_slice(&prefix[preamble.prefix_len..preamble.prefix_len + already]);
    file.read_exact(&mut text[already..])
        .map_err(|e| reject(&name, format!("reading its header: {e}")))?;
    let header = header::parse_header(&text, preamble.utf8).map_err(|r| reject(&name, r))?;
    let dtype = Dtype::parse(&header.descr);
    let data_bytes = size - header_bytes;
    let overflow = || {
        reject(
            &name,
            format!(
                "header claims shape {} of {}: its size overflows (forged header)",
                header::shape_repr(&header.shape),
                header.descr
            ),
        )
    };
    let items = header
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(overflow)?;
    // Pickled members' bytes are a pickle, not items; other unsized dtypes are never decoded.
    if let Some(itemsize) = dtype.itemsize {
        let expected = items.checked_mul(itemsize).ok_or_else(overflow)? as u64;
        if expected != data_bytes {
            return Err(reject(
                &name,
                format!(
                    "header says shape {} of {} = {expected} bytes of data, but the member holds {data_bytes} bytes",
                    header::shape_repr(&header.shape),
                    header.descr
                ),
            ));
        }
    }
    Ok(Some(MemberInfo {
        key,
        descr: header.descr,
        shape: header.shape,
        fortran_order: header.fortran_order,
        dtype,
        compression,
        data_bytes,
        items,
        index,
        header_bytes,
    }))
}
