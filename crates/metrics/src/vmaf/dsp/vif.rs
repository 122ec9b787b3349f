//! Reference kernels of VIF's separable Gaussian filters (libvmaf's `integer_vif`): the
//! vertical pass of one output row and the horizontal pass over a row of vertical results.
//! Columns are processed in blocks whose accumulators live on the stack.

use std::ops::Range;

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

#[inline]
fn round_shift(value: u64, shift: u32) -> u64 {
    if shift == 0 {
        value
    } else {
        (value + (1u64 << (shift - 1))) >> shift
    }
}

/// The vertical pass: for each column, `Σ c·x` of both pictures and `Σ c·x·x`, `Σ c·y·y`,
/// `Σ c·x·y` over the taps' rows, each rounded and shifted as `pass` says.
///
/// # Safety
/// None beyond the preconditions the table's wrapper asserts (this is plain Rust).
pub(super) unsafe fn vertical(
    planes: VifPlanes<'_>,
    pass: VerticalPass<'_>,
    out: &mut RowMoments,
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
            out.mu1[at + i] = round_shift(m1[i], pass.shift_mu) as u32;
            out.mu2[at + i] = round_shift(m2[i], pass.shift_mu) as u32;
            out.xx[at + i] = round_shift(xx[i], pass.shift_sq) as u32;
            out.yy[at + i] = round_shift(yy[i], pass.shift_sq) as u32;
            out.xy[at + i] = round_shift(xy[i], pass.shift_sq) as u32;
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
    input: &RowMoments,
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
                m1[i] = m1[i].wrapping_add(c.wrapping_mul(input.mu1[at + i]));
                m2[i] = m2[i].wrapping_add(c.wrapping_mul(input.mu2[at + i]));
                xx[i] += c64 * u64::from(input.xx[at + i]);
                yy[i] += c64 * u64::from(input.yy[at + i]);
                xy[i] += c64 * u64::from(input.xy[at + i]);
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
