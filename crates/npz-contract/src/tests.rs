//! Unit tests of reading and writing: round trips for every dtype, conversions, byte identity,
//! and hostile archives built byte by byte.

use std::io::Write;
use std::path::Path;

use ndarray::{ArrayD, IxDyn, array};
use num_complex::Complex;
use proptest::prelude::*;

use crate::{Compression, NpzError, NpzReader, NpzWriter};

/// Writes a zip whose members hold exactly the given bytes (to forge headers).
pub(crate) fn raw_npz(path: &Path, members: &[(&str, Vec<u8>)], deflate: bool) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    for (name, bytes) in members {
        zip.start_file(
            *name,
            zip::write::SimpleFileOptions::default().compression_method(method),
        )
        .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// A `.npy` member with the given header text (padded like NumPy) and data.
pub(crate) fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let fo = if fortran { "True" } else { "False" };
    let mut text = format!("{{'descr': '{descr}', 'fortran_order': {fo}, 'shape': {shape}, }}");
    while (10 + text.len() + 1) % 64 != 0 {
        text.push(' ');
    }
    text.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(text.len() as u16).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(data);
    out
}

fn roundtrip<T: crate::NpzElement + PartialEq + std::fmt::Debug>(
    a: &ArrayD<T>,
    compression: Compression,
) -> ArrayD<T> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npz");
    let mut w = NpzWriter::create(&path, compression).unwrap();
    w.add("a", a).unwrap();
    w.finish().unwrap();
    let mut r = NpzReader::open(&path).unwrap();
    assert_eq!(r.members().len(), 1);
    assert_eq!(r.member("a").unwrap().shape, a.shape());
    r.read::<T>("a").unwrap()
}

fn arrays<T: std::fmt::Debug + Clone>(
    elem: impl Strategy<Value = T> + Clone,
) -> impl Strategy<Value = ArrayD<T>> {
    prop::collection::vec(0usize..5, 0..4).prop_flat_map(move |shape| {
        let n: usize = shape.iter().product();
        prop::collection::vec(elem.clone(), n)
            .prop_map(move |v| ArrayD::from_shape_vec(IxDyn(&shape), v).unwrap())
    })
}

fn compressions() -> impl Strategy<Value = Compression> {
    prop_oneof![Just(Compression::Stored), Just(Compression::Deflated)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn f32_roundtrip(a in arrays(any::<f32>().prop_filter("NaN != NaN", |x| !x.is_nan())), c in compressions()) {
        prop_assert_eq!(roundtrip(&a, c), a);
    }
    #[test]
    fn f64_roundtrip(a in arrays(-1e300f64..1e300), c in compressions()) {
        prop_assert_eq!(roundtrip(&a, c), a);
    }
    #[test]
    fn c64_roundtrip(a in arrays((-1e30f32..1e30, -1e30f32..1e30).prop_map(|(r, i)| Complex::new(r, i))), c in compressions()) {
        prop_assert_eq!(roundtrip(&a, c), a);
    }
    #[test]
    fn c128_roundtrip(a in arrays((any::<i32>(), -1e9f64..1e9).prop_map(|(r, i)| Complex::new(f64::from(r), i))), c in compressions()) {
        prop_assert_eq!(roundtrip(&a, c), a);
    }
    #[test]
    fn i32_roundtrip(a in arrays(any::<i32>()), c in compressions()) {
        prop_assert_eq!(roundtrip(&a, c), a);
    }
    #[test]
    fn i64_roundtrip(a in arrays(any::<i64>()), c in compressions()) {
        prop_assert_eq!(roundtrip(&a, c), a);
    }
    #[test]
    fn bool_roundtrip(a in arrays(any::<bool>()), c in compressions()) {
        prop_assert_eq!(roundtrip(&a, c), a);
    }
    #[test]
    fn strings_roundtrip(v in prop::collection::vec("[a-z\u{e9}\u{1F600} ]{0,6}[a-z]", 0..5), s in "\\PC{0,40}", c in compressions()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.npz");
        let mut w = NpzWriter::create(&path, c).unwrap();
        w.add_strings("names", &v).unwrap();
        w.add_string("meta", &s).unwrap();
        w.finish().unwrap();
        let mut r = NpzReader::open(&path).unwrap();
        prop_assert_eq!(r.read_strings("names").unwrap(), v);
        // NumPy strips trailing NULs of <U items; so do we.
        prop_assert_eq!(r.read_string("meta").unwrap(), s.trim_end_matches('\0'));
    }
}

#[test]
fn zero_d_and_empty_arrays() {
    let zero_d = ArrayD::from_elem(IxDyn(&[]), 2.5f64);
    assert_eq!(roundtrip(&zero_d, Compression::Stored), zero_d);
    let empty = ArrayD::<Complex<f32>>::zeros(IxDyn(&[0, 3]));
    assert_eq!(roundtrip(&empty, Compression::Deflated), empty);
}

#[test]
fn writes_non_contiguous_views_in_logical_order() {
    let a = array![[1i64, 2, 3], [4, 5, 6]];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.npz");
    let mut w = NpzWriter::create(&path, Compression::Stored).unwrap();
    w.add("t", &a.t()).unwrap();
    w.add("s", &a.slice(ndarray::s![.., ..;2])).unwrap();
    w.finish().unwrap();
    let mut r = NpzReader::open(&path).unwrap();
    assert_eq!(r.read::<i64>("t").unwrap(), a.t().into_dyn());
    assert_eq!(
        r.read::<i64>("s").unwrap(),
        array![[1i64, 3], [4, 6]].into_dyn()
    );
    // Insertion order is archive order.
    let keys: Vec<&str> = r.members().iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, ["t", "s"]);
}

#[test]
fn identical_input_gives_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, c| {
        let path = dir.path().join(name);
        let mut w = NpzWriter::create(&path, c).unwrap();
        w.add(
            "diffraction",
            &ArrayD::from_shape_fn(IxDyn(&[4, 8, 8]), |i| (i[1] * i[2]) as f32),
        )
        .unwrap();
        w.add_string("_metadata", "{\"dose\": 1000.0}").unwrap();
        w.finish().unwrap();
        std::fs::read(path).unwrap()
    };
    for c in [Compression::Stored, Compression::Deflated] {
        let (a, b) = (write("a.npz", c), write("b.npz", c));
        assert_eq!(a, b);
        // Fixed DOS timestamp 1980-01-01 00:00 in the first local header (time 0, date 0x21).
        assert_eq!(&a[10..14], &[0, 0, 0x21, 0]);
    }
}

#[test]
fn widens_and_narrows_within_a_kind_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.npz");
    let mut w = NpzWriter::create(&path, Compression::Deflated).unwrap();
    w.add("f", &array![1.5f32, -2.0]).unwrap();
    w.add("c", &array![Complex::new(1.0f64, -1.0)]).unwrap();
    w.add("i", &array![7i32, -8]).unwrap();
    w.add("big", &array![1i64 << 40]).unwrap();
    w.finish().unwrap();
    let mut r = NpzReader::open(&path).unwrap();
    assert_eq!(r.read::<f64>("f").unwrap(), array![1.5f64, -2.0].into_dyn());
    assert_eq!(
        r.read::<Complex<f32>>("c").unwrap(),
        array![Complex::new(1.0f32, -1.0)].into_dyn()
    );
    assert_eq!(r.read::<i64>("i").unwrap(), array![7i64, -8].into_dyn());
    let err = r.read::<i32>("big").unwrap_err();
    assert!(matches!(err, NpzError::OutOfRange { .. }), "{err}");
    let err = r.read::<f32>("c").unwrap_err().to_string();
    assert!(
        err.contains("'c'") && err.contains("complex128") && err.contains("expected float"),
        "{err}"
    );
    let err = r.read::<f32>("nope").unwrap_err().to_string();
    assert!(
        err.contains("no member 'nope'") && err.contains("w.npz") && err.contains("f, c, i, big"),
        "{err}"
    );
}

#[test]
fn reads_big_endian_and_fortran_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("be.npz");
    let be: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
        .iter()
        .flat_map(|x| x.to_be_bytes())
        .collect();
    // Fortran order: column-major data of [[1, 2, 3], [4, 5, 6]].
    let f: Vec<u8> = [1i64, 4, 2, 5, 3, 6]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let c: Vec<u8> = [1.0f64, -1.0, 2.0, 0.5]
        .iter()
        .flat_map(|x| x.to_be_bytes())
        .collect();
    raw_npz(
        &path,
        &[
            ("be.npy", npy(">f4", false, "(2, 3)", &be)),
            ("f.npy", npy("<i8", true, "(2, 3)", &f)),
            ("c.npy", npy(">c16", false, "(2,)", &c)),
            (
                "h.npy",
                npy("<f2", false, "(2,)", &[0x00, 0x3c, 0x00, 0xc0]),
            ),
        ],
        true,
    );
    let mut r = NpzReader::open(&path).unwrap();
    assert_eq!(
        r.read::<f64>("be").unwrap(),
        array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn()
    );
    let fa = r.read::<i32>("f").unwrap();
    assert_eq!(fa, array![[1, 2, 3], [4, 5, 6]].into_dyn());
    assert!(fa.is_standard_layout());
    assert_eq!(
        r.read::<Complex<f64>>("c").unwrap(),
        array![Complex::new(1.0, -1.0), Complex::new(2.0, 0.5)].into_dyn()
    );
    assert_eq!(r.read::<f32>("h").unwrap(), array![1.0f32, -2.0].into_dyn());
}

#[test]
fn pickled_members_are_listed_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.npz");
    // A pickle payload; it must never be interpreted.
    raw_npz(
        &path,
        &[(
            "_metadata.npy",
            npy("|O", false, "()", b"\x80\x04\x95garbage."),
        )],
        false,
    );
    let mut r = NpzReader::open(&path).unwrap();
    let m = r.member("_metadata").unwrap();
    assert_eq!(m.descr, "|O");
    assert_eq!(m.dtype_name(), "object (pickled)");
    let err = r.read_string("_metadata").unwrap_err().to_string();
    assert!(
        err.contains("object (pickled)") && err.contains("expected unicode"),
        "{err}"
    );
    assert!(r.read::<f64>("_metadata").is_err());
}

/// Every hostile archive gives an error saying what is wrong, never a panic or an abort.
#[test]
fn hostile_archives_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = npy("<f4", false, "(4,)", &[0u8; 16]);
    let case = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let expect_open_err = |path: &Path, needle: &str| {
        let err = NpzReader::open(path).unwrap_err().to_string();
        assert!(
            err.contains(needle) && err.contains(&path.display().to_string()),
            "{needle}: {err}"
        );
    };
    expect_open_err(&case("empty.npz", b""), "empty");
    expect_open_err(
        &case("text.npz", b"hello, this is not a zip file at all......"),
        "not a ZIP",
    );
    expect_open_err(dir.path(), "it is a directory");
    let missing = dir.path().join("missing.npz");
    expect_open_err(&missing, "cannot open");

    // Truncated: a valid archive cut in half.
    let full = dir.path().join("full.npz");
    raw_npz(&full, &[("a.npy", good.clone())], false);
    let bytes = std::fs::read(&full).unwrap();
    expect_open_err(&case("cut.npz", &bytes[..bytes.len() / 2]), "ZIP");

    // CRC error: flip a data byte of a stored member; the header is fine, the data is not.
    let mut flipped = bytes.clone();
    let at = bytes.windows(4).position(|w| w == b"\x93NUM").unwrap() + good.len() - 1;
    flipped[at] ^= 0xff;
    let path = case("crc.npz", &flipped);
    let mut r = NpzReader::open(&path).unwrap();
    let err = r.read::<f32>("a").unwrap_err().to_string();
    assert!(err.contains("CRC"), "{err}");

    // Forged header lengths (v1 and v2) and a terabyte shape in a tiny member.
    let mut forged_v1 = good.clone();
    forged_v1[8..10].copy_from_slice(&60_000u16.to_le_bytes());
    let mut forged_v2 = b"\x93NUMPY\x02\x00".to_vec();
    forged_v2.extend_from_slice(&u32::MAX.to_le_bytes());
    forged_v2.extend_from_slice(&good[10..]);
    let terabyte = npy("<f8", false, "(1000000, 1000000, 1000)", &[0u8; 64]);
    let overflow = npy("<c16", false, "(18446744073709551615, 2)", &[]);
    let not_npy = b"just text".to_vec();
    let path = dir.path().join("forged.npz");
    raw_npz(
        &path,
        &[
            ("v1.npy", forged_v1),
            ("v2.npy", forged_v2),
            ("tb.npy", terabyte),
            ("ovf.npy", overflow),
            ("txt.npy", not_npy),
            ("ok.npy", good.clone()),
        ],
        true,
    );
    let mut r = NpzReader::open(&path).unwrap();
    assert_eq!(r.members().len(), 1, "only the good member passes");
    let reasons: Vec<(String, String)> = r
        .rejected()
        .iter()
        .map(|m| (m.key.clone(), m.reason.clone()))
        .collect();
    let reason = |k: &str| {
        reasons
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, r)| r.clone())
            .unwrap()
    };
    assert!(
        reason("v1").contains("header length field says 60000"),
        "{reasons:?}"
    );
    assert!(reason("v2").contains("forged"), "{reasons:?}");
    assert!(
        reason("tb").contains("8000000000000000 bytes of data, but the member holds 64"),
        "{reasons:?}"
    );
    assert!(reason("ovf").contains("overflows"), "{reasons:?}");
    assert!(reason("txt").contains("magic"), "{reasons:?}");
    let err = r.read::<f64>("tb").unwrap_err().to_string();
    assert!(err.contains("member 'tb' is unreadable"), "{err}");
    assert_eq!(r.read::<f32>("ok").unwrap().len(), 4);
}

/// A directory claiming far more members than the file can hold must not size allocations.
#[test]
fn hostile_directory_counts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut eocd = vec![0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0];
    eocd.extend_from_slice(&0xffffu16.to_le_bytes());
    eocd.extend_from_slice(&0xffffu16.to_le_bytes());
    eocd.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
    eocd.extend_from_slice(&0x10u32.to_le_bytes());
    eocd.extend_from_slice(&[0, 0]);
    let path = dir.path().join("dir.npz");
    std::fs::write(&path, &eocd).unwrap();
    let err = NpzReader::open(&path).unwrap_err().to_string();
    assert!(err.contains("claims 65535 members"), "{err}");
}

/// Version 2.0 (u32 header length) and 3.0 (UTF-8 header) members read like version 1.0 ones.
#[test]
fn reads_v2_and_v3_headers() {
    let member = |major: u8, descr: &str, data: &[u8]| {
        let text = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2,), }}\n");
        let mut out = b"\x93NUMPY".to_vec();
        out.extend_from_slice(&[major, 0]);
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(data);
        out
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v23.npz");
    let f8: Vec<u8> = [0.25f64, -4.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let u: Vec<u8> = ['\u{e9}', 'x']
        .iter()
        .flat_map(|c| u32::from(*c).to_le_bytes())
        .collect();
    raw_npz(
        &path,
        &[
            ("v2.npy", member(2, "<f8", &f8)),
            ("v3.npy", member(3, "<U1", &u)),
        ],
        true,
    );
    let mut r = NpzReader::open(&path).unwrap();
    assert!(r.rejected().is_empty(), "{:?}", r.rejected());
    assert_eq!(r.read::<f64>("v2").unwrap(), array![0.25, -4.0].into_dyn());
    assert_eq!(r.read_strings("v3").unwrap(), ["\u{e9}", "x"]);
    assert_eq!(r.member("v2").unwrap().compression, Compression::Deflated);
}

/// Members of 4 MiB and more are read on a second thread: values, a decoding error half way
/// (the reading thread must stop, not hang) and a CRC error all come through.
#[test]
fn large_members_stream_through_the_reading_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.npz");
    let n = 1_500_000; // 12 MB of i64
    let mut values = ndarray::Array1::from_shape_fn(n, |i| i as i64 * 3 - 7);
    values[n / 2] = i64::from(i32::MAX) + 1;
    let mut w = NpzWriter::create(&path, Compression::Stored).unwrap();
    w.add("v", &values).unwrap();
    w.add("after", &array![1.0f32]).unwrap();
    w.finish().unwrap();
    let mut r = NpzReader::open(&path).unwrap();
    assert_eq!(r.read::<i64>("v").unwrap(), values.clone().into_dyn());
    let err = r.read::<i32>("v").unwrap_err().to_string();
    assert!(
        err.contains("2147483648") && err.contains("does not fit i32"),
        "{err}"
    );
    let mut seen = 0usize;
    r.for_each_chunk::<f64>("after", |c| seen += c.len())
        .unwrap();
    assert_eq!(seen, 1);

    // Damage one byte deep inside the large member.
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let mut r = NpzReader::open(&path).unwrap();
    let err = r.read::<i64>("v").unwrap_err().to_string();
    assert!(err.contains("CRC-32 mismatch"), "{err}");
    // A deflated member takes the same path.
    let path = dir.path().join("large_deflated.npz");
    let mut w = NpzWriter::create(&path, Compression::Deflated).unwrap();
    w.add("v", &values).unwrap();
    w.finish().unwrap();
    let mut r = NpzReader::open(&path).unwrap();
    assert_eq!(r.read::<i64>("v").unwrap().len(), n);
    assert!(r.read::<i32>("v").is_err());
}
