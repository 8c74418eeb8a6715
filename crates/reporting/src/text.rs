//! Numbers and table cells as the report, the comparison, the diff and the pictures print
//! them: dose labels, four significant digits, Markdown cells.

/// `1e+03`, as Python's `f"{dose:.0e}"` prints a round dose; a dose that is not a power of
/// ten keeps its digits (`2.5e+04`, `6.3e+02`), where `.0e` would print 25,000 and 16,000
/// alike as `2e+04` and two doses of a sweep would share a label.
pub fn dose_label(dose: f64) -> String {
    let s = format!("{dose:e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// Four significant digits, deterministic (`0.04708`, `25.48`, `1.234e-5`; any zero is `0`).
pub(crate) fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&magnitude) {
        return format!("{v:.3e}");
    }
    let decimals = (3 - magnitude).max(0) as usize;
    format!("{v:.decimals$}")
}

/// `text` as the content of one Markdown table cell: `|` escaped, line breaks (and other
/// control characters) made spaces, so that text read from an artifact stays in its cell.
pub(crate) fn cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace(|c: char| c.is_control(), " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dose_labels_match_python_on_round_doses_and_keep_the_digits_of_others() {
        assert_eq!(dose_label(1000.0), "1e+03");
        assert_eq!(dose_label(1e5), "1e+05");
        // Python's .0e would print 3e-03, 2e+03, 2e+04 and 2e+04: labels that lie, and the
        // last two collide.
        assert_eq!(dose_label(2.5e-3), "2.5e-03");
        assert_eq!(dose_label(2500.0), "2.5e+03");
        assert_eq!(dose_label(25_000.0), "2.5e+04");
        assert_eq!(dose_label(16_000.0), "1.6e+04");
    }

    #[test]
    fn four_significant_digits() {
        for (v, text) in [
            (0.047083, "0.04708"),
            (25.4811, "25.48"),
            (0.0093204, "0.009320"),
            (1234567.0, "1.235e6"),
            (1.5e-5, "1.500e-5"),
            (0.0, "0"),
            (-0.0, "0"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(fmt_num(v), text, "{v}");
        }
    }
}
