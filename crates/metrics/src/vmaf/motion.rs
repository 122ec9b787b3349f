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
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), the only requirement of
        // `sad_avx2`.
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
        let mut row_sad = 0u32;
        for j in 0..width {
            let acc: i64 = (0..5).map(|k| FILTER[k] * i64::from(row[j + k])).sum();
            let v = ((acc + 32768) >> 16) as i32;
            row_sad = row_sad.wrapping_add(v.unsigned_abs());
        }
        total += u64::from(row_sad);
    }
    total
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
