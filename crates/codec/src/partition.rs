//! Block geometry: 64x64 superblocks split by a quadtree into coding units of 8x8 to 64x64, the
//! per-8x8 record of what was coded where, and which neighbours are already decoded.

use crate::inter::mvpred::Motion;

pub const SB_LOG2: u32 = 6;
pub const SB_SIZE: usize = 1 << SB_LOG2;
/// Side info is kept per 8x8 luma unit, the smallest coding unit.
pub const UNIT_LOG2: u32 = 3;
pub const MIN_CU_LOG2: u32 = 3;
/// Largest transform; a 64x64 coding unit carries four 32x32 luma transforms.
pub const MAX_TX_LOG2: u32 = 5;

/// What the decoder knows about one 8x8 luma unit once its coding unit is decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnitInfo {
    pub cu_log2: u8,
    pub intra: bool,
    pub skip: bool,
    pub luma_mode: u8,
    pub motion: Motion,
    /// QP of the coding unit (deblocking strength, QP prediction).
    pub qp: u8,
    /// The luma transform covering this unit has coefficients (deblocking strength).
    pub luma_coded: bool,
    /// log2 of the side of the luma transform covering this unit (its edges are deblocked).
    pub tx_log2: u8,
}

/// Per-unit side info of the picture being coded, with the decoding-order availability rule.
#[derive(Clone, Debug)]
pub struct UnitGrid {
    pub cols: usize,
    pub rows: usize,
    pub sb_cols: usize,
    pub units: Vec<UnitInfo>,
}

/// Interleaves the bits of x and y: the position of a unit in the quadtree's z-order.
#[inline]
fn morton(x: usize, y: usize) -> usize {
    let mut z = 0;
    for bit in 0..(SB_LOG2 - UNIT_LOG2) {
        z |= ((x >> bit) & 1) << (2 * bit);
        z |= ((y >> bit) & 1) << (2 * bit + 1);
    }
    z
}

impl UnitGrid {
    pub fn new(coded_width: usize, coded_height: usize) -> Self {
        let cols = coded_width >> UNIT_LOG2;
        let rows = coded_height >> UNIT_LOG2;
        UnitGrid {
            cols,
            rows,
            sb_cols: coded_width.div_ceil(SB_SIZE),
            units: vec![UnitInfo::default(); cols * rows],
        }
    }

    #[inline]
    pub fn get(&self, ux: usize, uy: usize) -> &UnitInfo {
        &self.units[uy * self.cols + ux]
    }

    /// Records `info` over a `size`-unit square at (ux, uy).
    pub fn fill(&mut self, ux: usize, uy: usize, size_units: usize, info: UnitInfo) {
        for y in uy..(uy + size_units).min(self.rows) {
            let row = y * self.cols;
            for x in ux..(ux + size_units).min(self.cols) {
                self.units[row + x] = info;
            }
        }
    }

    /// Order in which a unit is decoded: superblocks in raster order, z-order inside.
    #[inline]
    fn decode_order(&self, ux: usize, uy: usize) -> (usize, usize) {
        let per_sb = 1 << (SB_LOG2 - UNIT_LOG2);
        let sb = (uy / per_sb) * self.sb_cols + ux / per_sb;
        (sb, morton(ux % per_sb, uy % per_sb))
    }

    /// The unit at (ux, uy) (unit coordinates, possibly negative) is inside the picture and was
    /// decoded before the coding unit whose top-left unit is (cx, cy).
    #[inline]
    pub fn available(&self, ux: isize, uy: isize, cx: usize, cy: usize) -> bool {
        if ux < 0 || uy < 0 || ux as usize >= self.cols || uy as usize >= self.rows {
            return false;
        }
        self.decode_order(ux as usize, uy as usize) < self.decode_order(cx, cy)
    }

    /// The unit's info when it is available to the coding unit at (cx, cy).
    #[inline]
    pub fn neighbour(&self, ux: isize, uy: isize, cx: usize, cy: usize) -> Option<&UnitInfo> {
        self.available(ux, uy, cx, cy)
            .then(|| self.get(ux as usize, uy as usize))
    }

    pub fn copy_region(&self, ux: usize, uy: usize, size_units: usize) -> Vec<UnitInfo> {
        let mut saved = Vec::with_capacity(size_units * size_units);
        for y in uy..(uy + size_units).min(self.rows) {
            for x in ux..(ux + size_units).min(self.cols) {
                saved.push(self.units[y * self.cols + x]);
            }
        }
        saved
    }

    pub fn restore_region(&mut self, ux: usize, uy: usize, size_units: usize, saved: &[UnitInfo]) {
        let mut it = saved.iter();
        for y in uy..(uy + size_units).min(self.rows) {
            for x in ux..(ux + size_units).min(self.cols) {
                if let Some(info) = it.next() {
                    self.units[y * self.cols + x] = *info;
                }
            }
        }
    }
}

/// A coding unit at (x, y) of side `1 << log2` lies wholly inside the coded area; when it does
/// not, the split is implied and not coded.
#[inline]
pub fn inside(x: usize, y: usize, log2: u32, coded_width: usize, coded_height: usize) -> bool {
    x + (1 << log2) <= coded_width && y + (1 << log2) <= coded_height
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_follows_z_order() {
        let grid = UnitGrid::new(128, 128);
        // Inside the first superblock: unit (1,0) precedes (0,1), which precedes (1,1).
        assert!(grid.available(1, 0, 0, 1));
        assert!(!grid.available(0, 1, 1, 0));
        // The above-right 16x16 block of the bottom-right 16x16 quadrant is not yet decoded.
        assert!(!grid.available(4, 1, 2, 2));
        assert!(grid.available(2, 1, 0, 2));
        // The superblock row above is available, including to the right.
        assert!(grid.available(9, 7, 0, 8));
        // The superblock to the right is not.
        assert!(!grid.available(8, 0, 7, 7));
        assert!(!grid.available(-1, 0, 0, 0));
    }
}
