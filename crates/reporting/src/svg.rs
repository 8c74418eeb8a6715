//! Small, deterministic SVG line charts. Every plotted point also carries its data in
//! `data-x`/`data-y` attributes, so a test (or a curious reader) can check the numbers.

use std::fmt::Write as _;

/// One line of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points in drawing order (x, y); non-finite points are left out.
    pub points: Vec<(f64, f64)>,
    /// Error bars: the half-width at each point (drawn as y +- it), or empty for none.
    pub errors: Vec<f64>,
}

impl Series {
    /// The points with their error bars' ends (y itself where the series has none).
    fn spans(&self) -> impl Iterator<Item = (f64, f64, f64)> + '_ {
        self.points.iter().enumerate().map(|(k, &(x, y))| {
            let e = self
                .errors
                .get(k)
                .copied()
                .filter(|e| e.is_finite())
                .unwrap_or(0.0);
            (x, y - e, y + e)
        })
    }
}

/// A line chart.
#[derive(Clone, Debug)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Logarithmic x axis (doses).
    pub log_x: bool,
    /// Logarithmic y axis (losses).
    pub log_y: bool,
    /// The lines.
    pub series: Vec<Series>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLORS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// Text as SVG (XML) character data or an attribute value.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Shortest round-trip text of a number (deterministic).
fn num(v: f64) -> String {
    format!("{v}")
}

/// A tick label: as many decimals as the tick step needs (linear), or `2e-3` / `1e4` style
/// for the extremes of a log axis.
fn tick_label(v: f64, step: Option<f64>) -> String {
    match step {
        Some(step) => {
            let decimals = (-step.log10().floor()).max(0.0) as usize;
            let text = format!("{v:.decimals$}");
            // Shortest form: 6, not 6.00, where the step has two decimals.
            let text = if text.contains('.') {
                text.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                text
            };
            if text
                .trim_start_matches('-')
                .trim_matches(['0', '.'])
                .is_empty()
            {
                "0".into()
            } else {
                text
            }
        }
        None if !(1e-2..1e4).contains(&v) => {
            let text = format!("{v:.0e}");
            text.replace("e0", "")
        }
        // Log ticks are m x 10^e computed in floating point (6 x 0.1 = 0.6000000000000001):
        // print the one significant digit they stand for.
        None => {
            let decimals = (-(v.log10() + 1e-9).floor()).max(0.0) as usize;
            format!("{v:.decimals$}")
        }
    }
}

/// A step of 1, 2 or 5 times a power of ten giving about `target` intervals over `span`.
fn nice_step(span: f64, target: f64) -> f64 {
    let raw = span / target;
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let factor = if norm < 1.5 {
        1.0
    } else if norm < 3.0 {
        2.0
    } else if norm < 7.0 {
        5.0
    } else {
        10.0
    };
    factor * magnitude
}

struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    fn new(values: impl Iterator<Item = f64>, log: bool) -> Axis {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
            let v = if log { v.log10() } else { v };
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-12 {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            (lo, hi) = (lo - pad, hi + pad);
        } else {
            let pad = (hi - lo) * 0.05;
            (lo, hi) = (lo - pad, hi + pad);
        }
        Axis { lo, hi, log }
    }

    /// Position in [0, 1] along the axis, or `None` where it cannot be drawn.
    fn fraction(&self, v: f64) -> Option<f64> {
        if !v.is_finite() || (self.log && v <= 0.0) {
            return None;
        }
        let v = if self.log { v.log10() } else { v };
        Some((v - self.lo) / (self.hi - self.lo))
    }

    /// Tick values and, for a linear axis, their step.
    fn ticks(&self) -> (Vec<f64>, Option<f64>) {
        if self.log {
            let decades: Vec<f64> = (self.lo.ceil() as i32..=self.hi.floor() as i32)
                .map(|e| 10f64.powi(e))
                .collect();
            if decades.len() >= 3 {
                return (decades, None);
            }
            // Short log ranges: 1, 2 and 5 in every decade touched, or every digit if that
            // still gives fewer than three ticks.
            let in_range = |mantissas: &[f64]| -> Vec<f64> {
                let mut ticks = Vec::new();
                for e in (self.lo.floor() as i32)..=(self.hi.ceil() as i32) {
                    for m in mantissas {
                        let v: f64 = m * 10f64.powi(e);
                        if (self.lo..=self.hi).contains(&v.log10()) {
                            ticks.push(v);
                        }
                    }
                }
                ticks
            };
            let mut ticks = in_range(&[1.0, 2.0, 5.0]);
            if ticks.len() < 3 {
                ticks = in_range(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
            }
            return (ticks, None);
        }
        let step = nice_step(self.hi - self.lo, 5.0);
        let first = (self.lo / step).ceil() as i64;
        let last = (self.hi / step).floor() as i64;
        (
            (first..=last).map(|k| k as f64 * step).collect(),
            Some(step),
        )
    }
}

impl Chart {
    /// Renders the chart as a standalone SVG document.
    pub fn to_svg(&self) -> String {
        let all = || self.series.iter().flat_map(|s| s.points.iter());
        let xa = Axis::new(all().map(|p| p.0), self.log_x);
        // The y axis holds the error bars too.
        let ys = self
            .series
            .iter()
            .flat_map(|s| s.spans().flat_map(|(_, lo, hi)| [lo, hi]));
        let ya = Axis::new(ys, self.log_y);
        // A legend with long labels widens the picture rather than run off its edge (at 12 px
        // sans-serif a character is at most about 7 px wide).
        let longest = self
            .series
            .iter()
            .map(|s| s.label.chars().count())
            .max()
            .unwrap_or(0);
        let width = WIDTH
            .max(WIDTH - RIGHT + 38.0 + 7.0 * longest as f64)
            .ceil();
        let pw = WIDTH - LEFT - RIGHT;
        let ph = HEIGHT - TOP - BOTTOM;
        let px = |f: f64| LEFT + f * pw;
        let py = |f: f64| TOP + (1.0 - f) * ph;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" viewBox="0 0 {width} {HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
            LEFT + pw / 2.0,
            escape(&self.title)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
        );
        let (x_ticks, x_step) = xa.ticks();
        for t in x_ticks {
            if let Some(f) = xa.fraction(t).filter(|f| (0.0..=1.0).contains(f)) {
                let x = px(f);
                let _ = writeln!(
                    s,
                    r##"<line x1="{x:.2}" y1="{}" x2="{x:.2}" y2="{}" stroke="#ccc"/><text x="{x:.2}" y="{}" text-anchor="middle">{}</text>"##,
                    TOP,
                    TOP + ph,
                    TOP + ph + 16.0,
                    tick_label(t, x_step)
                );
            }
        }
        let (y_ticks, y_step) = ya.ticks();
        for t in y_ticks {
            if let Some(f) = ya.fraction(t).filter(|f| (0.0..=1.0).contains(f)) {
                let y = py(f);
                let _ = writeln!(
                    s,
                    r##"<line x1="{LEFT}" y1="{y:.2}" x2="{}" y2="{y:.2}" stroke="#ccc"/><text x="{}" y="{:.2}" text-anchor="end">{}</text>"##,
                    LEFT + pw,
                    LEFT - 6.0,
                    y + 4.0,
                    tick_label(t, y_step)
                );
            }
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + pw / 2.0,
            HEIGHT - 12.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{}</text>"#,
            TOP + ph / 2.0,
            TOP + ph / 2.0,
            escape(&self.y_label)
        );
        for (k, series) in self.series.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let drawn: Vec<(f64, f64, f64, f64)> = series
                .points
                .iter()
                .filter_map(|&(x, y)| Some((x, y, px(xa.fraction(x)?), py(ya.fraction(y)?))))
                .collect();
            let _ = writeln!(
                s,
                r#"<g class="series" data-label="{}">"#,
                escape(&series.label)
            );
            if drawn.len() > 1 {
                let path: Vec<String> = drawn
                    .iter()
                    .map(|p| format!("{:.2},{:.2}", p.2, p.3))
                    .collect();
                let _ = writeln!(
                    s,
                    r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                    path.join(" ")
                );
            }
            for ((x, y), e) in series.points.iter().zip(&series.errors) {
                let (Some(fx), Some(lo), Some(hi)) =
                    (xa.fraction(*x), ya.fraction(y - e), ya.fraction(y + e))
                else {
                    continue;
                };
                if !e.is_finite() || *e <= 0.0 {
                    continue;
                }
                let cx = px(fx);
                let _ = writeln!(
                    s,
                    r#"<path d="M{:.2},{:.2}V{:.2}M{:.2},{:.2}h8M{:.2},{:.2}h8" stroke="{color}" stroke-width="1.2" data-x="{}" data-y="{}" data-err="{}"/>"#,
                    cx,
                    py(lo),
                    py(hi),
                    cx - 4.0,
                    py(lo),
                    cx - 4.0,
                    py(hi),
                    num(*x),
                    num(*y),
                    num(*e)
                );
            }
            // Markers only for short series; long loss curves stay light.
            let marker = if drawn.len() <= 50 { 3.5 } else { 0.0 };
            for (x, y, cx, cy) in &drawn {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{cx:.2}" cy="{cy:.2}" r="{marker}" fill="{color}" data-x="{}" data-y="{}"/>"#,
                    num(*x),
                    num(*y)
                );
            }
            let ly = TOP + 10.0 + 18.0 * k as f64;
            let lx = LEFT + pw + 12.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
                lx + 20.0,
                lx + 26.0,
                ly + 4.0,
                escape(&series.label)
            );
            let _ = writeln!(s, "</g>");
        }
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_carry_their_data() {
        let chart = Chart {
            title: "phase SSIM vs dose".into(),
            x_label: "dose".into(),
            y_label: "SSIM".into(),
            log_x: true,
            log_y: false,
            series: vec![Series {
                errors: Vec::new(),
                label: "dense".into(),
                points: vec![(1e3, 0.5), (1e4, 0.75), (1e5, 0.9)],
            }],
        };
        let svg = chart.to_svg();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains(r#"data-x="1000" data-y="0.5""#));
        assert!(svg.contains(r#"data-x="100000" data-y="0.9""#));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("<polyline"));
        assert_eq!(chart.to_svg(), svg, "deterministic");
    }

    #[test]
    fn ticks_are_round_numbers() {
        let linear = Axis {
            lo: -0.011,
            hi: 0.537,
            log: false,
        };
        let (ticks, step) = linear.ticks();
        assert_eq!(step, Some(0.1));
        let labels: Vec<String> = ticks.iter().map(|t| tick_label(*t, step)).collect();
        assert_eq!(labels, ["0", "0.1", "0.2", "0.3", "0.4", "0.5"]);
        let log = Axis {
            lo: -2.2,
            hi: -0.9,
            log: true,
        };
        let labels: Vec<String> = log.ticks().0.iter().map(|t| tick_label(*t, None)).collect();
        assert_eq!(labels, ["0.01", "0.02", "0.05", "0.1"]);
        let doses = Axis {
            lo: 2.9,
            hi: 5.1,
            log: true,
        };
        let labels: Vec<String> = doses
            .ticks()
            .0
            .iter()
            .map(|t| tick_label(*t, None))
            .collect();
        assert_eq!(labels, ["1000", "1e4", "1e5"]);
        // Regression: a loss plot's axis read `0.6000000000000001` (6 x 10^-1 in floats).
        let loss = Axis {
            lo: -0.31,
            hi: -0.1,
            log: true,
        };
        let labels: Vec<String> = loss
            .ticks()
            .0
            .iter()
            .map(|t| tick_label(*t, None))
            .collect();
        assert_eq!(labels, ["0.5", "0.6", "0.7"]);
    }

    /// Every tick label over many axis ranges, log and linear, is a short round number.
    #[test]
    fn tick_labels_never_show_float_noise() {
        // Noise shows as 17 digits; a round label is short and still names its tick.
        let short = |label: &str, t: f64| {
            let value: f64 = label.parse().unwrap_or(f64::NAN);
            label.len() <= 7 && (value - t).abs() <= 1e-9 * t.abs().max(1e-300)
        };
        for lo_k in -60..60 {
            for span_k in 1..40 {
                let lo = lo_k as f64 * 0.1;
                let hi = lo + span_k as f64 * 0.07;
                for log in [true, false] {
                    let axis = Axis { lo, hi, log };
                    let (ticks, step) = axis.ticks();
                    for t in ticks {
                        let label = tick_label(t, step);
                        assert!(
                            short(&label, t),
                            "[{lo}, {hi}] log={log}: `{label}` for {t}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn empty_and_non_finite_data_still_render() {
        let chart = Chart {
            title: "a <b> & c".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_x: false,
            log_y: true,
            series: vec![Series {
                errors: Vec::new(),
                label: "s".into(),
                points: vec![(0.0, f64::NAN), (1.0, 0.0)],
            }],
        };
        let svg = chart.to_svg();
        assert!(svg.contains("a &lt;b&gt; &amp; c"));
        assert_eq!(svg.matches("<circle").count(), 0);
    }
}
