//! The three curve models behind the Bjøntegaard deltas, each integrated analytically.
//!
//! Every model receives abscissae `x` that strictly increase (the caller validated and sorted the
//! curve) and at least four points, and is only ever integrated inside `[x[0], x[n-1]]`.

use super::Interpolation;

/// A fitted curve that can be integrated exactly over a sub-interval of its support.
pub(super) enum FittedCurve {
    Hermite(HermiteSpline),
    Polynomial(CubicPolynomial),
}

impl FittedCurve {
    pub(super) fn fit(method: Interpolation, x: &[f64], y: &[f64]) -> Self {
        match method {
            Interpolation::Pchip => Self::Hermite(HermiteSpline::pchip(x, y)),
            Interpolation::Akima => Self::Hermite(HermiteSpline::akima(x, y)),
            Interpolation::Cubic => Self::Polynomial(CubicPolynomial::least_squares(x, y)),
        }
    }

    /// ∫ f(x) dx over `[from, to]`, with `from <= to` inside the fitted support.
    pub(super) fn integrate(&self, from: f64, to: f64) -> f64 {
        match self {
            Self::Hermite(spline) => spline.integrate(from, to),
            Self::Polynomial(polynomial) => polynomial.integrate(from, to),
        }
    }
}

/// A piecewise cubic that passes through every point with the given derivatives there.
pub(super) struct HermiteSpline {
    x: Vec<f64>,
    y: Vec<f64>,
    derivative: Vec<f64>,
}

/// Slopes of the chords between consecutive points.
fn chord_slopes(x: &[f64], y: &[f64]) -> Vec<f64> {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(xs, ys)| (ys[1] - ys[0]) / (xs[1] - xs[0]))
        .collect()
}

impl HermiteSpline {
    /// Fritsch–Carlson monotone cubic (PCHIP) with the derivative choices of Moler's `pchiptx`,
    /// which is what SciPy's `PchipInterpolator` (and so the `bjontegaard` package) uses.
    fn pchip(x: &[f64], y: &[f64]) -> Self {
        let n = x.len();
        let h: Vec<f64> = x.windows(2).map(|w| w[1] - w[0]).collect();
        let slope = chord_slopes(x, y);
        let mut derivative = vec![0.0; n];
        for k in 1..n - 1 {
            let (left, right) = (slope[k - 1], slope[k]);
            // A flat chord or a change of direction makes the point a local extremum: a zero
            // derivative there keeps the interpolant from overshooting.
            if sign(left) == 0 || sign(left) != sign(right) {
                continue;
            }
            // Weighted harmonic mean of the neighbouring chord slopes, weights from the spacings.
            let w_left = 2.0 * h[k] + h[k - 1];
            let w_right = h[k] + 2.0 * h[k - 1];
            derivative[k] = (w_left + w_right) / (w_left / left + w_right / right);
        }
        derivative[0] = pchip_end_derivative(h[0], h[1], slope[0], slope[1]);
        derivative[n - 1] = pchip_end_derivative(h[n - 2], h[n - 3], slope[n - 2], slope[n - 3]);
        Self {
            x: x.to_vec(),
            y: y.to_vec(),
            derivative,
        }
    }

    /// Akima's 1970 spline (the original weights, not "makima"), as SciPy's
    /// `Akima1DInterpolator` builds it.
    fn akima(x: &[f64], y: &[f64]) -> Self {
        let n = x.len();
        // Chord slopes padded with two extrapolated slopes at each end, so that every point
        // has two slopes on either side: slope of chord k sits at index k + 2.
        let mut padded = Vec::with_capacity(n + 3);
        padded.extend([0.0, 0.0]);
        padded.extend(chord_slopes(x, y));
        padded.extend([0.0, 0.0]);
        padded[1] = 2.0 * padded[2] - padded[3];
        padded[0] = 2.0 * padded[1] - padded[2];
        padded[n + 1] = 2.0 * padded[n] - padded[n - 1];
        padded[n + 2] = 2.0 * padded[n + 1] - padded[n];

        let weight_after: Vec<f64> = (0..n)
            .map(|i| (padded[i + 3] - padded[i + 2]).abs())
            .collect();
        let weight_before: Vec<f64> = (0..n).map(|i| (padded[i + 1] - padded[i]).abs()).collect();
        let largest_weight_sum = weight_after
            .iter()
            .zip(&weight_before)
            .map(|(a, b)| a + b)
            .fold(0.0, f64::max);
        // Where both weights vanish (relative to the largest sum, SciPy's 1e-9 cut-off) the
        // formula is 0/0; the mean of the two adjacent chord slopes is the natural value.
        let cutoff = 1e-9 * largest_weight_sum;
        let derivative = (0..n)
            .map(|i| {
                let (before, after) = (padded[i + 1], padded[i + 2]);
                let weight_sum = weight_after[i] + weight_before[i];
                if weight_sum > cutoff {
                    before + weight_before[i] / weight_sum * (after - before)
                } else {
                    0.5 * (before + after)
                }
            })
            .collect();
        Self {
            x: x.to_vec(),
            y: y.to_vec(),
            derivative,
        }
    }

    fn integrate(&self, from: f64, to: f64) -> f64 {
        let mut total = 0.0;
        for k in 0..self.x.len() - 1 {
            let (start, end) = (self.x[k], self.x[k + 1]);
            let lower = from.max(start);
            let upper = to.min(end);
            if upper <= lower {
                continue;
            }
            let h = end - start;
            let chord = (self.y[k + 1] - self.y[k]) / h;
            let (d0, d1) = (self.derivative[k], self.derivative[k + 1]);
            // The piece as a power series in s = x - start: y0 + d0 s + c2 s² + c3 s³.
            let c2 = (3.0 * chord - 2.0 * d0 - d1) / h;
            let c3 = (d0 + d1 - 2.0 * chord) / (h * h);
            let antiderivative =
                |s: f64| s * (self.y[k] + s * (d0 / 2.0 + s * (c2 / 3.0 + s * c3 / 4.0)));
            total += antiderivative(upper - start) - antiderivative(lower - start);
        }
        total
    }
}

/// Moler's one-sided three-point end derivative, clamped to preserve the data's shape.
fn pchip_end_derivative(h0: f64, h1: f64, slope0: f64, slope1: f64) -> f64 {
    let estimate = ((2.0 * h0 + h1) * slope0 - h0 * slope1) / (h0 + h1);
    if sign(estimate) != sign(slope0) {
        0.0
    } else if sign(slope0) != sign(slope1) && estimate.abs() > 3.0 * slope0.abs() {
        3.0 * slope0
    } else {
        estimate
    }
}

/// −1, 0 or 1; unlike `f64::signum`, zero has its own sign, as the PCHIP rules need.
fn sign(value: f64) -> i8 {
    if value > 0.0 {
        1
    } else if value < 0.0 {
        -1
    } else {
        0
    }
}

/// The least-squares cubic polynomial through the points (VCEG-M33's model), as `numpy.polyfit`
/// with degree 3 gives it; with exactly four points it interpolates them.
pub(super) struct CubicPolynomial {
    /// The fit is done in t = (x - center) / half_width, which keeps the normal equations well
    /// conditioned whatever the units of x are.
    center: f64,
    half_width: f64,
    /// Coefficients of 1, t, t², t³.
    coefficients: [f64; 4],
}

impl CubicPolynomial {
    fn least_squares(x: &[f64], y: &[f64]) -> Self {
        let (first, last) = (x[0], x[x.len() - 1]);
        let center = 0.5 * (first + last);
        let half_width = 0.5 * (last - first);
        // Normal equations (VᵀV) a = Vᵀy of the Vandermonde matrix V in t.
        let mut normal = [[0.0f64; 5]; 4];
        for (&xi, &yi) in x.iter().zip(y) {
            let t = (xi - center) / half_width;
            let powers = [1.0, t, t * t, t * t * t];
            for row in 0..4 {
                for column in 0..4 {
                    normal[row][column] += powers[row] * powers[column];
                }
                normal[row][4] += powers[row] * yi;
            }
        }
        Self {
            center,
            half_width,
            coefficients: solve_augmented_4x4(normal),
        }
    }

    fn integrate(&self, from: f64, to: f64) -> f64 {
        let [a0, a1, a2, a3] = self.coefficients;
        let antiderivative = |t: f64| t * (a0 + t * (a1 / 2.0 + t * (a2 / 3.0 + t * a3 / 4.0)));
        let t_from = (from - self.center) / self.half_width;
        let t_to = (to - self.center) / self.half_width;
        // dx = half_width · dt.
        self.half_width * (antiderivative(t_to) - antiderivative(t_from))
    }
}

/// Gaussian elimination with partial pivoting on an augmented 4×5 system. Four or more distinct
/// abscissae make the system non-singular; a numerically singular one yields non-finite
/// coefficients, which the caller rejects as a non-finite result.
fn solve_augmented_4x4(mut m: [[f64; 5]; 4]) -> [f64; 4] {
    for pivot in 0..4 {
        let best = (pivot..4)
            .max_by(|&a, &b| m[a][pivot].abs().total_cmp(&m[b][pivot].abs()))
            .unwrap_or(pivot);
        m.swap(pivot, best);
        for row in pivot + 1..4 {
            let factor = m[row][pivot] / m[pivot][pivot];
            let pivot_row = m[pivot];
            for (entry, pivot_entry) in m[row].iter_mut().zip(pivot_row).skip(pivot) {
                *entry -= factor * pivot_entry;
            }
        }
    }
    let mut solution = [0.0; 4];
    for row in (0..4).rev() {
        let known: f64 = (row + 1..4).map(|c| m[row][c] * solution[c]).sum();
        solution[row] = (m[row][4] - known) / m[row][row];
    }
    solution
}

#[cfg(test)]
mod tests {
    use super::*;

    const X: [f64; 5] = [1.0, 2.0, 4.0, 5.0, 7.5];

    fn integrate_with(method: Interpolation, y: &[f64], from: f64, to: f64) -> f64 {
        FittedCurve::fit(method, &X, y).integrate(from, to)
    }

    #[test]
    fn every_model_integrates_a_straight_line_exactly() {
        let y: Vec<f64> = X.iter().map(|x| 3.0 * x - 2.0).collect();
        // ∫ (3x − 2) dx from 1.5 to 6 = 1.5 (36 − 2.25) − 2 · 4.5.
        let exact = 1.5 * (36.0 - 2.25) - 9.0;
        for method in Interpolation::ALL {
            let integral = integrate_with(method, &y, 1.5, 6.0);
            assert!((integral - exact).abs() < 1e-12, "{method:?}: {integral}");
        }
    }

    #[test]
    fn the_cubic_fit_reproduces_a_cubic_exactly() {
        let cubic = |x: f64| 0.5 * x * x * x - x * x + 2.0;
        let y: Vec<f64> = X.iter().map(|&x| cubic(x)).collect();
        let antiderivative = |x: f64| x.powi(4) / 8.0 - x.powi(3) / 3.0 + 2.0 * x;
        let exact = antiderivative(7.0) - antiderivative(1.2);
        let integral = integrate_with(Interpolation::Cubic, &y, 1.2, 7.0);
        assert!((integral - exact).abs() < 1e-9, "{integral} vs {exact}");
    }

    #[test]
    fn hermite_pieces_pass_through_the_points() {
        // Integrals over shrinking intervals around a knot approach the value there.
        let y = [0.0, 1.0, 1.5, 3.0, 3.2];
        for method in [Interpolation::Pchip, Interpolation::Akima] {
            let width = 1e-6;
            let mean = integrate_with(method, &y, 4.0 - width, 4.0 + width) / (2.0 * width);
            assert!((mean - 1.5).abs() < 1e-5, "{method:?}: {mean}");
        }
    }

    #[test]
    fn pchip_end_derivative_follows_the_shape_rules() {
        // Regular case: the one-sided estimate itself.
        assert_eq!(pchip_end_derivative(1.0, 1.0, 2.0, 1.0), 2.5);
        // The estimate points against the first chord: flattened to zero.
        assert_eq!(pchip_end_derivative(1.0, 1.0, 1.0, 4.0), 0.0);
        // The chords change direction and the estimate is steep: clamped to three chords.
        assert_eq!(pchip_end_derivative(1.0, 3.0, 2.0, -30.0), 6.0);
        // The chords change direction but the estimate is moderate: kept.
        assert_eq!(pchip_end_derivative(1.0, 3.0, 2.0, -10.0), 5.0);
    }
}
