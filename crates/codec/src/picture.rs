//! Reconstructed pictures: planes with an edge-extended border so motion compensation never
//! needs to clamp coordinates, and the conversion from and to `codeclab_video` frames.

use codeclab_video::{Frame, Plane};

/// Border around the coded area of every luma plane; chroma planes get half. Motion vectors are
/// limited (see `inter::mv_in_bounds`) so that interpolation stays inside it.
pub const LUMA_BORDER: usize = 96;

/// One plane of 8-bit samples with a border of replicated edge samples.
#[derive(Clone, Debug)]
pub struct PaddedPlane {
    pub width: usize,
    pub height: usize,
    pub border: usize,
    pub stride: usize,
    pub data: Vec<u8>,
}

impl PaddedPlane {
    pub fn new(width: usize, height: usize, border: usize) -> Self {
        let stride = width + 2 * border;
        PaddedPlane {
            width,
            height,
            border,
            stride,
            data: vec![128; stride * (height + 2 * border)],
        }
    }

    /// Index of sample (x, y) of the coded area; x and y may reach into the border.
    #[inline]
    pub fn index(&self, x: isize, y: isize) -> usize {
        ((y + self.border as isize) as usize) * self.stride + (x + self.border as isize) as usize
    }

    #[inline]
    pub fn at(&self, x: usize, y: usize) -> u8 {
        self.data[(y + self.border) * self.stride + x + self.border]
    }

    /// Row `y` of the coded area from column `x`, `len` samples.
    #[inline]
    pub fn row(&self, x: usize, y: usize, len: usize) -> &[u8] {
        let start = (y + self.border) * self.stride + x + self.border;
        &self.data[start..start + len]
    }

    #[inline]
    pub fn row_mut(&mut self, x: usize, y: usize, len: usize) -> &mut [u8] {
        let start = (y + self.border) * self.stride + x + self.border;
        &mut self.data[start..start + len]
    }

    /// Copies a `w`x`h` block (tight rows) into the plane at (x, y).
    pub fn put_block(&mut self, x: usize, y: usize, w: usize, h: usize, block: &[u8]) {
        for (j, src) in block.chunks_exact(w).take(h).enumerate() {
            self.row_mut(x, y + j, w).copy_from_slice(src);
        }
    }

    /// Copies a `w`x`h` block at (x, y) into tight rows.
    pub fn get_block(&self, x: usize, y: usize, w: usize, h: usize, block: &mut [u8]) {
        for (j, dst) in block.chunks_exact_mut(w).take(h).enumerate() {
            dst.copy_from_slice(self.row(x, y + j, w));
        }
    }

    /// Replicates the edge samples of the coded area into the border.
    pub fn extend_edges(&mut self) {
        let (w, h, b, s) = (self.width, self.height, self.border, self.stride);
        for y in 0..h {
            let row = &mut self.data[(y + b) * s..(y + b + 1) * s];
            let left = row[b];
            let right = row[b + w - 1];
            row[..b].fill(left);
            row[b + w..].fill(right);
        }
        for y in 0..b {
            self.data.copy_within(b * s..(b + 1) * s, y * s);
            self.data
                .copy_within((b + h - 1) * s..(b + h) * s, (b + h + y) * s);
        }
    }
}

/// A 4:2:0 picture of the coded size (the display size rounded up to whole 8x8 luma blocks).
#[derive(Clone, Debug)]
pub struct Picture {
    pub planes: [PaddedPlane; 3],
}

impl Picture {
    pub fn new(coded_width: usize, coded_height: usize) -> Self {
        Picture {
            planes: [
                PaddedPlane::new(coded_width, coded_height, LUMA_BORDER),
                PaddedPlane::new(coded_width / 2, coded_height / 2, LUMA_BORDER / 2),
                PaddedPlane::new(coded_width / 2, coded_height / 2, LUMA_BORDER / 2),
            ],
        }
    }

    /// Loads a display-size frame, replicating its right and bottom edges over the coded area.
    pub fn load(&mut self, frame: &Frame<u8>) {
        for (plane, src) in self.planes.iter_mut().zip(&frame.planes) {
            let (sw, sh) = (src.width(), src.height());
            for y in 0..plane.height {
                let src_row = src.row(y.min(sh - 1));
                let w = plane.width;
                let dst = plane.row_mut(0, y, w);
                dst[..sw].copy_from_slice(src_row);
                let edge = src_row[sw - 1];
                dst[sw..].fill(edge);
            }
        }
    }

    /// The display-size frame (`width`x`height` luma) cut from the coded area.
    pub fn to_frame(&self, width: usize, height: usize) -> Frame<u8> {
        let sizes = [
            (width, height),
            (width.div_ceil(2), height.div_ceil(2)),
            (width.div_ceil(2), height.div_ceil(2)),
        ];
        let planes = self
            .planes
            .iter()
            .zip(sizes)
            .map(|(plane, (w, h))| {
                let mut data = Vec::with_capacity(w * h);
                for y in 0..h {
                    data.extend_from_slice(plane.row(0, y, w));
                }
                Plane::from_vec(w, h, data).unwrap_or_else(|| Plane::filled(w, h, 0))
            })
            .collect();
        Frame { planes }
    }

    pub fn extend_edges(&mut self) {
        for plane in &mut self.planes {
            plane.extend_edges();
        }
    }
}
