//! Reconstructed pictures: planes with an edge-extended border so motion compensation never
//! needs to clamp coordinates, and the conversion from and to `codeclab_video` frames.
//!
//! Samples are `u8` for 8-bit video and `u16` above; the code that touches them is generic over
//! [`Pixel`] so each depth gets its own monomorphised copy, and the bit depth itself travels as a
//! value (clip limits, mid-grey, quantiser offset).

use crate::dsp::Kernels;
use codeclab_video::{Frame, Pixel, Plane};

/// Border around the coded area of every luma plane; chroma planes get half. Motion vectors are
/// limited (see `inter::mv_in_bounds`) so that interpolation stays inside it.
pub const LUMA_BORDER: usize = 96;

/// Bit depths the codec codes.
pub const BIT_DEPTHS: std::ops::RangeInclusive<u8> = 8..=12;

/// Largest sample value at `bit_depth`.
#[inline]
pub fn max_value(bit_depth: u32) -> i32 {
    (1 << bit_depth) - 1
}

/// Mid-grey at `bit_depth`.
#[inline]
pub fn mid_grey(bit_depth: u32) -> u32 {
    1 << (bit_depth - 1)
}

/// QP offset of the quantiser at `bit_depth`: samples 2^(bd-8) times larger need a step that
/// much larger for the same relative quality, and the step doubles every 6 QP (as in HEVC).
#[inline]
pub fn qp_offset(bit_depth: u32) -> u8 {
    (6 * (bit_depth - 8)) as u8
}

/// What the codec's loops need of a sample type beyond [`Pixel`].
pub trait Sample: Pixel {
    /// |self - other|, computed at the type's own width so 8-bit loops stay on bytes.
    fn sample_diff(self, other: Self) -> u32;

    #[inline]
    fn to_i32(self) -> i32 {
        self.to_u32() as i32
    }

    /// From a value already clipped to the depth's range.
    #[inline]
    fn from_i32(v: i32) -> Self {
        Self::from_u32(v as u32)
    }

    /// `v` clipped to 0..=`max`, the largest value of the depth.
    fn clip(v: i32, max: i32) -> Self;

    /// The rounded average of two samples.
    fn average(self, other: Self) -> Self;

    /// The DSP kernels the codec runs on this sample type.
    fn kernels() -> &'static Kernels<Self>;
}

impl Sample for u8 {
    #[inline]
    fn sample_diff(self, other: Self) -> u32 {
        u32::from(self.abs_diff(other))
    }

    /// Bytes only ever hold 8-bit video, so the limit is the constant 255, which lets the
    /// compiler use saturating byte packs.
    #[inline]
    fn clip(v: i32, _max: i32) -> Self {
        v.clamp(0, 255) as u8
    }

    #[inline]
    fn average(self, other: Self) -> Self {
        ((u16::from(self) + u16::from(other) + 1) >> 1) as u8
    }

    #[inline]
    fn kernels() -> &'static Kernels<Self> {
        crate::dsp::kernels_u8()
    }
}

impl Sample for u16 {
    #[inline]
    fn sample_diff(self, other: Self) -> u32 {
        u32::from(self.abs_diff(other))
    }

    #[inline]
    fn clip(v: i32, max: i32) -> Self {
        v.clamp(0, max) as u16
    }

    #[inline]
    fn average(self, other: Self) -> Self {
        ((u32::from(self) + u32::from(other) + 1) >> 1) as u16
    }

    #[inline]
    fn kernels() -> &'static Kernels<Self> {
        crate::dsp::kernels_u16()
    }
}

/// One plane of samples with a border of replicated edge samples.
#[derive(Clone, Debug)]
pub struct PaddedPlane<T: Sample> {
    pub width: usize,
    pub height: usize,
    pub border: usize,
    pub stride: usize,
    pub bit_depth: u32,
    pub data: Vec<T>,
}

impl<T: Sample> PaddedPlane<T> {
    pub fn new(width: usize, height: usize, border: usize, bit_depth: u32) -> Self {
        let grey = T::from_u32(mid_grey(bit_depth));
        Self::filled(width, height, border, bit_depth, grey)
    }

    fn filled(width: usize, height: usize, border: usize, bit_depth: u32, value: T) -> Self {
        let stride = width + 2 * border;
        PaddedPlane {
            width,
            height,
            border,
            stride,
            bit_depth,
            data: vec![value; stride * (height + 2 * border)],
        }
    }

    /// Largest sample value of the plane's depth.
    #[inline]
    pub fn max_value(&self) -> i32 {
        max_value(self.bit_depth)
    }

    /// Index of sample (x, y) of the coded area; x and y may reach into the border.
    #[inline]
    pub fn index(&self, x: isize, y: isize) -> usize {
        ((y + self.border as isize) as usize) * self.stride + (x + self.border as isize) as usize
    }

    #[inline]
    pub fn at(&self, x: usize, y: usize) -> T {
        self.data[(y + self.border) * self.stride + x + self.border]
    }

    /// Row `y` of the coded area from column `x`, `len` samples.
    #[inline]
    pub fn row(&self, x: usize, y: usize, len: usize) -> &[T] {
        let start = (y + self.border) * self.stride + x + self.border;
        &self.data[start..start + len]
    }

    #[inline]
    pub fn row_mut(&mut self, x: usize, y: usize, len: usize) -> &mut [T] {
        let start = (y + self.border) * self.stride + x + self.border;
        &mut self.data[start..start + len]
    }

    /// Copies a `w`x`h` block (tight rows) into the plane at (x, y).
    pub fn put_block(&mut self, x: usize, y: usize, w: usize, h: usize, block: &[T]) {
        for (j, src) in block.chunks_exact(w).take(h).enumerate() {
            self.row_mut(x, y + j, w).copy_from_slice(src);
        }
    }

    /// Copies a `w`x`h` block at (x, y) into tight rows.
    pub fn get_block(&self, x: usize, y: usize, w: usize, h: usize, block: &mut [T]) {
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
pub struct Picture<T: Sample> {
    pub planes: [PaddedPlane<T>; 3],
}

impl<T: Sample> Picture<T> {
    pub fn new(coded_width: usize, coded_height: usize, bit_depth: u32) -> Self {
        let grey = T::from_u32(mid_grey(bit_depth));
        Self::filled(coded_width, coded_height, bit_depth, grey)
    }

    /// A picture of zeros, for a decoder, which writes every sample before it reads it: memory
    /// the kernel gives zeroed is then first touched where the decoder writes it, not here.
    pub fn zeroed(coded_width: usize, coded_height: usize, bit_depth: u32) -> Self {
        Self::filled(coded_width, coded_height, bit_depth, T::default())
    }

    fn filled(coded_width: usize, coded_height: usize, bit_depth: u32, value: T) -> Self {
        let (w, h) = (coded_width, coded_height);
        let plane = |w, h, border| PaddedPlane::filled(w, h, border, bit_depth, value);
        Picture {
            planes: [
                plane(w, h, LUMA_BORDER),
                plane(w / 2, h / 2, LUMA_BORDER / 2),
                plane(w / 2, h / 2, LUMA_BORDER / 2),
            ],
        }
    }

    pub fn bit_depth(&self) -> u32 {
        self.planes[0].bit_depth
    }

    /// Loads a display-size frame, replicating its right and bottom edges over the coded area.
    pub fn load(&mut self, frame: &Frame<T>) {
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
    pub fn to_frame(&self, width: usize, height: usize) -> Frame<T> {
        let sizes = display_sizes(width, height);
        let planes = self
            .planes
            .iter()
            .zip(sizes)
            .map(|(plane, (w, h))| {
                let mut data = Vec::with_capacity(w * h);
                for y in 0..h {
                    data.extend_from_slice(plane.row(0, y, w));
                }
                Plane::from_vec(w, h, data).unwrap_or_else(|| Plane::filled(w, h, T::default()))
            })
            .collect();
        Frame { planes }
    }

    /// [`Picture::to_frame`] written into `spare`'s memory when its planes have the display
    /// sizes: fresh frame memory costs a page fault and a clear per page.
    pub fn to_frame_in(&self, width: usize, height: usize, spare: Option<Frame<T>>) -> Frame<T> {
        let sizes = display_sizes(width, height);
        let fits = |frame: &Frame<T>| {
            frame.planes.len() == sizes.len()
                && (frame.planes.iter().zip(sizes)).all(|(p, s)| (p.width(), p.height()) == s)
        };
        let Some(mut frame) = spare.filter(fits) else {
            return self.to_frame(width, height);
        };
        for (plane, dst) in self.planes.iter().zip(&mut frame.planes) {
            let w = dst.width();
            for y in 0..dst.height() {
                dst.row_mut(y).copy_from_slice(plane.row(0, y, w));
            }
        }
        frame
    }

    pub fn extend_edges(&mut self) {
        for plane in &mut self.planes {
            plane.extend_edges();
        }
    }
}

/// Plane sizes of a 4:2:0 frame of `width`x`height` luma samples.
fn display_sizes(width: usize, height: usize) -> [(usize, usize); 3] {
    let chroma = (width.div_ceil(2), height.div_ceil(2));
    [(width, height), chroma, chroma]
}
