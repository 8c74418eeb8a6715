//! The `.npy` header: parsing it from bounded bytes (never trusting its lengths) and writing it
//! exactly as NumPy does.

use std::fmt;

/// The magic string that starts every `.npy` member.
pub(crate) const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Longest header text accepted. NumPy refuses headers over 10 000 bytes unless told otherwise;
/// anything much longer is a forged length, and reading it would be an attacker-sized allocation.
pub(crate) const MAX_HEADER_LEN: usize = 1 << 16;

/// Byte order of a dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOrder {
    /// `<` (or `=` on this little-endian-or-not machine, resolved to the native order).
    Little,
    /// `>`.
    Big,
    /// `|`: one-byte items, objects, byte strings.
    NotApplicable,
}

/// The kind of a dtype, as NumPy's `dtype.kind` letter says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtypeKind {
    /// `b`: bool.
    Bool,
    /// `i`: signed integer.
    Int,
    /// `u`: unsigned integer.
    UInt,
    /// `f`: floating point.
    Float,
    /// `c`: complex floating point.
    Complex,
    /// `U`: unicode string (UCS-4 code points, NUL-padded).
    Unicode,
    /// `S`: byte string.
    Bytes,
    /// `O`: Python objects, stored pickled (never unpickled here).
    Object,
    /// Anything else: structured, datetime, void, ...
    Other,
}

/// A parsed `descr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dtype {
    /// What the items are.
    pub kind: DtypeKind,
    /// Bytes per item (`None` when this crate cannot size it, e.g. structured dtypes).
    pub itemsize: Option<usize>,
    /// Byte order of multi-byte items.
    pub order: ByteOrder,
}

impl Dtype {
    /// Parses a simple `descr` string such as `<f4`, `|b1`, `<U8`, `|O`.
    pub(crate) fn parse(descr: &str) -> Dtype {
        let other = Dtype {
            kind: DtypeKind::Other,
            itemsize: None,
            order: ByteOrder::NotApplicable,
        };
        let mut chars = descr.chars();
        let (order, rest) = match chars.next() {
            Some('<') => (ByteOrder::Little, chars.as_str()),
            Some('>') => (ByteOrder::Big, chars.as_str()),
            Some('|') => (ByteOrder::NotApplicable, chars.as_str()),
            Some('=') => (native_order(), chars.as_str()),
            _ => (ByteOrder::NotApplicable, descr),
        };
        let mut chars = rest.chars();
        let Some(letter) = chars.next() else {
            return other;
        };
        let digits = chars.as_str();
        let kind = match letter {
            'b' | '?' => DtypeKind::Bool,
            'i' => DtypeKind::Int,
            'u' => DtypeKind::UInt,
            'f' => DtypeKind::Float,
            'c' => DtypeKind::Complex,
            'U' => DtypeKind::Unicode,
            'S' | 'a' => DtypeKind::Bytes,
            'O' => DtypeKind::Object,
            _ => DtypeKind::Other,
        };
        if kind == DtypeKind::Object {
            // `|O` or `|O8`: pickled; its "itemsize" says nothing about the stored bytes.
            return Dtype {
                kind,
                itemsize: None,
                order,
            };
        }
        // NumPy's one-letter codes: `?` is bool, but a bare `b` is int8 (`b1` is bool).
        if digits.is_empty() && letter == 'b' {
            return Dtype {
                kind: DtypeKind::Int,
                itemsize: Some(1),
                order,
            };
        }
        let count: Option<usize> = if digits.is_empty() && kind == DtypeKind::Bool {
            Some(1)
        } else if !digits.is_empty()
            && digits.len() <= 12
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            digits.parse().ok()
        } else {
            None
        };
        let Some(count) = count else {
            return Dtype {
                kind: DtypeKind::Other,
                ..other
            };
        };
        let itemsize = if kind == DtypeKind::Unicode {
            count.checked_mul(4)
        } else {
            Some(count)
        };
        let known_width = match kind {
            DtypeKind::Bool => count == 1,
            DtypeKind::Int | DtypeKind::UInt => matches!(count, 1 | 2 | 4 | 8),
            DtypeKind::Float => matches!(count, 2 | 4 | 8 | 16),
            DtypeKind::Complex => matches!(count, 8 | 16 | 32),
            _ => true,
        };
        if !known_width {
            return Dtype {
                kind: DtypeKind::Other,
                itemsize,
                order,
            };
        }
        Dtype {
            kind,
            itemsize,
            order,
        }
    }
}

fn native_order() -> ByteOrder {
    if cfg!(target_endian = "little") {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    }
}

/// NumPy's name for a dtype (`float32`, `complex64`, `<U8`, `object`), for messages.
pub(crate) fn dtype_name(descr: &str, dtype: &Dtype) -> String {
    let bits = |n: usize| n * 8;
    match (dtype.kind, dtype.itemsize) {
        (DtypeKind::Bool, _) => "bool".to_string(),
        (DtypeKind::Int, Some(n)) => format!("int{}", bits(n)),
        (DtypeKind::UInt, Some(n)) => format!("uint{}", bits(n)),
        (DtypeKind::Float, Some(n)) => format!("float{}", bits(n)),
        (DtypeKind::Complex, Some(n)) => format!("complex{}", bits(n)),
        (DtypeKind::Unicode, _) => format!("unicode {descr}"),
        (DtypeKind::Bytes, _) => format!("bytes {descr}"),
        (DtypeKind::Object, _) => "object (pickled)".to_string(),
        _ => format!("unsupported dtype {descr}"),
    }
}

/// A parsed header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
}

/// Why a header could not be read.
pub(crate) type HeaderError = String;

/// The fixed part before the header text: magic, version, and the text's length.
pub(crate) struct Preamble {
    /// Bytes before the header text (10 for v1, 12 for v2/v3).
    pub prefix_len: usize,
    /// Length of the header text.
    pub header_len: usize,
    /// Version 3 headers are UTF-8; earlier ones latin-1.
    pub utf8: bool,
}

/// Parses the preamble from the first (up to) 12 bytes of a member.
pub(crate) fn parse_preamble(bytes: &[u8]) -> Result<Preamble, HeaderError> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy array (no \\x93NUMPY magic at its start)".to_string());
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let preamble = match (major, minor) {
        (1, 0) => Preamble {
            prefix_len: 10,
            header_len: usize::from(u16::from_le_bytes([bytes[8], bytes[9]])),
            utf8: false,
        },
        (2, 0) | (3, 0) => {
            if bytes.len() < 12 {
                return Err(format!(".npy version {major}.{minor} header is cut short"));
            }
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            Preamble {
                prefix_len: 12,
                header_len: usize::try_from(len).unwrap_or(usize::MAX),
                utf8: major == 3,
            }
        }
        _ => {
            return Err(format!(
                "unsupported .npy format version {major}.{minor} (expected 1.0, 2.0 or 3.0)"
            ));
        }
    };
    if preamble.header_len > MAX_HEADER_LEN {
        return Err(format!(
            "header length field says {} bytes (at most {MAX_HEADER_LEN} accepted): forged or corrupt",
            preamble.header_len
        ));
    }
    Ok(preamble)
}

/// Parses the header text (the Python dict literal).
pub(crate) fn parse_header(bytes: &[u8], utf8: bool) -> Result<Header, HeaderError> {
    let text: String = if utf8 {
        std::str::from_utf8(bytes)
            .map_err(|_| "header is not valid UTF-8".to_string())?
            .to_string()
    } else {
        bytes.iter().map(|&b| char::from(b)).collect()
    };
    let value = Parser {
        s: text.as_bytes(),
        pos: 0,
        depth: 0,
    }
    .parse_all()?;
    let PyValue::Dict(items) = value else {
        return Err("header is not a dict".to_string());
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (key, value) in items {
        match (key.as_str(), value) {
            ("descr", PyValue::Str(s)) => descr = Some(s),
            ("descr", v @ PyValue::List(_)) => descr = Some(v.to_string()),
            ("fortran_order", PyValue::Bool(b)) => fortran = Some(b),
            ("shape", PyValue::Tuple(dims)) => {
                let mut out = Vec::with_capacity(dims.len());
                for d in dims {
                    match d {
                        PyValue::Int(n) => out.push(
                            usize::try_from(n)
                                .map_err(|_| format!("shape has a negative or huge axis {n}"))?,
                        ),
                        other => return Err(format!("shape holds a non-integer {other}")),
                    }
                }
                shape = Some(out);
            }
            (k @ ("descr" | "fortran_order" | "shape"), v) => {
                return Err(format!("header key '{k}' has an unexpected value {v}"));
            }
            (k, _) => return Err(format!("header has an unexpected key '{k}'")),
        }
    }
    match (descr, fortran, shape) {
        (Some(descr), Some(fortran_order), Some(shape)) => Ok(Header {
            descr,
            fortran_order,
            shape,
        }),
        _ => Err("header lacks one of 'descr', 'fortran_order', 'shape'".to_string()),
    }
}

/// The subset of Python literals that `.npy` headers use.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PyValue {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<PyValue>),
    List(Vec<PyValue>),
    Dict(Vec<(String, PyValue)>),
}

impl fmt::Display for PyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = |f: &mut fmt::Formatter<'_>, items: &[PyValue]| -> fmt::Result {
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "{v}")?;
            }
            Ok(())
        };
        match self {
            PyValue::Str(s) => write!(f, "'{s}'"),
            PyValue::Int(n) => write!(f, "{n}"),
            PyValue::Bool(b) => write!(f, "{}", if *b { "True" } else { "False" }),
            PyValue::None => write!(f, "None"),
            PyValue::Tuple(items) => {
                write!(f, "(")?;
                seq(f, items)?;
                if items.len() == 1 {
                    write!(f, ",")?;
                }
                write!(f, ")")
            }
            PyValue::List(items) => {
                write!(f, "[")?;
                seq(f, items)?;
                write!(f, "]")
            }
            PyValue::Dict(items) => {
                write!(f, "{{")?;
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "'{k}': {v}")?;
                }
                write!(f, "}}")
            }
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn parse_all(mut self) -> Result<PyValue, HeaderError> {
        let v = self.value()?;
        self.ws();
        if self.pos != self.s.len() {
            return Err(format!("header has trailing text at byte {}", self.pos));
        }
        Ok(v)
    }

    fn ws(&mut self) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), HeaderError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!(
                "header: expected '{}' at byte {}",
                char::from(c),
                self.pos
            ))
        }
    }

    fn value(&mut self) -> Result<PyValue, HeaderError> {
        self.depth += 1;
        if self.depth > 16 {
            return Err("header nests too deeply".to_string());
        }
        let v = match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        break;
                    }
                    let PyValue::Str(key) = self.value()? else {
                        return Err("header dict key is not a string".to_string());
                    };
                    self.expect(b':')?;
                    items.push((key, self.value()?));
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {}
                        _ => {
                            return Err(format!(
                                "header: expected ',' or '}}' at byte {}",
                                self.pos
                            ));
                        }
                    }
                }
                PyValue::Dict(items)
            }
            Some(open @ (b'(' | b'[')) => {
                self.pos += 1;
                let close = if open == b'(' { b')' } else { b']' };
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        break;
                    }
                    items.push(self.value()?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(c) if c == close => {}
                        _ => {
                            return Err(format!(
                                "header: unterminated sequence at byte {}",
                                self.pos
                            ));
                        }
                    }
                }
                if open == b'(' {
                    PyValue::Tuple(items)
                } else {
                    PyValue::List(items)
                }
            }
            Some(q @ (b'\'' | b'"')) => {
                self.pos += 1;
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos] != q {
                    if self.s[self.pos] == b'\\' {
                        return Err("header string holds an escape sequence".to_string());
                    }
                    self.pos += 1;
                }
                if self.pos >= self.s.len() {
                    return Err("header has an unterminated string".to_string());
                }
                let text = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
                self.pos += 1;
                PyValue::Str(text)
            }
            Some(c) if c.is_ascii_digit() || c == b'-' => {
                let start = self.pos;
                self.pos += 1;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
                let digits = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
                let n: i128 = digits
                    .parse()
                    .map_err(|_| format!("header has an invalid integer '{digits}'"))?;
                // Python 2 wrote long integers with an `L` suffix.
                if self.s.get(self.pos) == Some(&b'L') {
                    self.pos += 1;
                }
                PyValue::Int(n)
            }
            Some(_) => {
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_alphabetic() {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => PyValue::Bool(true),
                    b"False" => PyValue::Bool(false),
                    b"None" => PyValue::None,
                    _ => return Err(format!("header has an unexpected token at byte {start}")),
                }
            }
            None => return Err("header ends early".to_string()),
        };
        self.depth -= 1;
        Ok(v)
    }
}

/// Formats a shape as Python does: `()`, `(5,)`, `(3, 4)`.
pub(crate) fn shape_repr(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(ToString::to_string).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// A complete v1 `.npy` header (magic to final `\n`) byte for byte as NumPy 2 writes it:
/// sorted keys, spare spaces for growing the first axis, padded to a 64-byte boundary.
pub(crate) fn encode_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    const ARRAY_ALIGN: usize = 64;
    const GROWTH_AXIS_MAX_DIGITS: usize = 21;
    let shape_text = shape_repr(shape);
    let mut text =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        text.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
    }
    // NumPy: hlen = len(header) + 1; padlen = ALIGN - ((MAGIC_LEN + 4 + hlen) % ALIGN).
    let hlen = text.len() + 1;
    let padlen = ARRAY_ALIGN - ((MAGIC.len() + 4 + hlen) % ARRAY_ALIGN);
    text.push_str(&" ".repeat(padlen));
    text.push('\n');
    let len = u16::try_from(text.len()).expect("a v1 header of a plain dtype is short");
    let mut out = Vec::with_capacity(10 + text.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Header, HeaderError> {
        parse_header(text.as_bytes(), false)
    }

    #[test]
    fn parses_numpy_headers() {
        let h =
            parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }     \n").unwrap();
        assert_eq!(
            h,
            Header {
                descr: "<f4".into(),
                fortran_order: false,
                shape: vec![3, 4]
            }
        );
        let h = parse("{'descr': '|O', 'fortran_order': True, 'shape': (), }").unwrap();
        assert_eq!(h.shape, Vec::<usize>::new());
        assert!(h.fortran_order);
        let h = parse(
            "{'descr': [('a', '<f4'), ('b', '<i8')], 'fortran_order': False, 'shape': (2L,)}",
        )
        .unwrap();
        assert_eq!(h.descr, "[('a', '<f4'), ('b', '<i8')]");
        assert_eq!(h.shape, vec![2]);
    }

    #[test]
    fn rejects_malformed_headers() {
        for bad in [
            "",
            "{",
            "{'descr': '<f4'}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999999999999999999999,), }",
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dtypes() {
        let d = Dtype::parse("<f4");
        assert_eq!(
            (d.kind, d.itemsize, d.order),
            (DtypeKind::Float, Some(4), ByteOrder::Little)
        );
        let d = Dtype::parse(">c16");
        assert_eq!(
            (d.kind, d.itemsize, d.order),
            (DtypeKind::Complex, Some(16), ByteOrder::Big)
        );
        assert_eq!(Dtype::parse("<U8").itemsize, Some(32));
        assert_eq!(Dtype::parse("|b1").kind, DtypeKind::Bool);
        assert_eq!(Dtype::parse("|O").kind, DtypeKind::Object);
        assert_eq!(Dtype::parse("<M8[ns]").kind, DtypeKind::Other);
        assert_eq!(Dtype::parse("<f3").kind, DtypeKind::Other);
        assert_eq!(dtype_name("<c8", &Dtype::parse("<c8")), "complex64");
    }

    #[test]
    fn header_matches_numpy_layout() {
        // np.save of np.zeros((3, 4), 'f4') writes exactly this header (NumPy 2).
        let h = encode_header("<f4", &[3, 4]);
        assert_eq!(h.len() % 64, 0);
        assert_eq!(*h.last().unwrap(), b'\n');
        let text = std::str::from_utf8(&h[10..]).unwrap();
        assert!(text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"));
        let back = parse_header(&h[10..], false).unwrap();
        assert_eq!(back.shape, vec![3, 4]);
        assert_eq!(encode_header("<f8", &[]).len() % 64, 0);
    }
}
