//! Element types that can be read from and written to NPZ members, and the byte-level decoding
//! (both byte orders, widening and narrowing within a kind).

use num_complex::Complex;

use crate::header::{ByteOrder, Dtype, DtypeKind};

/// An array element this crate reads and writes: `f32`, `f64`, `Complex<f32>`, `Complex<f64>`,
/// `i32`, `i64`, `bool`. Reading converts within a kind (float widths, complex widths, integer
/// widths with a range check; either byte order); never across kinds.
pub trait NpzElement: Copy + Send + Sync + 'static + private::Element {}

impl<T: Copy + Send + Sync + 'static + private::Element> NpzElement for T {}

pub(crate) mod private {
    use super::Dtype;

    /// The machinery behind [`super::NpzElement`]; sealed so that the set of types stays ours.
    pub trait Element: Sized {
        /// The `descr` this type is written with (little-endian, as NumPy on x86 writes).
        const DESCR: &'static str;
        /// Bytes per written item.
        const SIZE: usize;
        /// What a reader of this type accepts, for error messages.
        const EXPECTED: &'static str;
        /// Whether items of `dtype` can be read as this type.
        fn accepts(dtype: &Dtype) -> bool;
        /// Appends the items in `bytes` (a whole number of `dtype` items, `accepts(dtype)` true).
        /// Fails with the offending value when an integer does not fit.
        fn decode(dtype: &Dtype, bytes: &[u8], out: &mut Vec<Self>) -> Result<(), String>;
        /// Appends this item's little-endian bytes.
        fn encode(&self, out: &mut Vec<u8>);
    }
}

fn word<const N: usize>(c: &[u8]) -> [u8; N] {
    c.try_into().expect("chunks_exact gives N bytes")
}

/// IEEE half to single precision (NumPy's float16 is met in the wild; decoding it is cheap).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let bits = match exp {
        0 if mant == 0 => sign,
        0 => {
            // Subnormal: mant x 2^-24, exact in f32.
            let v = mant as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        31 => sign | 0x7f80_0000 | (mant << 13),
        _ => sign | ((exp + 112) << 23) | (mant << 13),
    };
    f32::from_bits(bits)
}

/// Decodes float items of any supported width and order through `f32`/`f64` conversions.
fn decode_float<T>(
    dtype: &Dtype,
    bytes: &[u8],
    out: &mut Vec<T>,
    from32: impl Fn(f32) -> T,
    from64: impl Fn(f64) -> T,
) {
    let big = dtype.order == ByteOrder::Big;
    match (dtype.itemsize, big) {
        (Some(4), false) => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| from32(f32::from_le_bytes(word(c)))),
        ),
        (Some(4), true) => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| from32(f32::from_be_bytes(word(c)))),
        ),
        (Some(8), false) => out.extend(
            bytes
                .chunks_exact(8)
                .map(|c| from64(f64::from_le_bytes(word(c)))),
        ),
        (Some(8), true) => out.extend(
            bytes
                .chunks_exact(8)
                .map(|c| from64(f64::from_be_bytes(word(c)))),
        ),
        (Some(2), false) => {
            out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|c| from32(f16_to_f32(u16::from_le_bytes(word(c))))),
            );
        }
        (Some(2), true) => {
            out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|c| from32(f16_to_f32(u16::from_be_bytes(word(c))))),
            );
        }
        _ => unreachable!("accepts() admits float widths 2, 4, 8 only"),
    }
}

fn decode_complex<T>(
    dtype: &Dtype,
    bytes: &[u8],
    out: &mut Vec<Complex<T>>,
    from32: impl Fn(f32) -> T,
    from64: impl Fn(f64) -> T,
) {
    let big = dtype.order == ByteOrder::Big;
    let f32_at = |c: &[u8]| {
        if big {
            f32::from_be_bytes(word(c))
        } else {
            f32::from_le_bytes(word(c))
        }
    };
    let f64_at = |c: &[u8]| {
        if big {
            f64::from_be_bytes(word(c))
        } else {
            f64::from_le_bytes(word(c))
        }
    };
    match dtype.itemsize {
        Some(8) => out.extend(
            bytes
                .chunks_exact(8)
                .map(|c| Complex::new(from32(f32_at(&c[..4])), from32(f32_at(&c[4..])))),
        ),
        Some(16) => out.extend(
            bytes
                .chunks_exact(16)
                .map(|c| Complex::new(from64(f64_at(&c[..8])), from64(f64_at(&c[8..])))),
        ),
        _ => unreachable!("accepts() admits complex widths 8 and 16 only"),
    }
}

/// Decodes signed or unsigned integers of any width and order, checking each fits `T`.
fn decode_int<T: TryFrom<i64> + TryFrom<u64>>(
    dtype: &Dtype,
    bytes: &[u8],
    out: &mut Vec<T>,
) -> Result<(), String> {
    let size = dtype.itemsize.unwrap_or(0);
    let big = dtype.order == ByteOrder::Big;
    let signed = dtype.kind == DtypeKind::Int;
    out.reserve(bytes.len() / size.max(1));
    for c in bytes.chunks_exact(size) {
        let mut buf = [0u8; 8];
        // Place the item in the low bytes of a little-endian u64, then sign-extend.
        if big {
            for (i, b) in c.iter().rev().enumerate() {
                buf[i] = *b;
            }
        } else {
            buf[..size].copy_from_slice(c);
        }
        let raw = u64::from_le_bytes(buf);
        let converted = if signed {
            let shift = 64 - 8 * size as u32;
            let v = ((raw << shift) as i64) >> shift;
            T::try_from(v).map_err(|_| v.to_string())
        } else {
            T::try_from(raw).map_err(|_| raw.to_string())
        };
        out.push(converted?);
    }
    Ok(())
}

fn is_float(d: &Dtype) -> bool {
    d.kind == DtypeKind::Float && matches!(d.itemsize, Some(2 | 4 | 8))
}
fn is_complex(d: &Dtype) -> bool {
    d.kind == DtypeKind::Complex && matches!(d.itemsize, Some(8 | 16))
}
fn is_int(d: &Dtype) -> bool {
    matches!(d.kind, DtypeKind::Int | DtypeKind::UInt) && matches!(d.itemsize, Some(1 | 2 | 4 | 8))
}

impl private::Element for f32 {
    const DESCR: &'static str = "<f4";
    const SIZE: usize = 4;
    const EXPECTED: &'static str = "float (float16, float32 or float64) for f32";
    fn accepts(d: &Dtype) -> bool {
        is_float(d)
    }
    fn decode(d: &Dtype, bytes: &[u8], out: &mut Vec<Self>) -> Result<(), String> {
        decode_float(d, bytes, out, |x| x, |x| x as f32);
        Ok(())
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl private::Element for f64 {
    const DESCR: &'static str = "<f8";
    const SIZE: usize = 8;
    const EXPECTED: &'static str = "float (float16, float32 or float64) for f64";
    fn accepts(d: &Dtype) -> bool {
        is_float(d)
    }
    fn decode(d: &Dtype, bytes: &[u8], out: &mut Vec<Self>) -> Result<(), String> {
        decode_float(d, bytes, out, f64::from, |x| x);
        Ok(())
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl private::Element for Complex<f32> {
    const DESCR: &'static str = "<c8";
    const SIZE: usize = 8;
    const EXPECTED: &'static str = "complex (complex64 or complex128) for Complex<f32>";
    fn accepts(d: &Dtype) -> bool {
        is_complex(d)
    }
    fn decode(d: &Dtype, bytes: &[u8], out: &mut Vec<Self>) -> Result<(), String> {
        decode_complex(d, bytes, out, |x| x, |x| x as f32);
        Ok(())
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.re.to_le_bytes());
        out.extend_from_slice(&self.im.to_le_bytes());
    }
}

impl private::Element for Complex<f64> {
    const DESCR: &'static str = "<c16";
    const SIZE: usize = 16;
    const EXPECTED: &'static str = "complex (complex64 or complex128) for Complex<f64>";
    fn accepts(d: &Dtype) -> bool {
        is_complex(d)
    }
    fn decode(d: &Dtype, bytes: &[u8], out: &mut Vec<Self>) -> Result<(), String> {
        decode_complex(d, bytes, out, f64::from, |x| x);
        Ok(())
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.re.to_le_bytes());
        out.extend_from_slice(&self.im.to_le_bytes());
    }
}

impl private::Element for i32 {
    const DESCR: &'static str = "<i4";
    const SIZE: usize = 4;
    const EXPECTED: &'static str =
        "integer (int8..int64, uint8..uint64, values within i32) for i32";
    fn accepts(d: &Dtype) -> bool {
        is_int(d)
    }
    fn decode(d: &Dtype, bytes: &[u8], out: &mut Vec<Self>) -> Result<(), String> {
        if d.kind == DtypeKind::Int && d.itemsize == Some(4) && d.order != ByteOrder::Big {
            out.extend(bytes.chunks_exact(4).map(|c| i32::from_le_bytes(word(c))));
            return Ok(());
        }
        decode_int(d, bytes, out)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl private::Element for i64 {
    const DESCR: &'static str = "<i8";
    const SIZE: usize = 8;
    const EXPECTED: &'static str =
        "integer (int8..int64, uint8..uint64, values within i64) for i64";
    fn accepts(d: &Dtype) -> bool {
        is_int(d)
    }
    fn decode(d: &Dtype, bytes: &[u8], out: &mut Vec<Self>) -> Result<(), String> {
        if d.kind == DtypeKind::Int && d.itemsize == Some(8) && d.order != ByteOrder::Big {
            out.extend(bytes.chunks_exact(8).map(|c| i64::from_le_bytes(word(c))));
            return Ok(());
        }
        decode_int(d, bytes, out)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl private::Element for bool {
    const DESCR: &'static str = "|b1";
    const SIZE: usize = 1;
    const EXPECTED: &'static str = "bool for bool";
    fn accepts(d: &Dtype) -> bool {
        d.kind == DtypeKind::Bool && d.itemsize == Some(1)
    }
    fn decode(_: &Dtype, bytes: &[u8], out: &mut Vec<Self>) -> Result<(), String> {
        // NumPy itself treats any non-zero byte as True.
        out.extend(bytes.iter().map(|&b| b != 0));
        Ok(())
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

#[cfg(test)]
mod tests {
    use super::private::Element;
    use super::*;

    #[test]
    fn half_precision() {
        for (bits, want) in [
            (0x3c00u16, 1.0f32),
            (0xc000, -2.0),
            (0x0001, 5.960_464_5e-8),
            (0x7bff, 65504.0),
        ] {
            assert_eq!(f16_to_f32(bits), want);
        }
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
    }

    #[test]
    fn integers_sign_extend_and_check_range() {
        let d = Dtype::parse(">i2");
        let mut out: Vec<i32> = Vec::new();
        i32::decode(&d, &[0xff, 0xfe, 0x00, 0x05], &mut out).unwrap();
        assert_eq!(out, [-2, 5]);
        let d = Dtype::parse("<u8");
        let mut out: Vec<i64> = Vec::new();
        assert_eq!(
            i64::decode(&d, &u64::MAX.to_le_bytes(), &mut out),
            Err(u64::MAX.to_string())
        );
        let d = Dtype::parse("<i8");
        let mut out: Vec<i32> = Vec::new();
        assert!(i32::decode(&d, &(1i64 << 40).to_le_bytes(), &mut out).is_err());
    }
}
