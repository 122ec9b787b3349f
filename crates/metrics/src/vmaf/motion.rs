//! The temporal feature (libvmaf 3.2's `integer_motion`): the mean absolute value of the
//! Gaussian-blurred difference between the previous and the current reference luma, and
//! `motion2`, the smaller of a frame's score and the next one's.

/// 5-tap Gaussian, Q16.
const FILTER: [i64; 5] = [3571, 16004, 26386, 16004, 3571];

/// libvmaf's ceiling on the motion score.
const MAX_MOTION: f64 = 10000.0;

#[inline]
fn mirror(index: isize, size: usize) -> usize {
    let size = size as isize;
    let m = if index < 0 {
        -index
    } else if index >= size {
        2 * size - index - 2
    } else {
        index
    };
    m.clamp(0, size - 1) as usize
}

/// Sum of absolute blurred differences between two luma planes (`width` x `height`).
pub(crate) fn sad(
    previous: &[i32],
    current: &[i32],
    width: usize,
    height: usize,
    bit_depth: u32,
) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if super::dsp::active_isa() >= super::dsp::Isa::Avx2 {
        // SAFETY: the kernels' level is AVX2 only where the CPU supports it (`dsp::Kernels::new`),
        // the only requirement of `sad_avx2`.
        return unsafe { sad_avx2(previous, current, width, height, bit_depth) };
    }
    sad_portable(previous, current, width, height, bit_depth)
}

/// The same code compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sad_avx2(
    previous: &[i32],
    current: &[i32],
    width: usize,
    height: usize,
    bit_depth: u32,
) -> u64 {
    sad_portable(previous, current, width, height, bit_depth)
}

#[inline(always)]
pub(crate) fn sad_portable(
    previous: &[i32],
    current: &[i32],
    width: usize,
    height: usize,
    bit_depth: u32,
) -> u64 {
    let round = 1i64 << (bit_depth - 1);
    let mut row = vec![0i32; width + 4];
    let mut vertical32 = vec![0i32; width];
    let mut total = 0u64;
    for i in 0..height {
        let rows: [usize; 5] = std::array::from_fn(|k| mirror(i as isize - 2 + k as isize, height));
        let mut any = 0i32;
        if bit_depth <= 15 {
            // 32-bit sums, a tap at a time over the row, which vectorise far better: the
            // differences are below 2^bit_depth in magnitude and the taps sum to 2^16, so every
            // sum stays below 2^31.
            for (k, &y) in rows.iter().enumerate() {
                let (p, c) = (
                    &previous[y * width..][..width],
                    &current[y * width..][..width],
                );
                let tap = FILTER[k] as i32;
                let sums = vertical32.iter_mut().zip(p.iter().zip(c));
                if k == 0 {
                    sums.for_each(|(s, (&p, &c))| *s = tap * (p - c));
                } else {
                    sums.for_each(|(s, (&p, &c))| *s += tap * (p - c));
                }
            }
            for (out, &sum) in row[2..width + 2].iter_mut().zip(&vertical32) {
                *out = (sum + round as i32) >> bit_depth;
                any |= *out;
            }
        } else {
            for j in 0..width {
                let mut acc = 0i64;
                for (k, &y) in rows.iter().enumerate() {
                    let idx = y * width + j;
                    acc += FILTER[k] * i64::from(previous[idx] - current[idx]);
                }
                let v = ((acc + round) >> bit_depth) as i32;
                row[j + 2] = v;
                any |= v;
            }
        }
        if any == 0 {
            continue;
        }
        for k in 1..=2usize {
            row[2 - k] = row[2 + mirror(-(k as isize), width)];
            row[width + 1 + k] = row[2 + mirror((width - 1 + k) as isize, width)];
        }
        total += u64::from(blurred_row_sad(&row[..width + 4]));
    }
    total
}

/// `Σ |(Σ_k FILTER[k]·row[j + k] + 2^15) >> 16|` over the columns `j` of a padded row of
/// vertically blurred differences (each below 2^16 in magnitude), wrapping at 32 bits as
/// libvmaf's sum. The blur's sums can exceed 32 bits, so each value is split as
/// `v = 512·hi + lo` (`lo` in 0..512) and the parts summed apart in 32 bits, which vectorises:
/// `|Σ c·hi| < 2^23`, `Σ c·lo < 2^25`, and with `t = Σ c·lo + 2^15`,
/// `(Σ c·v + 2^15) >> 16 = (Σ c·hi + (t >> 9)) >> 7` (the low 9 bits of `t` cannot carry
/// into bit 16).
#[inline(always)]
fn blurred_row_sad(row: &[i32]) -> u32 {
    let width = row.len() - 4;
    let taps = FILTER.map(|c| c as i32);
    let mut sad = 0u32;
    for j in 0..width {
        let x = &row[j..j + 5];
        let (mut hi, mut lo) = (0i32, 0i32);
        for k in 0..5 {
            hi += taps[k] * (x[k] >> 9);
            lo += taps[k] * (x[k] & 511);
        }
        let v = (hi + ((lo + 32768) >> 9)) >> 7;
        sad = sad.wrapping_add(v.unsigned_abs());
    }
    sad
}

/// The per-frame motion score from a SAD (0 for the first frame, which has no predecessor).
pub(crate) fn score(sad: u64, width: usize, height: usize) -> f64 {
    let s = sad as f64 / 256.0 / (width * height) as f64;
    if s < MAX_MOTION { s } else { MAX_MOTION }
}

/// `motion2` of frame `index` given the per-frame scores: 0 for the first frame, the smaller of
/// this and the next frame's score, this frame's score for the last one.
pub(crate) fn motion2(current: f64, next: Option<f64>, index: u64) -> f64 {
    if index == 0 {
        return 0.0;
    }
    match next {
        Some(n) if n < current => n,
        Some(_) | None => current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The split 32-bit sums give the 64-bit blur's results, extremes included.
    #[test]
    fn blurred_row_sad_matches_64_bit_sums() {
        let mut state = 5u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as i64
        };
        for width in [1, 2, 7, 8, 9, 31, 64, 101] {
            for _ in 0..50 {
                let row: Vec<i32> = (0..width + 4)
                    .map(|_| match next() % 4 {
                        0 => 65535,
                        1 => -65535,
                        _ => (next() % 131071 - 65535) as i32,
                    })
                    .collect();
                let mut want = 0u32;
                for j in 0..width {
                    let acc: i64 = (0..5).map(|k| FILTER[k] * i64::from(row[j + k])).sum();
                    want = want.wrapping_add((((acc + 32768) >> 16) as i32).unsigned_abs());
                }
                assert_eq!(blurred_row_sad(&row), want, "width {width}");
            }
        }
    }
}
