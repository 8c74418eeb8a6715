//! `dose-overlap validate`, and DATA-001 interop with NumPy in both directions: NumPy-written
//! fixtures (tests/fixtures/npz, made by make_fixtures.py) get the right verdicts and values, and
//! files this toolkit writes load in NumPy with the same keys, dtypes, shapes, values and bytes.

use crate::common::python_numpy;
use std::path::PathBuf;

use ndarray::{Array1, Array2, Array3, ArrayD, IxDyn, array};
use npz_contract::{Compression, NpzReader, NpzWriter, ValidateOptions, validate};
use num_complex::Complex;

use crate::{cli_snapshot, common};

fn fixture(name: &str) -> PathBuf {
    common::project_root().join("tests/fixtures/npz").join(name)
}

/// Copies fixtures into a temporary root (so snapshots show `[ROOT]`, not this checkout).
fn stage(names: &[&str]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for name in names {
        std::fs::copy(fixture(name), root.path().join(name)).unwrap();
    }
    root
}

#[test]
fn valid_file() {
    let root = stage(&["valid.npz"]);
    let mut cmd = common::cli();
    cmd.arg("validate").arg(root.path().join("valid.npz"));
    let out = cli_snapshot!("validate_valid", cmd, root.path());
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn invalid_file_reports_every_problem() {
    let root = stage(&["invalid_many.npz"]);
    let mut cmd = common::cli();
    cmd.args(["validate", "--gridsize", "2", "--neighbor-count", "3"])
        .arg(root.path().join("invalid_many.npz"));
    let out = cli_snapshot!("validate_invalid_many", cmd, root.path());
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn json_mode() {
    let root = stage(&["valid.npz", "invalid_many.npz", "pickled_metadata.npz"]);
    let mut cmd = common::cli();
    cmd.args(["validate", "--json"]);
    for name in ["valid.npz", "invalid_many.npz", "pickled_metadata.npz"] {
        cmd.arg(root.path().join(name));
    }
    let out = cli_snapshot!("validate_json", cmd, root.path());
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let verdicts: Vec<bool> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["valid"].as_bool().unwrap())
        .collect();
    assert_eq!(verdicts, [true, false, true]);
    assert_eq!(json[1]["errors"].as_array().unwrap().len(), 4);
}

#[test]
fn path_with_spaces() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("my data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(fixture("valid.npz"), dir.join("scan 01 (dense).npz")).unwrap();
    let mut cmd = common::cli();
    cmd.arg("validate").arg(dir.join("scan 01 (dense).npz"));
    let out = cli_snapshot!("validate_path_with_spaces", cmd, root.path());
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn missing_file_is_invalid_and_the_others_are_still_checked() {
    let root = stage(&["valid.npz"]);
    let mut cmd = common::cli();
    cmd.arg("validate")
        .arg(root.path().join("no such file.npz"))
        .arg(root.path().join("valid.npz"));
    let out = cli_snapshot!("validate_missing_file", cmd, root.path());
    assert_eq!(out.status.code(), Some(1));
}

/// Hostile and damaged files through the binary: an invalid verdict with a clear reason for
/// each, exit 1, and no panic or abort (which would show as a signal or exit 101).
#[test]
fn hostile_files_never_crash_the_binary() {
    let names = [
        "empty.npz",
        "not_zip.npz",
        "truncated.npz",
        "crc_error.npz",
        "forged_header.npz",
        "terabyte_shape.npz",
    ];
    let root = stage(&names);
    let mut cmd = common::cli();
    cmd.arg("validate");
    for name in names {
        cmd.arg(root.path().join(name));
    }
    let out = cli_snapshot!("validate_hostile", cmd, root.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.is_empty());
}

#[test]
fn header_only_skips_data() {
    // The CRC damage is in the array data, which --header-only never reads.
    let root = stage(&["crc_error.npz"]);
    let out = common::cli()
        .args(["validate", "--header-only"])
        .arg(root.path().join("crc_error.npz"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["validate"][..],
        &["validate", "--gridsize", "0", "x.npz"],
        &["validate", "--frobnicate", "x.npz"],
    ] {
        let out = common::cli().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty());
    }
}

/// Verdict of every NumPy-written fixture: (file, valid, start of each error, warnings).
#[test]
fn numpy_fixture_verdicts() {
    #[rustfmt::skip]
    let cases: &[(&str, bool, &[&str], usize)] = &[
        ("valid.npz", true, &[], 0),
        ("valid_stored.npz", true, &[], 0),
        ("pickled_metadata.npz", true, &[], 1),
        ("intensity.npz", true, &[], 1),
        ("invalid_many.npz", false, &[
            "Missing required NPZ keys: ['ycoords']",
            "diffraction must be float (amplitude), got complex64",
            "objectGuess must be complex, got float32",
            "xcoords length 5 != diffraction first axis 10",
        ], 0),
        ("legacy_diff3d.npz", false, &[
            "legacy key 'diff3d' holds the diffraction stack (FORMAT-001)",
            "diff3d has shape (16, 16, 5), the legacy (H, W, n) layout (FORMAT-001)",
        ], 0),
        ("bad_values.npz", false, &[
            "diffraction has 1 non-finite value (NaN or inf; first at item 1 in storage order)",
            "diffraction has 1 negative value (min -0.25)",
        ], 0),
        ("pickled.npz", false, &["Missing required NPZ keys"], 1),
        // A structured member: NumPy reads it, this tool cannot check it (parity, issue 13).
        ("every_dtype_stored.npz", false, &["Missing required NPZ keys", "member 'structured' has dtype"], 0),
        // A structured member: NumPy reads it, this tool cannot check it (parity, issue 13).
        ("every_dtype_deflated.npz", false, &["Missing required NPZ keys", "member 'structured' has dtype"], 0),
        ("empty.npz", false, &["not a readable NPZ archive: the file is empty"], 0),
        ("not_zip.npz", false, &["not a readable NPZ archive: no ZIP end-of-central-directory"], 0),
        ("truncated.npz", false, &["not a readable NPZ archive"], 0),
        ("crc_error.npz", false, &["member 'diffraction' data is corrupt: CRC-32 mismatch"], 0),
        ("forged_header.npz", false, &[
            "member 'diffraction.npy' is unreadable: header length field says 4294967280 bytes",
            "Missing required NPZ keys: ['objectGuess', 'probeGuess', 'xcoords', 'ycoords']",
        ], 0),
        ("terabyte_shape.npz", false, &[
            "member 'diffraction.npy' is unreadable: header says shape (1000000, 1000, 1000) of <f4 = \
             4000000000000 bytes of data, but the member holds 32 bytes",
            "Missing required NPZ keys",
        ], 0),
    ];
    for (name, valid, errors, warnings) in cases {
        let report = validate(&fixture(name), &ValidateOptions::default());
        assert_eq!(report.valid, *valid, "{name}: {report:#?}");
        assert_eq!(report.errors.len(), errors.len(), "{name}: {report:#?}");
        for (got, want) in report.errors.iter().zip(errors.iter()) {
            assert!(
                got.starts_with(want),
                "{name}: {got:?} should start with {want:?}"
            );
        }
        assert_eq!(report.warnings.len(), *warnings, "{name}: {report:#?}");
    }
}

/// Every dtype NumPy wrote (savez and savez_compressed) reads back with the right values.
#[test]
fn numpy_written_values() {
    for name in ["every_dtype_stored.npz", "every_dtype_deflated.npz"] {
        let mut r = NpzReader::open(&fixture(name)).unwrap();
        let f4 = Array1::from_iter((0..12).map(|i| i as f32 / 4.0))
            .into_shape_with_order((3, 4))
            .unwrap();
        assert_eq!(r.read::<f32>("f4").unwrap(), f4.into_dyn());
        assert_eq!(
            r.read::<f64>("f8").unwrap(),
            array![-2.0, -0.5, 1.0, 2.5, 4.0].into_dyn()
        );
        let c8: Vec<Complex<f32>> = (0..4)
            .map(|i| Complex::new(i as f32, (3 - i) as f32))
            .collect();
        assert_eq!(
            r.read::<Complex<f32>>("c8").unwrap(),
            Array1::from(c8).into_dyn()
        );
        assert_eq!(
            r.read::<Complex<f64>>("c16").unwrap(),
            array![Complex::new(1.0, -2.0), Complex::new(3.25, 0.5)].into_dyn()
        );
        assert_eq!(
            r.read::<i32>("i4").unwrap(),
            array![-3, -2, -1, 0, 1, 2].into_dyn()
        );
        let i8 = Array1::from_iter((0..6).map(|i| i * 10_000_000_000i64))
            .into_shape_with_order((2, 3))
            .unwrap();
        assert_eq!(r.read::<i64>("i8").unwrap(), i8.into_dyn());
        assert_eq!(
            r.read::<bool>("b1").unwrap(),
            array![true, false, true].into_dyn()
        );
        assert_eq!(r.read::<i32>("u1").unwrap(), array![0, 1, 2, 3].into_dyn());
        assert_eq!(
            r.read::<f32>("f2").unwrap(),
            array![1.0f32, -2.0, 0.5].into_dyn()
        );
        // Big-endian, and widening f4 -> f8.
        assert_eq!(
            r.read::<f64>("be_f4").unwrap(),
            array![0.0, 1.0, 2.0, 3.0, 4.0].into_dyn()
        );
        assert_eq!(
            r.read::<Complex<f64>>("be_c8").unwrap(),
            array![Complex::new(1.0, 2.0), Complex::new(-3.0, -4.0)].into_dyn()
        );
        assert_eq!(r.read::<i64>("be_i8").unwrap(), array![-1, 0, 1].into_dyn());
        // Fortran order comes back in logical order and standard layout.
        assert!(r.member("fortran_f8").unwrap().fortran_order);
        let f = r.read::<f64>("fortran_f8").unwrap();
        assert_eq!(f, array![[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]].into_dyn());
        let c = r.read::<Complex<f64>>("fortran_c16").unwrap();
        let want = ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |i| {
            let k = (i[0] * 12 + i[1] * 4 + i[2]) as f64;
            Complex::new(k, k)
        });
        assert_eq!(c, want);
        assert_eq!(r.read::<f32>("empty_f4").unwrap().shape(), [0, 3]);
        let scalar = r.read::<f64>("scalar_f8").unwrap();
        assert_eq!((scalar.ndim(), scalar.first().copied()), (0, Some(2.5)));
        assert_eq!(
            r.read_strings("filenames").unwrap(),
            ["a.tif", "b\u{e9}.tif", "\u{1F600}"]
        );
        let meta: serde_json::Value =
            serde_json::from_str(&r.read_string("_metadata").unwrap()).unwrap();
        assert_eq!(meta["seed"], 42);
        // Structured dtypes are listed but refused with what was found.
        let err = r.read::<f32>("structured").unwrap_err().to_string();
        assert!(err.contains("[('a', '<f4'), ('b', '<i8')]"), "{err}");
        // Across kinds: an error naming the key, expected and found.
        let err = r.read::<f32>("c8").unwrap_err().to_string();
        assert!(
            err.contains("member 'c8' holds complex64 (<c8), expected float"),
            "{err}"
        );
    }
    let mut r = NpzReader::open(&fixture("pickled.npz")).unwrap();
    assert_eq!(r.member("obj").unwrap().descr, "|O");
    assert!(
        r.read::<f64>("obj")
            .unwrap_err()
            .to_string()
            .contains("object (pickled)")
    );
    assert_eq!(
        r.read::<f64>("values").unwrap(),
        array![0.0, 1.0, 2.0].into_dyn()
    );
}

/// Files written by NpzWriter load in NumPy with the same keys (in order), dtypes, shapes and
/// values, and every member is byte for byte what `np.save` writes for the loaded array.
#[test]
fn numpy_reads_what_we_write() {
    let dir = tempfile::tempdir().unwrap();
    for (name, compression) in [
        ("stored file.npz", Compression::Stored),
        ("deflated.npz", Compression::Deflated),
    ] {
        let path = dir.path().join(name);
        let mut w = NpzWriter::create(&path, compression).unwrap();
        w.add(
            "diffraction",
            &Array3::from_shape_fn((3, 4, 5), |(i, j, k)| (i * 20 + j * 5 + k) as f32 * 0.5),
        )
        .unwrap();
        w.add("f8", &Array1::from_vec(vec![1e300, -0.0, 5e-324, 0.1]))
            .unwrap();
        w.add(
            "objectGuess",
            &Array2::from_shape_fn((2, 3), |(i, j)| Complex::new(i as f32, -(j as f32))),
        )
        .unwrap();
        w.add("c16", &array![Complex::new(1.5f64, -2.5)]).unwrap();
        w.add("i4", &array![i32::MIN, -1, 0, i32::MAX]).unwrap();
        w.add("i8", &array![[i64::MIN, 7], [0, i64::MAX]]).unwrap();
        w.add("b1", &array![true, false, false]).unwrap();
        w.add("scalar", &ArrayD::from_elem(IxDyn(&[]), 3.25f64))
            .unwrap();
        w.add("empty", &Array2::<f32>::zeros((0, 4))).unwrap();
        w.add("transposed", &array![[1i64, 2, 3], [4, 5, 6]].t())
            .unwrap();
        w.add_strings(
            "filenames",
            &["a.tif".to_string(), "\u{e9}\u{1F600}".to_string()],
        )
        .unwrap();
        w.add_string("_metadata", "{\"dose\": 1000.0}").unwrap();
        w.finish().unwrap();
        let script = r#"
import io, json, sys, zipfile
import numpy as np
path = sys.argv[1]
f = np.load(path)
out = {}
for k in f.files:
    a = f[k]
    out[k] = [a.dtype.str, list(a.shape), a.tolist() if a.dtype.kind != 'c' else [[z.real, z.imag] for z in a.ravel().tolist()]]
    buf = io.BytesIO(); np.save(buf, a)
    assert zipfile.ZipFile(path).read(k + '.npy') == buf.getvalue(), k
print(json.dumps({"files": f.files, "members": out}))
"#;
        let text = python_numpy(script, &[&path]);
        let got: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = got["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "diffraction",
                "f8",
                "objectGuess",
                "c16",
                "i4",
                "i8",
                "b1",
                "scalar",
                "empty",
                "transposed",
                "filenames",
                "_metadata"
            ]
        );
        let m = &got["members"];
        let expect = |key: &str, descr: &str, shape: &[usize]| {
            assert_eq!(m[key][0], descr, "{key}");
            assert_eq!(m[key][1], serde_json::json!(shape), "{key}");
        };
        expect("diffraction", "<f4", &[3, 4, 5]);
        assert_eq!(m["diffraction"][2][2][3][4], 59.0 * 0.5);
        expect("f8", "<f8", &[4]);
        assert_eq!(m["f8"][2], serde_json::json!([1e300, -0.0, 5e-324, 0.1]));
        expect("objectGuess", "<c8", &[2, 3]);
        assert_eq!(m["objectGuess"][2][5], serde_json::json!([1.0, -2.0]));
        expect("c16", "<c16", &[1]);
        assert_eq!(m["c16"][2][0], serde_json::json!([1.5, -2.5]));
        expect("i4", "<i4", &[4]);
        assert_eq!(m["i4"][2], serde_json::json!([i32::MIN, -1, 0, i32::MAX]));
        expect("i8", "<i8", &[2, 2]);
        assert_eq!(
            m["i8"][2],
            serde_json::json!([[i64::MIN, 7], [0, i64::MAX]])
        );
        expect("b1", "|b1", &[3]);
        assert_eq!(m["b1"][2], serde_json::json!([true, false, false]));
        expect("scalar", "<f8", &[]);
        assert_eq!(m["scalar"][2], 3.25);
        expect("empty", "<f4", &[0, 4]);
        expect("transposed", "<i8", &[3, 2]);
        assert_eq!(
            m["transposed"][2],
            serde_json::json!([[1, 4], [2, 5], [3, 6]])
        );
        expect("filenames", "<U5", &[2]);
        assert_eq!(
            m["filenames"][2],
            serde_json::json!(["a.tif", "\u{e9}\u{1F600}"])
        );
        expect("_metadata", "<U16", &[]);
        assert_eq!(m["_metadata"][2], "{\"dose\": 1000.0}");
    }
}

/// Byte ranges of each member's stored data, from the local headers (ZIP64 sizes included).
fn member_data_ranges(zip: &[u8]) -> Vec<std::ops::Range<usize>> {
    let u16_at = |i: usize| usize::from(u16::from_le_bytes([zip[i], zip[i + 1]]));
    let u32_at = |i: usize| u32::from_le_bytes(zip[i..i + 4].try_into().unwrap());
    let mut ranges = Vec::new();
    let mut off = 0;
    while zip[off..].starts_with(b"PK\x03\x04") {
        let (name, extra) = (u16_at(off + 26), u16_at(off + 28));
        let mut size = u32_at(off + 18) as usize;
        if size == u32::MAX as usize {
            // ZIP64 extra field: id 1, length, uncompressed u64, compressed u64.
            let e = off + 30 + name;
            assert_eq!(u16_at(e), 1);
            size = u64::from_le_bytes(zip[e + 12..e + 20].try_into().unwrap()) as usize;
        }
        let start = off + 30 + name + extra;
        ranges.push(start..start + size);
        off = start + size;
    }
    ranges
}

/// Damaged variants of a valid file (truncated at every 41st length, a byte flipped every 7th
/// position) never panic or abort validation or reading; every truncation and every flip inside
/// a member's data is detected.
#[test]
fn damaged_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("valid.npz")).unwrap();
    let data = member_data_ranges(&bytes);
    assert_eq!(data.len(), 7);
    let path = dir.path().join("damaged.npz");
    let check = |variant: &[u8]| {
        std::fs::write(&path, variant).unwrap();
        let report = validate(&path, &ValidateOptions::default());
        if let Ok(mut r) = NpzReader::open(&path) {
            let _ = r.read::<f32>("diffraction");
            let _ = r.read_string("_metadata");
        }
        report.valid
    };
    for n in (0..bytes.len()).step_by(41) {
        assert!(!check(&bytes[..n]), "truncated to {n} bytes");
    }
    for at in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[at] ^= 0xa5;
        let valid = check(&b);
        if data.iter().any(|r| r.contains(&at)) {
            assert!(!valid, "flip at {at}, inside member data, went unnoticed");
        }
    }
}
