//! Doses as people write them: Python's `f"{dose:.0e}"` labels and number-format-blind equality.

/// A dose as Python's `f"{dose:.0e}"` prints it: 1000 -> `1e+03`, 1e4 -> `1e+04`, 0.5 -> `5e-01`.
///
/// The original system labelled jobs this way in its logs and stdout, and people grep for it.
pub fn format_dose(dose: f64) -> String {
    if !dose.is_finite() {
        // Python prints `nan`, `inf`, `-inf`; the design never lets these through.
        return if dose.is_nan() {
            "nan".to_string()
        } else if dose > 0.0 {
            "inf".to_string()
        } else {
            "-inf".to_string()
        };
    }
    // Rust's `{:.0e}` rounds like Python's (exactly, half to even); only the exponent's form
    // differs (`1e3` against `1e+03`).
    let rust = format!("{dose:.0e}");
    let (mantissa, exponent) = rust.split_once('e').unwrap_or((rust.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
}

/// Whether two doses are the same dose, however they were written (`1000`, `1e3`, `1000.0`).
///
/// Equal up to a relative 1e-9, so that a dose typed on the command line matches the design's
/// even when one of them went through a decimal round trip.
pub fn same_dose(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_python() {
        // Expected values printed by CPython 3 for f"{d:.0e}".
        let cases = [
            (1000.0, "1e+03"),
            (2500.0, "2e+03"),
            (3500.0, "4e+03"),
            (1e4, "1e+04"),
            (1e5, "1e+05"),
            (12345.0, "1e+04"),
            (99999.0, "1e+05"),
            (0.5, "5e-01"),
            (1e-5, "1e-05"),
            (1e100, "1e+100"),
        ];
        for (dose, expected) in cases {
            assert_eq!(format_dose(dose), expected, "dose {dose}");
        }
    }

    #[test]
    fn number_formats_are_one_dose() {
        let parsed: Vec<f64> = ["1000", "1e3", "1000.0", "1.0e+03"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        for d in &parsed {
            assert!(same_dose(*d, 1000.0));
        }
        assert!(!same_dose(1000.0, 1001.0));
        assert!(!same_dose(1000.0, 10000.0));
    }
}
