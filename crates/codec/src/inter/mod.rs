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
