//! Reference kernels of VIF's separable Gaussian filters (libvmaf's `integer_vif`): the
//! vertical pass of one output row and the horizontal pass over a row of vertical results
//! (columns in blocks whose accumulators live on the stack), and the statistic of a filtered
//! row: variances, gain, and the log2 sums that VIF's ratio is made of.

use std::ops::Range;
use std::sync::OnceLock;

/// The noise variance of the VIF model, in the Q16 units of the variances.
pub(crate) const SIGMA_NSQ: i32 = 65536 << 1;

/// Entries of the log2 table: one past the 16-bit indices, so that a 32-bit gather at any index
/// stays inside.
pub(crate) const LOG2_TABLE_LEN: usize = 65537;
pub(crate) type Log2Table = [u16; LOG2_TABLE_LEN];

/// `round(log2(i) * 2048)` for `i` in 32767..65536, computed in single precision like libvmaf.
pub(crate) fn log2_table() -> &'static Log2Table {
    static TABLE: OnceLock<Box<Log2Table>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = Box::new([0u16; LOG2_TABLE_LEN]);
        for (i, entry) in table[..65536].iter_mut().enumerate().skip(32767) {
            *entry = ((i as f32).log2() * 2048.0).round() as u16;
        }
        table
    })
}

/// log2(x) in Q11 from the 16 most significant bits; meaningful for `x >= 2^17`, and in bounds
/// for any `x` (the index is masked to 16 bits).
#[inline]
pub(crate) fn log2_32(table: &Log2Table, x: u32) -> i64 {
    let k = 16i32 - x.leading_zeros() as i32;
    let k = k.max(0) as u32;
    i64::from(table[(x >> k) as usize & 0xffff]) + 2048 * i64::from(k)
}

#[inline]
pub(crate) fn log2_64(table: &Log2Table, x: u64) -> i64 {
    let k = 48i32 - x.leading_zeros() as i32;
    let k = k.max(0) as u32;
    i64::from(table[(x >> k) as usize & 0xffff]) + 2048 * i64::from(k)
}

/// The integer accumulators of one scale's statistic, summed over pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Accumulators {
    pub num_log: i64,
    pub den_log: i64,
    pub num_non_log: i64,
    pub den_non_log: i64,
}

/// The gain `g = sigma12 / sigma1_sq` (before limiting) and the distortion variance `sv_sq`
/// of a pixel, in libvmaf's double precision; meaningful only where the accumulation uses them.
#[inline(always)]
pub(crate) fn gain(sigma1_sq: i32, sigma2_sq: i32, sigma12: i32) -> (f64, i32) {
    let eps = 65536.0 * 1.0e-10;
    let g0 = f64::from(sigma12) / (f64::from(sigma1_sq) + eps);
    let sv_sq = ((f64::from(sigma2_sq) - g0 * f64::from(sigma12)) as i32).max(0);
    (g0, sv_sq)
}

/// Variances and covariance (Q16) from the filtered means (sums of Q16-weighted means) and
/// second moments.
#[inline(always)]
pub(crate) fn sigmas(mu1: u32, mu2: u32, xx: u32, yy: u32, xy: u32) -> (i32, i32, i32) {
    let mu1_sq = ((u64::from(mu1) * u64::from(mu1) + 0x8000_0000) >> 32) as u32;
    let mu2_sq = ((u64::from(mu2) * u64::from(mu2) + 0x8000_0000) >> 32) as u32;
    let mu1_mu2 = ((u64::from(mu1) * u64::from(mu2) + 0x8000_0000) >> 32) as u32;
    (
        xx.wrapping_sub(mu1_sq) as i32,
        (yy.wrapping_sub(mu2_sq) as i32).max(0),
        xy.wrapping_sub(mu1_mu2) as i32,
    )
}

/// `add_pixel_with` (of the VIF module) for one gain limit, without data-dependent branches: the terms of every
/// case are computed and the applicable ones selected. The table indices are masked to 16 bits,
/// so the look-ups of the discarded cases stay in bounds whatever their inputs.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_pixel_branchless(
    acc: &mut Accumulators,
    table: &Log2Table,
    gain_limit: f64,
    sigma1_sq: i32,
    sigma2_sq: i32,
    sigma12: i32,
    g0: f64,
    sv_sq: i32,
) {
    let is_log = sigma1_sq >= SIGMA_NSQ;
    let has_gain = is_log & (sigma12 > 0) & (sigma2_sq > 0);
    let den = log2_32(table, SIGMA_NSQ.wrapping_add(sigma1_sq) as u32) - 2048 * 17;
    let numer1 = (sv_sq as u32).wrapping_add(SIGMA_NSQ as u32);
    let g = if g0 < gain_limit { g0 } else { gain_limit };
    let numer1_tmp = ((g * g * f64::from(sigma1_sq)) as i64).wrapping_add(i64::from(numer1));
    let num = log2_64(table, numer1_tmp as u64) - log2_64(table, u64::from(numer1));
    acc.num_log += if has_gain { num } else { 0 };
    acc.den_log += if is_log { den } else { 0 };
    acc.num_non_log += if is_log { 0 } else { i64::from(sigma2_sq) };
    acc.den_non_log += i64::from(!is_log);
}

/// Columns per block of accumulators.
const BLOCK: usize = 64;

/// The reference and distorted samples of one scale, rows `width` apart.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VifPlanes<'a> {
    pub reference: &'a [u16],
    pub distorted: &'a [u16],
    pub width: usize,
}

/// What the vertical pass of one output row reads and how it rounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VerticalPass<'a> {
    /// The filter taps (odd count, each below 2^16; below 2^15 with `samples_8bit`).
    pub filter: &'a [u32],
    /// The picture row each tap reads (mirrored at the edges by the caller).
    pub rows: &'a [usize],
    /// Rounded right shift of the means (at least 1).
    pub shift_mu: u32,
    /// Rounded right shift of the second moments (0: none).
    pub shift_sq: u32,
    /// Every sample is below 256 (8-bit pictures at scale 0), so that the kernels may keep
    /// every sum in 32 bits.
    pub samples_8bit: bool,
}

/// One row of the five filtered statistics: the means of the reference and distorted samples
/// (`mu1`, `mu2`), their second moments (`xx`, `yy`) and their product (`xy`).
#[derive(Clone, Debug, Default)]
pub(crate) struct RowMoments {
    pub mu1: Vec<u32>,
    pub mu2: Vec<u32>,
    pub xx: Vec<u32>,
    pub yy: Vec<u32>,
    pub xy: Vec<u32>,
}

impl RowMoments {
    pub fn zeroed(len: usize) -> Self {
        RowMoments {
            mu1: vec![0; len],
            mu2: vec![0; len],
            xx: vec![0; len],
            yy: vec![0; len],
            xy: vec![0; len],
        }
    }

    /// The length of the shortest of the five rows.
    pub fn len(&self) -> usize {
        self.fields().iter().map(|f| f.len()).min().unwrap_or(0)
    }

    pub fn fields(&self) -> [&[u32]; 5] {
        [&self.mu1, &self.mu2, &self.xx, &self.yy, &self.xy]
    }

    pub fn fields_mut(&mut self) -> [&mut Vec<u32>; 5] {
        [
            &mut self.mu1,
            &mut self.mu2,
            &mut self.xx,
            &mut self.yy,
            &mut self.xy,
        ]
    }
}

/// Planes of a [`VerticalRow`]: the two means, then the high and low 16-bit halves of each
/// second moment.
pub(crate) const MU1: usize = 0;
pub(crate) const MU2: usize = 1;
pub(crate) const XX_HI: usize = 2;
pub(crate) const XX_LO: usize = 3;
pub(crate) const YY_HI: usize = 4;
pub(crate) const YY_LO: usize = 5;
pub(crate) const XY_HI: usize = 6;
pub(crate) const XY_LO: usize = 7;

/// The vertical pass's results for one row, as the horizontal pass reads them: the means fit 16
/// bits and the second moments 32 (the shifts of every scale see to that), so each is kept as
/// 16-bit values, the second moments split into high and low halves. Every 16-bit value `u` is
/// stored as `u - 2^15` (`u ^ 0x8000` read as `i16`), the range of a signed 16-bit multiply.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct VerticalRow {
    pub planes: [Vec<i16>; 8],
}

/// `u` in a [`VerticalRow`].
#[inline(always)]
pub(crate) fn bias16(u: u32) -> i16 {
    debug_assert!(u < 1 << 16);
    (u as u16 ^ 0x8000) as i16
}

/// The value of a [`VerticalRow`] entry.
#[inline(always)]
pub(crate) fn unbias16(s: i16) -> u32 {
    u32::from(s as u16 ^ 0x8000)
}

impl VerticalRow {
    pub fn zeroed(len: usize) -> Self {
        VerticalRow {
            planes: std::array::from_fn(|_| vec![0; len]),
        }
    }

    /// The length of the shortest plane.
    pub fn len(&self) -> usize {
        self.planes.iter().map(Vec::len).min().unwrap_or(0)
    }

    /// The mean or second moment of column `i`: `field` 0 to 4 as in [`RowMoments::fields`].
    #[inline(always)]
    pub fn value(&self, field: usize, i: usize) -> u32 {
        match field {
            0 | 1 => unbias16(self.planes[field][i]),
            _ => {
                let hi = 2 * field - 2;
                (unbias16(self.planes[hi][i]) << 16) | unbias16(self.planes[hi + 1][i])
            }
        }
    }

    /// Stores the five values of column `i` (the means below 2^16).
    #[inline(always)]
    pub fn set(&mut self, i: usize, values: [u32; 5]) {
        for (field, v) in values.into_iter().enumerate() {
            if field < 2 {
                self.planes[field][i] = bias16(v);
            } else {
                let hi = 2 * field - 2;
                self.planes[hi][i] = bias16(v >> 16);
                self.planes[hi + 1][i] = bias16(v & 0xffff);
            }
        }
    }
}

#[inline]
pub(crate) fn round_shift(value: u64, shift: u32) -> u64 {
    if shift == 0 {
        value
    } else {
        (value + (1u64 << (shift - 1))) >> shift
    }
}

/// The vertical pass: for each column, `Σ c·x` of both pictures and `Σ c·x·x`, `Σ c·y·y`,
/// `Σ c·x·y` over the taps' rows, each rounded and shifted as `pass` says, into `out` at
/// `offset + column`. The means come below 2^16 and the second moments below 2^32 for the
/// samples and shifts of every scale (taps summing to 2^16, samples of `b` bits shifted by `b`
/// and `2b - 16`, or 16-bit samples shifted by 16).
///
/// # Safety
/// None beyond the preconditions the table's wrapper asserts (this is plain Rust).
pub(super) unsafe fn vertical(
    planes: VifPlanes<'_>,
    pass: VerticalPass<'_>,
    out: &mut VerticalRow,
    offset: usize,
    columns: Range<usize>,
) {
    let width = planes.width;
    let mut start = columns.start;
    while start < columns.end {
        let n = BLOCK.min(columns.end - start);
        let (mut m1, mut m2) = ([0u64; BLOCK], [0u64; BLOCK]);
        let (mut xx, mut yy, mut xy) = ([0u64; BLOCK], [0u64; BLOCK], [0u64; BLOCK]);
        for (&c, &row) in pass.filter.iter().zip(pass.rows) {
            let at = row * width + start;
            let r = &planes.reference[at..at + n];
            let d = &planes.distorted[at..at + n];
            let c = u64::from(c);
            for i in 0..n {
                let (x, y) = (u64::from(r[i]), u64::from(d[i]));
                m1[i] += c * x;
                m2[i] += c * y;
                xx[i] += c * x * x;
                yy[i] += c * y * y;
                xy[i] += c * x * y;
            }
        }
        let at = offset + start;
        for i in 0..n {
            let values = [
                round_shift(m1[i], pass.shift_mu),
                round_shift(m2[i], pass.shift_mu),
                round_shift(xx[i], pass.shift_sq),
                round_shift(yy[i], pass.shift_sq),
                round_shift(xy[i], pass.shift_sq),
            ];
            out.set(at + i, values.map(|v| v as u32));
        }
        start += n;
    }
}

/// The horizontal pass: `Σ c·v` over the taps, the means wrapping at 32 bits as libvmaf's, the
/// second moments `(Σ c·v + 2^15) >> 16`, truncated to 32 bits.
///
/// # Safety
/// None beyond the preconditions the table's wrapper asserts (this is plain Rust).
pub(super) unsafe fn horizontal(
    input: &VerticalRow,
    filter: &[u32],
    out: &mut RowMoments,
    columns: Range<usize>,
) {
    let mut start = columns.start;
    while start < columns.end {
        let n = BLOCK.min(columns.end - start);
        let (mut m1, mut m2) = ([0u32; BLOCK], [0u32; BLOCK]);
        let (mut xx, mut yy, mut xy) = ([0u64; BLOCK], [0u64; BLOCK], [0u64; BLOCK]);
        for (k, &c) in filter.iter().enumerate() {
            let at = start + k;
            let c64 = u64::from(c);
            for i in 0..n {
                let v = |field| input.value(field, at + i);
                m1[i] = m1[i].wrapping_add(c.wrapping_mul(v(0)));
                m2[i] = m2[i].wrapping_add(c.wrapping_mul(v(1)));
                xx[i] += c64 * u64::from(v(2));
                yy[i] += c64 * u64::from(v(3));
                xy[i] += c64 * u64::from(v(4));
            }
        }
        out.mu1[start..start + n].copy_from_slice(&m1[..n]);
        out.mu2[start..start + n].copy_from_slice(&m2[..n]);
        for i in 0..n {
            out.xx[start + i] = round_shift(xx[i], 16) as u32;
            out.yy[start + i] = round_shift(yy[i], 16) as u32;
            out.xy[start + i] = round_shift(xy[i], 16) as u32;
        }
        start += n;
    }
}

/// The statistic of `columns` of a filtered row for one gain limit, added to `acc`.
///
/// # Safety
/// None beyond the preconditions the table's wrapper asserts (this is plain Rust).
pub(super) unsafe fn statistic_row(
    moments: &RowMoments,
    columns: Range<usize>,
    gain_limit: f64,
    acc: &mut Accumulators,
) {
    let table = log2_table();
    let mut a = *acc;
    for j in columns {
        let (s1, s2, s12) = sigmas(
            moments.mu1[j],
            moments.mu2[j],
            moments.xx[j],
            moments.yy[j],
            moments.xy[j],
        );
        let (g0, sv) = gain(s1, s2, s12);
        add_pixel_branchless(&mut a, table, gain_limit, s1, s2, s12, g0, sv);
    }
    *acc = a;
}
