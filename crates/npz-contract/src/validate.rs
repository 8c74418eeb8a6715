//! DATA-001 validation: every problem of a file at once, in the original system's message forms,
//! each saying what was expected and what was found. Header checks read no array data; value
//! checks stream each array once, chunk by chunk.

use std::path::{Path, PathBuf};

use num_complex::Complex;

use crate::header::DtypeKind;
use crate::{MemberInfo, NpzElement, NpzReader};

/// What to check besides the file itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidateOptions {
    /// The gridsize the data will be grouped with; > 1 needs `neighbor_count` >= gridsize²
    /// (OVERSAMPLING-001).
    pub gridsize: Option<u32>,
    /// K, the neighbours each group is chosen from.
    pub neighbor_count: Option<u32>,
    /// Check keys, dtypes and shapes only, reading no array data.
    pub header_only: bool,
}

/// The verdict on one file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ValidationReport {
    /// The file.
    pub path: PathBuf,
    /// No errors (warnings allowed).
    pub valid: bool,
    /// Contract violations; any makes the file invalid.
    pub errors: Vec<String>,
    /// Things worth knowing that do not break the contract.
    pub warnings: Vec<String>,
}

/// The keys DATA-001 requires.
pub const REQUIRED_KEYS: [&str; 5] = [
    "diffraction",
    "objectGuess",
    "probeGuess",
    "xcoords",
    "ycoords",
];

/// Every key DATA-001 gives a meaning to (plus the legacy `diff3d`).
const CONTRACT_KEYS: [&str; 12] = [
    "diffraction",
    "diff3d",
    "objectGuess",
    "probeGuess",
    "xcoords",
    "ycoords",
    "Y",
    "xcoords_start",
    "ycoords_start",
    "scan_index",
    "filenames",
    "_metadata",
];

/// Validates `path` against DATA-001. Never panics on any input: unreadable, truncated or
/// hostile files give an invalid report whose error says what is wrong.
pub fn validate(path: &Path, options: &ValidateOptions) -> ValidationReport {
    let mut v = Validator {
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    v.check_options(options);
    match NpzReader::open(path) {
        Ok(mut reader) => v.check_file(&mut reader, options),
        Err(e) => v.errors.push(strip_path(path, &e.to_string())),
    }
    ValidationReport {
        path: path.to_path_buf(),
        valid: v.errors.is_empty(),
        errors: v.errors,
        warnings: v.warnings,
    }
}

/// The report names the file once; messages need not repeat it.
fn strip_path(path: &Path, message: &str) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}

struct Validator {
    errors: Vec<String>,
    warnings: Vec<String>,
}

/// The first axis length and frame shape the other keys are checked against.
#[derive(Clone, Copy)]
struct Stack {
    n: usize,
    frame: (usize, usize),
}

fn shape_text(shape: &[usize]) -> String {
    crate::header::shape_repr(shape)
}

fn is_float(m: &MemberInfo) -> bool {
    m.dtype.kind == DtypeKind::Float && matches!(m.dtype.itemsize, Some(4 | 8))
}
fn is_complex(m: &MemberInfo) -> bool {
    m.dtype.kind == DtypeKind::Complex && matches!(m.dtype.itemsize, Some(8 | 16))
}

impl Validator {
    fn error(&mut self, message: String) {
        self.errors.push(message);
    }
    fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }

    fn check_options(&mut self, options: &ValidateOptions) {
        let Some(g) = options.gridsize else { return };
        if g == 0 {
            self.error("gridsize=0 is invalid: expected gridsize >= 1".to_string());
            return;
        }
        if g == 1 {
            return;
        }
        let c = u64::from(g) * u64::from(g);
        match options.neighbor_count {
            None => self.error(format!(
                "neighbor_count required when gridsize={g}: K-choose-C grouping needs neighbor_count >= C={c} \
                 (OVERSAMPLING-001)"
            )),
            Some(k) if u64::from(k) < c => self.error(format!(
                "neighbor_count={k} < C={c} for gridsize={g} (OVERSAMPLING-001): expected neighbor_count >= {c}"
            )),
            Some(_) => {}
        }
    }

    fn check_file(&mut self, reader: &mut NpzReader, options: &ValidateOptions) {
        for bad in reader.rejected().to_vec() {
            if bad.reason.starts_with("not a .npy member") {
                self.warn(format!(
                    "member '{}' is not a .npy array; ignored",
                    bad.name
                ));
            } else {
                self.error(format!(
                    "member '{}' is unreadable: {}",
                    bad.name, bad.reason
                ));
            }
        }
        let present = |key: &str| {
            reader.member(key).is_some() || reader.rejected().iter().any(|r| r.key == key)
        };
        let legacy = !present("diffraction") && present("diff3d");
        let missing: Vec<String> = REQUIRED_KEYS
            .iter()
            .filter(|k| !(present(k) || legacy && **k == "diffraction"))
            .map(|k| format!("'{k}'"))
            .collect();
        if !missing.is_empty() {
            let found: Vec<String> = reader.members().iter().map(|m| m.key.clone()).collect();
            self.error(format!(
                "Missing required NPZ keys: [{}] (DATA-001 requires {}; found: {})",
                missing.join(", "),
                REQUIRED_KEYS.join(", "),
                if found.is_empty() {
                    "no readable members".to_string()
                } else {
                    found.join(", ")
                }
            ));
        }
        let stack_key = if legacy {
            self.error(
                "legacy key 'diff3d' holds the diffraction stack (FORMAT-001): expected key 'diffraction'; \
                 rename it when writing, e.g. np.savez(out, diffraction=f['diff3d'], ...)"
                    .to_string(),
            );
            "diff3d"
        } else {
            if present("diffraction") && present("diff3d") {
                self.warn(
                    "legacy key 'diff3d' present beside 'diffraction' (FORMAT-001); ignored"
                        .to_string(),
                );
            }
            "diffraction"
        };

        let coords_len = reader
            .member("xcoords")
            .filter(|m| m.shape.len() == 1)
            .map(|m| m.shape[0]);
        let probe_shape = reader
            .member("probeGuess")
            .filter(|m| m.shape.len() == 2)
            .map(|m| (m.shape[0], m.shape[1]));
        let stack = reader
            .member(stack_key)
            .cloned()
            .and_then(|m| self.check_stack(&m, coords_len, probe_shape));

        if let Some(m) = reader.member("objectGuess").cloned() {
            self.expect_complex(&m);
            if m.shape.len() != 2 {
                self.error(format!(
                    "objectGuess must be 2-D (M, M'), got shape {}",
                    m.shape_text()
                ));
            }
        }
        if let Some(m) = reader.member("probeGuess").cloned() {
            self.expect_complex(&m);
            match (probe_shape, stack) {
                (None, _) => self.error(format!("probeGuess must be 2-D (H, W), got shape {}", m.shape_text())),
                (Some(p), Some(s)) if p != s.frame => self.error(format!(
                    "probeGuess shape {} != diffraction frame shape {}: expected the (H, W) of the diffraction frames",
                    m.shape_text(),
                    shape_text(&[s.frame.0, s.frame.1])
                )),
                _ => {}
            }
        }
        for key in ["xcoords", "ycoords"] {
            if let Some(m) = reader.member(key).cloned() {
                self.expect_float(&m, "float64 (float32 accepted)");
                self.expect_per_frame(&m, stack);
            }
        }

        // Optional keys: checked when present.
        if let Some(m) = reader.member("Y").cloned() {
            self.expect_complex(&m);
            if m.shape.len() != 3 || m.shape[1] != m.shape[2] {
                self.error(format!(
                    "Y must be 3-D (n, P, P), got shape {}",
                    m.shape_text()
                ));
            } else if let Some(s) = stack.filter(|s| s.n != m.shape[0]) {
                self.error(format!(
                    "Y first axis {} != diffraction first axis {}",
                    m.shape[0], s.n
                ));
            }
        }
        for key in ["xcoords_start", "ycoords_start"] {
            if let Some(m) = reader.member(key).cloned() {
                self.expect_float(&m, "float64 (float32 accepted)");
                self.expect_per_frame(&m, stack);
            }
        }
        if let Some(m) = reader.member("scan_index").cloned() {
            if !matches!(m.dtype.kind, DtypeKind::Int | DtypeKind::UInt) {
                self.error(format!(
                    "scan_index must be integer, got {}: expected int64 or int32",
                    m.dtype_name()
                ));
            }
            self.expect_per_frame(&m, stack);
        }
        if let Some(m) = reader.member("filenames").cloned() {
            if m.dtype.kind != DtypeKind::Unicode {
                self.error(format!(
                    "filenames must be unicode strings, got {}: expected <U",
                    m.dtype_name()
                ));
            }
            self.expect_per_frame(&m, stack);
        }
        let metadata = reader.member("_metadata").cloned();
        if let Some(m) = &metadata {
            if m.dtype.kind == DtypeKind::Object {
                self.warn(
                    "_metadata is a pickled object array (|O): not unpickled, its provenance is ignored; \
                     expected a 0-d unicode JSON string (np.array(json.dumps(meta)))"
                        .to_string(),
                );
            } else if m.dtype.kind != DtypeKind::Unicode || !m.shape.is_empty() {
                self.error(format!(
                    "_metadata must be a 0-d unicode JSON string, got {} of shape {}",
                    m.dtype_name(),
                    m.shape_text()
                ));
            }
        }
        for m in reader.members() {
            if m.dtype.kind == DtypeKind::Object && !CONTRACT_KEYS.contains(&m.key.as_str()) {
                self.warnings.push(format!(
                    "member '{}' is a pickled object array (|O): never unpickled; ignored",
                    m.key
                ));
            }
            // A dtype this crate cannot size is one whose data it cannot check against the
            // header: NumPy might not read it (numpy.load must read every key of a valid file).
            if m.dtype.kind == DtypeKind::Other && !CONTRACT_KEYS.contains(&m.key.as_str()) {
                self.errors.push(format!(
                    "member '{}' has dtype '{}', which this tool cannot check (NumPy may not read it): \
                     store a numeric, bool, bytes or unicode array, or remove the member",
                    m.key, m.descr
                ));
            }
        }

        if options.header_only {
            return;
        }
        // What the header checks already prove wrong is not read: every header error about a
        // member starts with its key (the messages above), and such a member makes the file
        // invalid whatever its data holds.
        let proven_wrong: Vec<String> = reader
            .members()
            .iter()
            .map(|m| m.key.clone())
            .filter(|k| {
                let prefix = format!("{k} ");
                self.errors.iter().any(|e| e.starts_with(&prefix))
            })
            .collect();
        self.check_values(reader, stack_key, metadata.as_ref(), &proven_wrong);
        for e in reader.verify_other_members() {
            self.error(e);
        }
    }

    /// Checks the diffraction stack's dtype and layout; returns n and (H, W) when usable.
    fn check_stack(
        &mut self,
        m: &MemberInfo,
        coords_len: Option<usize>,
        probe: Option<(usize, usize)>,
    ) -> Option<Stack> {
        let key = &m.key;
        if !is_float(m) {
            self.error(format!(
                "{key} must be float (amplitude), got {}: expected float32 (float64 accepted)",
                m.dtype_name()
            ));
        }
        let [a, b, c] = m.shape[..] else {
            self.error(format!(
                "{key} must be 3-D (n, H, W), got shape {}",
                m.shape_text()
            ));
            return None;
        };
        // FORMAT-001: some legacy files store the stack as (H, W, n).
        let hwn = coords_len.is_some_and(|n| c == n && a != n)
            || probe.is_some_and(|p| (a, b) == p && (b, c) != p);
        if hwn {
            self.error(format!(
                "{key} has shape {}, the legacy (H, W, n) layout (FORMAT-001): expected (n, H, W) with the scan \
                 positions first; convert with np.moveaxis({key}, -1, 0)",
                m.shape_text()
            ));
            return Some(Stack {
                n: c,
                frame: (a, b),
            });
        }
        if a == 0 {
            self.error(format!(
                "{key} holds no frames: shape {}, expected n >= 1",
                m.shape_text()
            ));
        }
        Some(Stack {
            n: a,
            frame: (b, c),
        })
    }

    fn expect_complex(&mut self, m: &MemberInfo) {
        if !is_complex(m) {
            self.error(format!(
                "{} must be complex, got {}: expected complex64 (complex128 accepted)",
                m.key,
                m.dtype_name()
            ));
        }
    }

    fn expect_float(&mut self, m: &MemberInfo, expected: &str) {
        if !is_float(m) {
            self.error(format!(
                "{} must be float, got {}: expected {expected}",
                m.key,
                m.dtype_name()
            ));
        }
    }

    fn expect_per_frame(&mut self, m: &MemberInfo, stack: Option<Stack>) {
        match (&m.shape[..], stack) {
            ([len], Some(s)) if *len != s.n => {
                self.error(format!(
                    "{} length {len} != diffraction first axis {}",
                    m.key, s.n
                ));
            }
            ([_], _) => {}
            (_, _) => self.error(format!(
                "{} must be 1-D (n,), got shape {}",
                m.key,
                m.shape_text()
            )),
        }
    }

    /// Value checks: one streaming pass over each array that passed the header checks, then
    /// a pass over every other member's bytes so that damage anywhere is found.
    fn check_values(
        &mut self,
        reader: &mut NpzReader,
        stack_key: &str,
        metadata: Option<&MemberInfo>,
        proven_wrong: &[String],
    ) {
        // Members proven wrong count as handled: they are neither decoded nor read through.
        let mut streamed: Vec<String> = proven_wrong.to_vec();
        let wrong = |key: &str| proven_wrong.iter().any(|k| k == key);
        if let Some(m) = reader
            .member(stack_key)
            .filter(|m| is_float(m) && !wrong(&m.key))
            .cloned()
        {
            streamed.push(m.key.clone());
            let result = if m.dtype.itemsize == Some(4) {
                amplitude_stats::<f32>(reader, &m.key)
            } else {
                amplitude_stats::<f64>(reader, &m.key)
            };
            match result {
                Ok(stats) => self.report_amplitude(&m.key, &stats),
                Err(e) => self.error(strip_path(reader.path(), &e.to_string())),
            }
        }
        let finite_c32 = |z: &Complex<f32>| z.re.is_finite() && z.im.is_finite();
        let finite_c64 = |z: &Complex<f64>| z.re.is_finite() && z.im.is_finite();
        for key in ["objectGuess", "probeGuess", "Y"] {
            if let Some(m) = reader
                .member(key)
                .filter(|m| is_complex(m) && !wrong(key))
                .cloned()
            {
                streamed.push(key.to_string());
                let result = if m.dtype.itemsize == Some(8) {
                    count_nonfinite::<Complex<f32>>(reader, key, finite_c32)
                } else {
                    count_nonfinite::<Complex<f64>>(reader, key, finite_c64)
                };
                self.report_finite(reader.path(), key, result);
            }
        }
        for key in ["xcoords", "ycoords", "xcoords_start", "ycoords_start"] {
            if reader.member(key).is_some_and(is_float) && !wrong(key) {
                streamed.push(key.to_string());
                let result = count_nonfinite::<f64>(reader, key, |x| x.is_finite());
                self.report_finite(reader.path(), key, result);
            }
        }
        if reader
            .member("filenames")
            .is_some_and(|m| m.dtype.kind == DtypeKind::Unicode && m.shape.len() == 1)
            && !wrong("filenames")
        {
            streamed.push("filenames".to_string());
            // Streamed item by item: checked, never held.
            if let Err(e) = reader.check_strings("filenames") {
                self.error(strip_path(reader.path(), &e.to_string()));
            }
        }
        if metadata.is_some_and(|m| m.dtype.kind == DtypeKind::Unicode && m.shape.is_empty())
            && !wrong("_metadata")
        {
            streamed.push("_metadata".to_string());
            match reader.read_string("_metadata") {
                Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(serde_json::Value::Object(_)) => {}
                    Ok(other) => self.error(format!(
                        "_metadata must be a JSON object (provenance), got a JSON {}",
                        json_kind(&other)
                    )),
                    Err(e) => self.error(format!(
                        "_metadata is not valid JSON ({e}): expected a JSON object"
                    )),
                },
                Err(e) => self.error(strip_path(reader.path(), &e.to_string())),
            }
        }
        // Integrity of every other member (wrong dtypes, unknown keys, pickles): length and CRC.
        let others: Vec<String> = reader
            .members()
            .iter()
            .map(|m| m.key.clone())
            .filter(|k| !streamed.contains(k))
            .collect();
        for key in others {
            if let Err(e) = reader.verify(&key) {
                self.error(strip_path(reader.path(), &e.to_string()));
            }
        }
    }

    fn report_finite(
        &mut self,
        path: &Path,
        key: &str,
        result: Result<(u64, Option<u64>), crate::NpzError>,
    ) {
        match result {
            Ok((0, _)) => {}
            Ok((count, first)) => self.error(format!(
                "{key} has {} (NaN or inf; first at item {} in storage order): expected finite values",
                values(count, "non-finite"),
                first.unwrap_or(0)
            )),
            Err(e) => self.error(strip_path(path, &e.to_string())),
        }
    }

    fn report_amplitude(&mut self, key: &str, s: &AmplitudeStats) {
        if s.nonfinite > 0 {
            self.error(format!(
                "{key} has {} (NaN or inf; first at item {} in storage order): expected finite amplitudes",
                values(s.nonfinite, "non-finite"),
                s.first_nonfinite.unwrap_or(0)
            ));
        }
        if s.negative > 0 {
            self.error(format!(
                "{key} has {} (min {}): expected amplitudes >= 0",
                values(s.negative, "negative"),
                s.min
            ));
        }
        // Amplitude is sqrt(counts): unless counts are all 0 or 1, many amplitudes are not whole
        // numbers. A stack of whole numbers reaching 2 or more is almost surely raw counts.
        // Infinities pass as "whole" and make the maximum meaningless: with non-finite values
        // (already an error) the heuristic says nothing.
        if s.nonfinite == 0 && s.nonzero >= 100 && s.all_whole && s.max >= 2.0 {
            self.warn(format!(
                "{key} looks like intensity (photon counts), not amplitude: all {} non-zero values are whole \
                 numbers (max {}); DATA-001 stores amplitude = sqrt(counts), e.g. np.sqrt(counts)",
                s.nonzero, s.max
            ));
        }
    }
}

/// "1 negative value", "3 negative values".
fn values(count: u64, adjective: &str) -> String {
    format!(
        "{count} {adjective} value{}",
        if count == 1 { "" } else { "s" }
    )
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

#[derive(Default)]
struct AmplitudeStats {
    nonfinite: u64,
    first_nonfinite: Option<u64>,
    negative: u64,
    min: f64,
    max: f64,
    nonzero: u64,
    /// Every non-zero value is a whole number.
    all_whole: bool,
}

/// A float element the amplitude statistics run on natively (no widening pass).
trait Amplitude: NpzElement + PartialOrd {
    fn to_f64(self) -> f64;
    fn is_finite(self) -> bool;
    fn is_whole(self) -> bool;
    fn zero() -> Self;
}

impl Amplitude for f32 {
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    fn is_whole(self) -> bool {
        // A cast, not trunc(): trunc is a libm call per item without SSE4.1. Floats from 2^23
        // up are all whole.
        self.abs() >= 8_388_608.0 || (self as i32) as f32 == self
    }
    fn zero() -> Self {
        0.0
    }
}

impl Amplitude for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    fn is_whole(self) -> bool {
        self.abs() >= 4_503_599_627_370_496.0 || (self as i64) as f64 == self
    }
    fn zero() -> Self {
        0.0
    }
}

fn amplitude_stats<T: Amplitude>(
    reader: &mut NpzReader,
    key: &str,
) -> Result<AmplitudeStats, crate::NpzError> {
    let mut s = AmplitudeStats {
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        ..AmplitudeStats::default()
    };
    let mut offset = 0u64;
    // Stays true while every non-zero value seen is a whole number; once false (the first
    // chunk, for real amplitudes) the per-item test is skipped.
    let mut all_whole = true;
    reader.for_each_chunk::<T>(key, |chunk| {
        // One branch-free pass (vectorisable); the rare findings get a second pass over the
        // chunk while it is still in cache.
        let (mut lo, mut hi) = (T::zero(), T::zero());
        let mut nonzero = 0u64;
        let mut all_finite = true;
        for &x in chunk {
            all_finite &= x.is_finite();
            lo = if x < lo { x } else { lo };
            hi = if x > hi { x } else { hi };
            nonzero += u64::from(x != T::zero());
        }
        if !all_finite {
            for (i, &x) in chunk.iter().enumerate() {
                if !x.is_finite() {
                    s.nonfinite += 1;
                    s.first_nonfinite.get_or_insert(offset + i as u64);
                }
            }
        }
        if lo < T::zero() {
            s.negative += chunk.iter().filter(|&&x| x < T::zero()).count() as u64;
        }
        if all_whole {
            all_whole = chunk.iter().all(|&x| x == T::zero() || x.is_whole());
        }
        s.min = s.min.min(lo.to_f64());
        s.max = s.max.max(hi.to_f64());
        s.nonzero += nonzero;
        offset += chunk.len() as u64;
    })?;
    s.all_whole = all_whole;
    Ok(s)
}

fn count_nonfinite<T: NpzElement>(
    reader: &mut NpzReader,
    key: &str,
    finite: impl Fn(&T) -> bool,
) -> Result<(u64, Option<u64>), crate::NpzError> {
    let (mut count, mut first, mut offset) = (0u64, None, 0u64);
    reader.for_each_chunk::<T>(key, |chunk| {
        for (i, x) in chunk.iter().enumerate() {
            if !finite(x) {
                count += 1;
                first.get_or_insert(offset + i as u64);
            }
        }
        offset += chunk.len() as u64;
    })?;
    Ok((count, first))
}

#[cfg(test)]
mod tests {
    use ndarray::{Array1, Array2, Array3, ArrayD, IxDyn};
    use num_complex::Complex;

    use super::*;
    use crate::tests::{npy, raw_npz};
    use crate::{Compression, NpzWriter};

    type C32 = Complex<f32>;

    /// What goes into a test file.
    enum Value {
        F32(ArrayD<f32>),
        F64(ArrayD<f64>),
        C64(ArrayD<C32>),
        I64(ArrayD<i64>),
        Str(&'static str),
    }

    fn f32s(shape: &[usize], f: impl Fn(usize) -> f32) -> Value {
        let n = shape.iter().product();
        Value::F32(ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(f).collect()).unwrap())
    }
    fn c64s(shape: &[usize]) -> Value {
        Value::C64(ArrayD::from_elem(IxDyn(shape), Complex::new(0.5, -0.25)))
    }
    fn f64s(n: usize) -> Value {
        Value::F64(Array1::linspace(0.0, 10.0, n).into_dyn())
    }

    /// A valid DATA-001 file of n frames of 8 x 8, with `changes` applied (None removes a key).
    fn file(n: usize, changes: Vec<(&'static str, Option<Value>)>) -> Vec<(&'static str, Value)> {
        let mut members: Vec<(&'static str, Value)> = vec![
            ("diffraction", f32s(&[n, 8, 8], |i| ((i % 7) as f32).sqrt())),
            ("objectGuess", c64s(&[16, 16])),
            ("probeGuess", c64s(&[8, 8])),
            ("xcoords", f64s(n)),
            ("ycoords", f64s(n)),
            (
                "_metadata",
                Value::Str("{\"dose\": 1000.0, \"view\": \"dense\"}"),
            ),
        ];
        for (key, value) in changes {
            members.retain(|(k, _)| *k != key);
            if let Some(v) = value {
                members.push((key, v));
            }
        }
        members
    }

    fn write(path: &Path, members: &[(&str, Value)]) {
        let mut w = NpzWriter::create(path, Compression::Deflated).unwrap();
        for (key, value) in members {
            match value {
                Value::F32(a) => w.add(key, a),
                Value::F64(a) => w.add(key, a),
                Value::C64(a) => w.add(key, a),
                Value::I64(a) => w.add(key, a),
                Value::Str(s) => w.add_string(key, s),
            }
            .unwrap();
        }
        w.finish().unwrap();
    }

    /// Writes `members`, validates with `options`, and compares the whole message lists.
    fn check(
        members: Vec<(&'static str, Value)>,
        options: ValidateOptions,
        errors: &[&str],
        warnings: &[&str],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data set.npz");
        write(&path, &members);
        let report = validate(&path, &options);
        assert_eq!(report.errors, errors, "errors");
        assert_eq!(report.warnings, warnings, "warnings");
        assert_eq!(report.valid, errors.is_empty());
    }

    fn opts() -> ValidateOptions {
        ValidateOptions::default()
    }

    #[test]
    fn a_complete_file_is_valid() {
        check(file(4, vec![]), opts(), &[], &[]);
        let grid2 = ValidateOptions {
            gridsize: Some(2),
            neighbor_count: Some(7),
            header_only: false,
        };
        check(file(4, vec![]), grid2, &[], &[]);
        // Optional keys of the right shape are fine.
        let extra = vec![
            ("Y", Some(c64s(&[4, 6, 6]))),
            ("xcoords_start", Some(f64s(4))),
            (
                "scan_index",
                Some(Value::I64(Array1::from_vec(vec![0, 1, 2, 3]).into_dyn())),
            ),
        ];
        check(file(4, extra), opts(), &[], &[]);
    }

    #[test]
    fn reports_every_problem_at_once() {
        let changes = vec![
            ("diffraction", Some(c64s(&[10, 8, 8]))),
            ("objectGuess", Some(f32s(&[16, 16], |_| 1.0))),
            ("xcoords", Some(f64s(5))),
            ("ycoords", None),
        ];
        check(
            file(10, changes),
            opts(),
            &[
                "Missing required NPZ keys: ['ycoords'] (DATA-001 requires diffraction, objectGuess, probeGuess, \
                 xcoords, ycoords; found: probeGuess, _metadata, diffraction, objectGuess, xcoords)",
                "diffraction must be float (amplitude), got complex64: expected float32 (float64 accepted)",
                "objectGuess must be complex, got float32: expected complex64 (complex128 accepted)",
                "xcoords length 5 != diffraction first axis 10",
            ],
            &[],
        );
    }

    #[test]
    fn shapes_of_required_and_optional_keys() {
        let changes = vec![
            ("probeGuess", Some(c64s(&[6, 6]))),
            ("objectGuess", Some(c64s(&[16]))),
            ("Y", Some(c64s(&[3, 6, 6]))),
            ("ycoords_start", Some(f64s(2))),
            ("scan_index", Some(f64s(4))),
        ];
        check(
            file(4, changes),
            opts(),
            &[
                "objectGuess must be 2-D (M, M'), got shape (16,)",
                "probeGuess shape (6, 6) != diffraction frame shape (8, 8): expected the (H, W) of the diffraction frames",
                "Y first axis 3 != diffraction first axis 4",
                "ycoords_start length 2 != diffraction first axis 4",
                "scan_index must be integer, got float64: expected int64 or int32",
            ],
            &[],
        );
    }

    #[test]
    fn oversampling_precondition() {
        let g = |gridsize, neighbor_count| ValidateOptions {
            gridsize: Some(gridsize),
            neighbor_count,
            header_only: true,
        };
        check(
            file(4, vec![]),
            g(2, Some(3)),
            &[
                "neighbor_count=3 < C=4 for gridsize=2 (OVERSAMPLING-001): expected neighbor_count >= 4",
            ],
            &[],
        );
        check(
            file(4, vec![]),
            g(2, None),
            &[
                "neighbor_count required when gridsize=2: K-choose-C grouping needs neighbor_count >= C=4 (OVERSAMPLING-001)",
            ],
            &[],
        );
        check(file(4, vec![]), g(1, None), &[], &[]);
        check(file(4, vec![]), g(3, Some(9)), &[], &[]);
    }

    #[test]
    fn legacy_diff3d_in_hwn_layout() {
        let changes = vec![
            ("diffraction", None),
            (
                "diff3d",
                Some(f32s(&[8, 8, 5], |i| (i as f32 * 0.1).sqrt())),
            ),
        ];
        check(
            file(5, changes),
            opts(),
            &[
                "legacy key 'diff3d' holds the diffraction stack (FORMAT-001): expected key 'diffraction'; rename it \
                 when writing, e.g. np.savez(out, diffraction=f['diff3d'], ...)",
                "diff3d has shape (8, 8, 5), the legacy (H, W, n) layout (FORMAT-001): expected (n, H, W) with the \
                 scan positions first; convert with np.moveaxis(diff3d, -1, 0)",
            ],
            &[],
        );
    }

    #[test]
    fn value_checks() {
        let bad = vec![(
            "diffraction",
            Some(f32s(&[4, 8, 8], |i| match i {
                3 | 70 => f32::NAN,
                5 => f32::INFINITY,
                9 => -0.5,
                _ => 1.5,
            })),
        )];
        check(
            file(4, bad),
            opts(),
            &[
                "diffraction has 3 non-finite values (NaN or inf; first at item 3 in storage order): expected finite \
                 amplitudes",
                "diffraction has 1 negative value (min -0.5): expected amplitudes >= 0",
            ],
            &[],
        );
        let counts = vec![("diffraction", Some(f32s(&[4, 8, 8], |i| (i % 9) as f32)))];
        check(
            file(4, counts),
            opts(),
            &[],
            &[
                "diffraction looks like intensity (photon counts), not amplitude: all 227 non-zero values are whole \
               numbers (max 8); DATA-001 stores amplitude = sqrt(counts), e.g. np.sqrt(counts)",
            ],
        );
        // Regression: a stack of infinities was also called "intensity ... (max inf)".
        let infinite = vec![("diffraction", Some(f32s(&[4, 8, 8], |_| f32::INFINITY)))];
        check(
            file(4, infinite),
            opts(),
            &[
                "diffraction has 256 non-finite values (NaN or inf; first at item 0 in storage order): expected \
                 finite amplitudes",
            ],
            &[],
        );
        // Low-dose amplitudes (all 0 or 1) are not flagged.
        let binary = vec![("diffraction", Some(f32s(&[4, 8, 8], |i| (i % 2) as f32)))];
        check(file(4, binary), opts(), &[], &[]);
        let coords = vec![(
            "ycoords",
            Some(Value::F64(
                Array1::from_vec(vec![0.0, f64::NAN, 1.0, 2.0]).into_dyn(),
            )),
        )];
        check(
            file(4, coords),
            opts(),
            &[
                "ycoords has 1 non-finite value (NaN or inf; first at item 1 in storage order): expected finite values",
            ],
            &[],
        );
        let meta = vec![("_metadata", Some(Value::Str("{not json")))];
        let report = {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("m.npz");
            write(&path, &file(4, meta));
            validate(&path, &opts())
        };
        assert_eq!(report.errors.len(), 1);
        assert!(
            report.errors[0].starts_with("_metadata is not valid JSON"),
            "{:?}",
            report.errors
        );
        // Header-only checks skip values.
        let counts = vec![("diffraction", Some(f32s(&[4, 8, 8], |_| f32::NAN)))];
        check(
            file(4, counts),
            ValidateOptions {
                header_only: true,
                ..opts()
            },
            &[],
            &[],
        );
    }

    #[test]
    fn header_only_reads_no_array_data() {
        // A stored file whose diffraction data is damaged (CRC mismatch): header-only checks pass,
        // which proves they never read the data; the full check finds the damage.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crc.npz");
        let mut w = NpzWriter::create(&path, Compression::Stored).unwrap();
        w.add("diffraction", &Array3::<f32>::from_elem((2, 4, 4), 1.5))
            .unwrap();
        w.add("objectGuess", &Array2::<C32>::zeros((8, 8))).unwrap();
        w.add("probeGuess", &Array2::<C32>::zeros((4, 4))).unwrap();
        w.add("xcoords", &Array1::<f64>::zeros(2)).unwrap();
        w.add("ycoords", &Array1::<f64>::zeros(2)).unwrap();
        w.finish().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes
            .windows(4)
            .position(|w| w == 1.5f32.to_le_bytes())
            .unwrap();
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let header = validate(
            &path,
            &ValidateOptions {
                header_only: true,
                ..opts()
            },
        );
        assert!(header.valid, "{header:?}");
        let full = validate(&path, &opts());
        assert_eq!(full.errors.len(), 1, "{full:?}");
        assert!(
            full.errors[0].contains("member 'diffraction' data is corrupt: CRC-32 mismatch"),
            "{full:?}"
        );
    }

    #[test]
    fn pickles_are_warnings_and_hostile_files_are_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.npz");
        let f4 = |n: usize| npy("<f4", false, &format!("({n},)"), &vec![0u8; 4 * n]);
        raw_npz(
            &path,
            &[
                (
                    "diffraction.npy",
                    npy("<f4", false, "(1, 2, 2)", &[0u8; 16]),
                ),
                ("objectGuess.npy", npy("<c8", false, "(2, 2)", &[0u8; 32])),
                ("probeGuess.npy", npy("<c8", false, "(2, 2)", &[0u8; 32])),
                ("xcoords.npy", f4(1)),
                ("ycoords.npy", f4(1)),
                ("_metadata.npy", npy("|O", false, "()", b"\x80\x04K\x01.")),
                ("extra.npy", npy("|O", false, "(3,)", b"\x80\x04.")),
                ("notes.txt", b"hello".to_vec()),
            ],
            false,
        );
        let report = validate(&path, &opts());
        assert!(report.valid, "{report:?}");
        assert_eq!(
            report.warnings,
            [
                "member 'notes.txt' is not a .npy array; ignored",
                "_metadata is a pickled object array (|O): not unpickled, its provenance is ignored; expected a 0-d \
                 unicode JSON string (np.array(json.dumps(meta)))",
                "member 'extra' is a pickled object array (|O): never unpickled; ignored",
            ]
        );
        let empty = dir.path().join("empty.npz");
        std::fs::write(&empty, b"").unwrap();
        let report = validate(&empty, &opts());
        assert!(!report.valid);
        assert_eq!(
            report.errors,
            [
                "not a readable NPZ archive: the file is empty (expected a ZIP archive of .npy members, as numpy.savez \
              or numpy.savez_compressed write)"
            ]
        );
    }
}
