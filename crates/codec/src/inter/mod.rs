//! Inter prediction: motion vectors, sub-sample interpolation, motion-vector prediction and
//! merge candidates, and the encoder's motion search.

pub mod interp;
pub mod mvpred;
pub mod search;

use crate::picture::LUMA_BORDER;

/// A motion vector in quarter luma samples (eighth chroma samples in 4:2:0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Mv {
    pub x: i32,
    pub y: i32,
}

impl Mv {
    pub const ZERO: Mv = Mv { x: 0, y: 0 };

    pub const fn new(x: i32, y: i32) -> Mv {
        Mv { x, y }
    }
}

/// Margin kept between a referenced block and the outer edge of the border, so the 8-tap luma
/// and 4-tap chroma filters never read outside the padded planes.
const BORDER_MARGIN: i64 = 16;

/// True when the `w`×`h` luma block at (x, y) displaced by `mv` stays inside the reference
/// border. The encoder searches only such vectors; the decoder rejects any other.
pub fn mv_in_bounds(x: usize, y: usize, w: usize, h: usize, mv: Mv, coded: (usize, usize)) -> bool {
    let limit = LUMA_BORDER as i64 - BORDER_MARGIN;
    let ix = x as i64 + (i64::from(mv.x) >> 2);
    let iy = y as i64 + (i64::from(mv.y) >> 2);
    ix >= -limit
        && iy >= -limit
        && ix + w as i64 <= coded.0 as i64 + limit
        && iy + h as i64 <= coded.1 as i64 + limit
}

/// `mv` moved the least that keeps the `w`×`h` block at (x, y) inside the reference border:
/// the vectors `mv_in_bounds` accepts form a rectangle.
pub fn clamp_mv(x: usize, y: usize, w: usize, h: usize, mv: Mv, coded: (usize, usize)) -> Mv {
    let limit = LUMA_BORDER as i64 - BORDER_MARGIN;
    // Whole-sample offsets of -limit - pos to extent + limit - len - pos, at any fraction.
    let clamp = |v: i32, pos: usize, len: usize, extent: usize| {
        let low = -4 * (limit + pos as i64);
        let high = 4 * (extent as i64 + limit - len as i64 - pos as i64) + 3;
        i64::from(v).clamp(low, high) as i32
    };
    Mv::new(clamp(mv.x, x, w, coded.0), clamp(mv.y, y, h, coded.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamped_vectors_are_the_nearest_in_bounds() {
        let coded = (64, 48);
        for (x, y, n) in [(0, 0, 8), (56, 40, 8), (16, 16, 32)] {
            for mv in [Mv::new(-9999, 9999), Mv::new(3, -5), Mv::new(9999, -9999)] {
                let clamped = clamp_mv(x, y, n, n, mv, coded);
                assert!(
                    mv_in_bounds(x, y, n, n, clamped, coded),
                    "{mv:?} {clamped:?}"
                );
                if mv_in_bounds(x, y, n, n, mv, coded) {
                    assert_eq!(clamped, mv);
                }
                // One quarter sample further out is out of bounds.
                let out = |v: i32| v + v.signum();
                if clamped != mv {
                    let further = Mv::new(out(clamped.x), out(clamped.y));
                    assert!(!mv_in_bounds(x, y, n, n, further, coded), "{further:?}");
                }
            }
        }
    }
}
