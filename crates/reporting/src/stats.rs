//! Small-sample statistics for replicates: the mean with its Student-t 95 % interval, and the
//! paired t-test on per-replicate differences. Student's t (not a bootstrap) because a study
//! has few replicates (3 to 10): a bootstrap interval from 3 values is too narrow, and the
//! t-interval is exact when a replicate's metric is normal about its mean, which the
//! aggregate of thousands of pixels per reconstruction makes a fair model. The t
//! distribution's CDF is the regularized incomplete beta function (Lentz's continued
//! fraction), checked against SciPy in the integration tests.

/// Two-sided level of every interval and test.
pub const ALPHA: f64 = 0.05;

/// Mean, standard deviation and interval of values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// How many values.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Sample standard deviation (n - 1); NaN for one value.
    pub sd: f64,
    /// Half-width of the 95 % t-interval, t(0.975, n - 1) sd / sqrt(n); NaN for one value.
    pub half_width: f64,
}

impl Summary {
    /// Of `values` (`None` when there are none).
    pub fn of(values: &[f64]) -> Option<Summary> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        if n == 1 {
            return Some(Summary {
                n,
                mean,
                sd: f64::NAN,
                half_width: f64::NAN,
            });
        }
        let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        let sd = (ss / (n - 1) as f64).sqrt();
        let half_width = t_quantile(1.0 - ALPHA / 2.0, (n - 1) as f64) * sd / (n as f64).sqrt();
        Some(Summary {
            n,
            mean,
            sd,
            half_width,
        })
    }

    /// The interval's ends (the mean twice for one value).
    pub fn interval(&self) -> (f64, f64) {
        if self.half_width.is_finite() {
            (self.mean - self.half_width, self.mean + self.half_width)
        } else {
            (self.mean, self.mean)
        }
    }

    /// The interval's ends, or NaN twice where there is no interval (one value), as the CSV
    /// files write an interval (empty cells).
    pub fn interval_or_nan(&self) -> (f64, f64) {
        if self.half_width.is_finite() {
            self.interval()
        } else {
            (f64::NAN, f64::NAN)
        }
    }

    /// Whether this interval and `other` are disjoint (never for a single value: it has none).
    pub fn separated_from(&self, other: &Summary) -> bool {
        if !(self.half_width.is_finite() && other.half_width.is_finite()) {
            return false;
        }
        let (a, b) = (self.interval(), other.interval());
        a.1 < b.0 || b.1 < a.0
    }
}

/// A paired t-test of `a - b` over replicates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Paired {
    /// The differences' summary (mean difference and its 95 % interval).
    pub diff: Summary,
    /// The t statistic (mean / (sd / sqrt n)); infinite when every difference is the same
    /// non-zero value, NaN for fewer than two pairs.
    pub t: f64,
    /// Two-sided p-value; NaN for fewer than two pairs.
    pub p: f64,
}

impl Paired {
    /// Of the pairs (a_i, b_i); `None` without pairs.
    pub fn of(a: &[f64], b: &[f64]) -> Option<Paired> {
        let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
        let diff = Summary::of(&d)?;
        if diff.n < 2 {
            return Some(Paired {
                diff,
                t: f64::NAN,
                p: f64::NAN,
            });
        }
        let se = diff.sd / (diff.n as f64).sqrt();
        let (t, p) = if se > 0.0 {
            let t = diff.mean / se;
            (t, 2.0 * t_sf(t.abs(), (diff.n - 1) as f64))
        } else if diff.mean == 0.0 {
            (0.0, 1.0)
        } else {
            (diff.mean.signum() * f64::INFINITY, 0.0)
        };
        Some(Paired { diff, t, p })
    }

    /// Significant at [`ALPHA`].
    pub fn significant(&self) -> bool {
        self.p < ALPHA
    }
}

/// P(T > t) for Student's t with `df` degrees of freedom, t >= 0.
pub fn t_sf(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return 0.0;
    }
    0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// The `p` quantile of Student's t with `df` degrees of freedom (0.5 < p < 1), by bisection
/// of [`t_sf`] to 1e-12.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    let tail = 1.0 - p;
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while t_sf(hi, df) > tail {
        hi *= 2.0;
        if hi > 1e12 {
            return f64::INFINITY;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_sf(mid, df) > tail {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 * hi.max(1.0) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The regularized incomplete beta function I_x(a, b).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    // The continued fraction converges fast for x < (a + 1) / (a + b + 2); else by symmetry.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// The incomplete beta's continued fraction, by the modified Lentz method.
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    // One Lentz step: the fraction's next coefficient folded into c and d; returns their
    // product, the factor h grows by.
    let mut step = |aa: f64| {
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        d * c
    };
    for m in 1..=300 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        h *= step(m * (b - m) * x / ((qam + m2) * (a + m2)));
        let del = step(-(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)));
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: about 1e-15 relative).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (k, c) in C.iter().enumerate().skip(1) {
        sum += c / (x + k as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printed tables' values (Student's t 0.975 quantiles), to the table's 3 decimals.
    #[test]
    fn t_quantiles_match_the_printed_table() {
        for (df, t) in [
            (1.0, 12.706),
            (2.0, 4.303),
            (4.0, 2.776),
            (9.0, 2.262),
            (30.0, 2.042),
        ] {
            assert!((t_quantile(0.975, df) - t).abs() < 6e-4, "df {df}");
        }
        // df = 1 is Cauchy: P(T > 1) = 1/4 exactly.
        assert!((t_sf(1.0, 1.0) - 0.25).abs() < 1e-14);
    }

    #[test]
    fn paired_test_edges() {
        let same = Paired::of(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((same.t, same.p), (0.0, 1.0));
        let shifted = Paired::of(&[2.0, 3.0, 4.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!(shifted.significant() && shifted.t.is_infinite());
        let one = Paired::of(&[2.0], &[1.0]).unwrap();
        assert!(one.p.is_nan() && !one.significant());
        assert!(Paired::of(&[], &[]).is_none());
        let s = Summary::of(&[0.5]).unwrap();
        assert!(!s.separated_from(&Summary::of(&[0.9]).unwrap()));
    }
}
