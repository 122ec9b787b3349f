//! The references of 32-bit dead-zone quantisation and of the scans over its levels.

/// `levels[i] = ±min((|coeffs[i]|·scale + offset) >> shift, max_level)` with the sign of the
/// coefficient, over the shorter of the two slices, in 32-bit unsigned arithmetic (the caller
/// keeps `|c|·scale + offset` within 32 bits); returns the number of nonzero levels.
pub fn quantize(
    coeffs: &[i32],
    levels: &mut [i32],
    scale: u32,
    offset: u32,
    shift: u32,
    max_level: u32,
) -> usize {
    let mut nonzero = 0;
    for (level, &c) in levels.iter_mut().zip(coeffs) {
        let magnitude = ((c.unsigned_abs() * scale + offset) >> shift).min(max_level) as i32;
        nonzero += usize::from(magnitude != 0);
        *level = if c < 0 { -magnitude } else { magnitude };
    }
    nonzero
}

/// `coeffs[i] = clamp((clamp(levels[i], -most, most)·scale + 2^(shift - 1)) >> shift, -limit,
/// limit - 1)` over the shorter of the two slices; `most` keeps every product within 32 bits.
pub fn dequantize(
    levels: &[i32],
    coeffs: &mut [i32],
    (scale, shift): (i32, u32),
    most: i32,
    limit: i32,
) {
    let round = 1i32 << (shift - 1);
    for (c, &level) in coeffs.iter_mut().zip(levels) {
        let product = level.clamp(-most, most) * scale;
        *c = ((product + round) >> shift).clamp(-limit, limit - 1);
    }
}

/// The largest `|c|` of `coeffs` (0 when empty), as an unsigned value so that `i32::MIN` has
/// one.
pub fn largest_magnitude(coeffs: &[i32]) -> u32 {
    coeffs.iter().map(|c| c.unsigned_abs()).max().unwrap_or(0)
}

/// The largest `index_of[k]` of a nonzero `levels[k]` over the shorter of the two slices, -1
/// when every level is zero: with the inverse of a coefficient scan, the scan index of the last
/// nonzero level.
pub fn last_nonzero_index(levels: &[i32], index_of: &[u16]) -> i32 {
    levels
        .iter()
        .zip(index_of)
        .filter(|&(&level, _)| level != 0)
        .map(|(_, &index)| i32::from(index))
        .max()
        .unwrap_or(-1)
}
