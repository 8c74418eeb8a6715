//! How Python's `zipfile` (and so `numpy.load`) sees an archive: a bounded re-reading of the
//! end record, central directory and local headers that follows CPython 3.11's `_EndRecData`,
//! `_RealGetContents`, `ZipInfo._decodeExtra` and `ZipFile.open` step by step, so that the
//! reader can refuse what NumPy would not read even where the `zip` crate is more lenient
//! (names that differ between the local and central headers, a central directory found by
//! its offset where Python computes it from the end record, versions above 6.3, ...).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};

/// Python's `zipfile.MAX_EXTRACT_VERSION` (6.3).
const MAX_EXTRACT_VERSION: u16 = 63;

/// More members than any NPZ holds; a directory claiming more is refused before it is listed.
pub(crate) const MAX_MEMBERS: usize = 100_000;

/// One member as Python's `zipfile` reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PyEntry {
    /// The name, decoded as Python decodes it (UTF-8 with flag bit 11, else cp437).
    pub name: String,
    /// Where its local header starts (with Python's `concat` correction).
    pub header_offset: u64,
    /// Where its data starts (after the local header, name and extra field).
    pub data_start: u64,
    /// Compressed size from the central directory (after the ZIP64 extra field).
    pub compress_size: u64,
    /// Uncompressed size from the central directory.
    pub file_size: u64,
    /// CRC-32 from the central directory.
    pub crc: u32,
    /// Compression method.
    pub method: u16,
}

/// Reads up to `n` bytes (fewer at the end of the data, as Python's `read(n)` does).
fn read_up_to(r: &mut impl Read, n: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    r.take(n as u64).read_to_end(&mut out)?;
    Ok(out)
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// The end record as `_EndRecData` returns it (only the fields `_RealGetContents` uses).
struct EndRecord {
    zip64: bool,
    size_cd: u64,
    offset_cd: u64,
    location: u64,
}

/// Python's `_EndRecData` and `_EndRecData64`.
fn end_record(f: &mut File, file_len: u64) -> Result<EndRecord, String> {
    let not_zip = || "File is not a zip file (no end-of-central-directory record)".to_string();
    let io = |e: std::io::Error| e.to_string();
    if file_len < 22 {
        return Err(not_zip());
    }
    f.seek(SeekFrom::Start(file_len - 22)).map_err(io)?;
    let last = read_up_to(f, 22).map_err(io)?;
    let (rec, location) = if last.len() == 22 && last[..4] == *b"PK\x05\x06" && last[20..] == [0, 0]
    {
        (last, file_len - 22)
    } else {
        let start = file_len.saturating_sub((1 << 16) + 22);
        f.seek(SeekFrom::Start(start)).map_err(io)?;
        let data =
            read_up_to(f, usize::try_from(file_len - start).unwrap_or(usize::MAX)).map_err(io)?;
        let Some(at) = data.windows(4).rposition(|w| w == b"PK\x05\x06") else {
            return Err(not_zip());
        };
        if data.len() - at < 22 {
            return Err(not_zip());
        }
        (data[at..at + 22].to_vec(), start + at as u64)
    };
    let mut end = EndRecord {
        zip64: false,
        size_cd: u64::from(u32_at(&rec, 12)),
        offset_cd: u64::from(u32_at(&rec, 16)),
        location,
    };
    // _EndRecData64: the locator just before the end record, the ZIP64 record just before it
    // (Python assumes no extensible data and ignores the locator's offset).
    let Some(loc_at) = location.checked_sub(20) else {
        return Ok(end);
    };
    f.seek(SeekFrom::Start(loc_at)).map_err(io)?;
    let loc = read_up_to(f, 20).map_err(io)?;
    if loc.len() != 20 || loc[..4] != *b"PK\x06\x07" {
        return Ok(end);
    }
    if u32_at(&loc, 4) != 0 || u32_at(&loc, 16) > 1 {
        return Err("zipfiles that span multiple disks are not supported".into());
    }
    let Some(rec_at) = loc_at.checked_sub(56) else {
        // Python's seek to a negative position raises OSError: "File is not a zip file".
        return Err(not_zip());
    };
    f.seek(SeekFrom::Start(rec_at)).map_err(io)?;
    let z = read_up_to(f, 56).map_err(io)?;
    if z.len() != 56 || z[..4] != *b"PK\x06\x06" {
        return Ok(end);
    }
    end.zip64 = true;
    end.size_cd = u64_at(&z, 40);
    end.offset_cd = u64_at(&z, 48);
    Ok(end)
}

/// Decodes a name as Python does: UTF-8 with flag bit 11 (an error if invalid), else cp437.
fn decode_name(raw: &[u8], utf8: bool) -> Result<String, String> {
    if utf8 {
        return String::from_utf8(raw.to_vec())
            .map_err(|_| "a member name flagged UTF-8 is not valid UTF-8".to_string());
    }
    Ok(raw
        .iter()
        .map(|&b| {
            if b < 0x80 {
                char::from(b)
            } else {
                CP437_HIGH[usize::from(b - 0x80)]
            }
        })
        .collect())
}

/// The members of the archive as Python's `zipfile` lists them and opens them, or the error
/// `numpy.load` would raise (on opening the archive or on reading some member).
pub(crate) fn python_view(f: &mut File, file_len: u64) -> Result<Vec<PyEntry>, String> {
    let io = |e: std::io::Error| e.to_string();
    // numpy.load decides by the first bytes: only a local header or an empty archive's end
    // record make it an NPZ (anything else is tried as a pickle and refused).
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    let magic = read_up_to(f, 4).map_err(io)?;
    if magic != b"PK\x03\x04" && magic != b"PK\x05\x06" {
        return Err(
            "the file does not start with a ZIP local header (PK\\x03\\x04), so numpy.load does not \
             read it as an NPZ (data before the archive?)"
                .into(),
        );
    }
    let end = end_record(f, file_len)?;
    let concat = i128::from(end.location)
        - i128::from(end.size_cd)
        - i128::from(end.offset_cd)
        - if end.zip64 { 56 + 20 } else { 0 };
    let start_dir = i128::from(end.offset_cd) + concat;
    if start_dir < 0 {
        return Err("Bad offset for central directory".into());
    }
    let start_dir = u64::try_from(start_dir).map_err(|_| "Bad offset for central directory")?;
    f.seek(SeekFrom::Start(start_dir)).map_err(io)?;
    let mut cd = BufReader::new((&*f).take(end.size_cd));
    let mut central = Vec::new();
    let mut total = 0u64;
    while total < end.size_cd {
        let rec = read_up_to(&mut cd, 46).map_err(io)?;
        if rec.len() != 46 {
            return Err("Truncated central directory".into());
        }
        if rec[..4] != *b"PK\x01\x02" {
            return Err("Bad magic number for central directory".into());
        }
        if central.len() >= MAX_MEMBERS {
            return Err(format!(
                "the central directory lists more than {MAX_MEMBERS} members"
            ));
        }
        let (extract_version, flags, method) = (u16_at(&rec, 6), u16_at(&rec, 8), u16_at(&rec, 10));
        let crc = u32_at(&rec, 16);
        let (name_len, extra_len, comment_len) =
            (u16_at(&rec, 28), u16_at(&rec, 30), u16_at(&rec, 32));
        let raw_name = read_up_to(&mut cd, name_len.into()).map_err(io)?;
        let name = decode_name(&raw_name, flags & 0x800 != 0)?;
        let extra = read_up_to(&mut cd, extra_len.into()).map_err(io)?;
        read_up_to(&mut cd, comment_len.into()).map_err(io)?;
        // Python checks the version byte (the low byte of "version needed to extract"); the
        // high byte is the host system, which it ignores.
        if extract_version & 0xff > MAX_EXTRACT_VERSION {
            return Err(format!(
                "member '{name}' needs ZIP version {:.1} to extract; Python's zipfile reads up to 6.3",
                f64::from(extract_version & 0xff) / 10.0
            ));
        }
        let mut file_size = u64::from(u32_at(&rec, 24));
        let mut compress_size = u64::from(u32_at(&rec, 20));
        let mut header_offset = u64::from(u32_at(&rec, 42));
        // ZipInfo._decodeExtra.
        let mut rest = &extra[..];
        while rest.len() >= 4 {
            let (tp, ln) = (u16_at(rest, 0), usize::from(u16_at(rest, 2)));
            if ln + 4 > rest.len() {
                return Err(format!(
                    "Corrupt extra field {tp:04x} (size={ln}) in member '{name}'"
                ));
            }
            if tp == 1 {
                let mut data = &rest[4..ln + 4];
                let mut take = |field: &str| -> Result<u64, String> {
                    if data.len() < 8 {
                        return Err(format!(
                            "Corrupt zip64 extra field. {field} not found (member '{name}')"
                        ));
                    }
                    let v = u64_at(data, 0);
                    data = &data[8..];
                    Ok(v)
                };
                if file_size == 0xFFFF_FFFF || file_size == u64::MAX {
                    file_size = take("File size")?;
                }
                if compress_size == 0xFFFF_FFFF {
                    compress_size = take("Compress size")?;
                }
                if header_offset == 0xFFFF_FFFF {
                    header_offset = take("Header offset")?;
                }
            }
            rest = &rest[ln + 4..];
        }
        let header_offset = i128::from(header_offset) + concat;
        central.push((
            name,
            flags,
            method,
            crc,
            compress_size,
            file_size,
            header_offset,
        ));
        total += 46 + u64::from(name_len) + u64::from(extra_len) + u64::from(comment_len);
    }
    drop(cd);
    // ZipFile.open of every member, as reading every key does.
    let mut entries = Vec::with_capacity(central.len());
    for (name, flags, method, crc, compress_size, file_size, header_offset) in central {
        let header_offset = u64::try_from(header_offset)
            .map_err(|_| format!("member '{name}': its local header offset is negative"))?;
        f.seek(SeekFrom::Start(header_offset)).map_err(io)?;
        let fh = read_up_to(f, 30).map_err(io)?;
        if fh.len() != 30 {
            return Err(format!("Truncated file header (member '{name}')"));
        }
        if fh[..4] != *b"PK\x03\x04" {
            return Err(format!(
                "Bad magic number for file header (member '{name}')"
            ));
        }
        let (local_flags, name_len, extra_len) = (u16_at(&fh, 6), u16_at(&fh, 26), u16_at(&fh, 28));
        let raw_local = read_up_to(f, name_len.into()).map_err(io)?;
        if flags & 0x20 != 0 {
            return Err(format!(
                "member '{name}': compressed patched data (flag bit 5) is not supported"
            ));
        }
        if flags & 0x40 != 0 {
            return Err(format!(
                "member '{name}': strong encryption (flag bit 6) is not supported"
            ));
        }
        let local = decode_name(&raw_local, local_flags & 0x800 != 0)?;
        if local != name {
            return Err(format!(
                "File name in directory '{}' and header '{}' differ",
                name.escape_debug(),
                local.escape_debug()
            ));
        }
        if flags & 1 != 0 {
            return Err(format!(
                "member '{name}' is encrypted, password required for extraction"
            ));
        }
        entries.push(PyEntry {
            name,
            header_offset,
            data_start: header_offset + 30 + u64::from(name_len) + u64::from(extra_len),
            compress_size,
            file_size,
            crc,
            method,
        });
    }
    // Newer Pythons (3.12+) refuse entries whose data runs into the next local header (or the
    // central directory): "Overlapped entries", the zip-bomb check. Applied here too, so that
    // a valid file stays readable whatever the Python.
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(entries[i].header_offset));
    let mut end_offset = start_dir;
    for i in order {
        let e = &entries[i];
        if e.data_start.saturating_add(e.compress_size) > end_offset {
            return Err(format!(
                "Overlapped entries: member '{}' runs into the next member or the central directory",
                e.name.escape_debug()
            ));
        }
        end_offset = e.header_offset;
    }
    Ok(entries)
}

/// The keys `numpy.load` lists for these members: names cut at the first NUL, `.npy` removed.
/// Names that do not survive this unchanged, or that repeat, make the keys ambiguous.
pub(crate) fn check_names(entries: &[PyEntry]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    for e in entries {
        if e.name.contains('\0') {
            return Err(format!(
                "member name '{}' holds a NUL byte: Python cuts it there, so numpy.load would list \
                 another key",
                e.name.escape_debug()
            ));
        }
        if !seen.insert(e.name.as_str()) {
            return Err(format!(
                "member '{}' appears twice: numpy.load would read only the last copy",
                e.name.escape_debug()
            ));
        }
    }
    Ok(())
}

/// cp437 bytes 0x80..=0xFF, as Python's codec decodes them.
const CP437_HIGH: [char; 128] = [
    '\u{c7}', '\u{fc}', '\u{e9}', '\u{e2}', '\u{e4}', '\u{e0}', '\u{e5}', '\u{e7}', '\u{ea}',
    '\u{eb}', '\u{e8}', '\u{ef}', '\u{ee}', '\u{ec}', '\u{c4}', '\u{c5}', '\u{c9}', '\u{e6}',
    '\u{c6}', '\u{f4}', '\u{f6}', '\u{f2}', '\u{fb}', '\u{f9}', '\u{ff}', '\u{d6}', '\u{dc}',
    '\u{a2}', '\u{a3}', '\u{a5}', '\u{20a7}', '\u{192}', '\u{e1}', '\u{ed}', '\u{f3}', '\u{fa}',
    '\u{f1}', '\u{d1}', '\u{aa}', '\u{ba}', '\u{bf}', '\u{2310}', '\u{ac}', '\u{bd}', '\u{bc}',
    '\u{a1}', '\u{ab}', '\u{bb}', '\u{2591}', '\u{2592}', '\u{2593}', '\u{2502}', '\u{2524}',
    '\u{2561}', '\u{2562}', '\u{2556}', '\u{2555}', '\u{2563}', '\u{2551}', '\u{2557}', '\u{255d}',
    '\u{255c}', '\u{255b}', '\u{2510}', '\u{2514}', '\u{2534}', '\u{252c}', '\u{251c}', '\u{2500}',
    '\u{253c}', '\u{255e}', '\u{255f}', '\u{255a}', '\u{2554}', '\u{2569}', '\u{2566}', '\u{2560}',
    '\u{2550}', '\u{256c}', '\u{2567}', '\u{2568}', '\u{2564}', '\u{2565}', '\u{2559}', '\u{2558}',
    '\u{2552}', '\u{2553}', '\u{256b}', '\u{256a}', '\u{2518}', '\u{250c}', '\u{2588}', '\u{2584}',
    '\u{258c}', '\u{2590}', '\u{2580}', '\u{3b1}', '\u{df}', '\u{393}', '\u{3c0}', '\u{3a3}',
    '\u{3c3}', '\u{b5}', '\u{3c4}', '\u{3a6}', '\u{398}', '\u{3a9}', '\u{3b4}', '\u{221e}',
    '\u{3c6}', '\u{3b5}', '\u{2229}', '\u{2261}', '\u{b1}', '\u{2265}', '\u{2264}', '\u{2320}',
    '\u{2321}', '\u{f7}', '\u{2248}', '\u{b0}', '\u{2219}', '\u{b7}', '\u{221a}', '\u{207f}',
    '\u{b2}', '\u{25a0}', '\u{a0}',
];
