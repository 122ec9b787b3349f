//! Planes of samples and frames made of planes.

use crate::format::VideoFormat;

/// A sample type: `u8` for 8-bit video, `u16` for deeper video.
pub trait Pixel: Copy + Default + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    fn to_u32(self) -> u32;
    /// Converts from a value known to fit the sample type.
    fn from_u32(v: u32) -> Self;
}

impl Pixel for u8 {
    #[inline]
    fn to_u32(self) -> u32 {
        u32::from(self)
    }
    #[inline]
    fn from_u32(v: u32) -> Self {
        v as u8
    }
}

impl Pixel for u16 {
    #[inline]
    fn to_u32(self) -> u32 {
        u32::from(self)
    }
    #[inline]
    fn from_u32(v: u32) -> Self {
        v as u16
    }
}

/// One plane of samples, rows stored contiguously (stride == width).
#[derive(Clone, Debug, PartialEq)]
pub struct Plane<T: Pixel> {
    width: usize,
    height: usize,
    data: Vec<T>,
}

impl<T: Pixel> Plane<T> {
    /// A plane filled with `value`.
    pub fn filled(width: usize, height: usize, value: T) -> Self {
        Plane {
            width,
            height,
            data: vec![value; width * height],
        }
    }

    /// Wraps samples; `None` when `data.len() != width * height`.
    pub fn from_vec(width: usize, height: usize, data: Vec<T>) -> Option<Self> {
        (data.len() == width * height).then_some(Plane {
            width,
            height,
            data,
        })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn data(&self) -> &[T] {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    pub fn row(&self, y: usize) -> &[T] {
        &self.data[y * self.width..(y + 1) * self.width]
    }

    pub fn row_mut(&mut self, y: usize) -> &mut [T] {
        &mut self.data[y * self.width..(y + 1) * self.width]
    }

    pub fn rows(&self) -> std::slice::ChunksExact<'_, T> {
        self.data.chunks_exact(self.width.max(1))
    }

    #[inline]
    pub fn get(&self, x: usize, y: usize) -> T {
        self.data[y * self.width + x]
    }

    #[inline]
    pub fn set(&mut self, x: usize, y: usize, v: T) {
        self.data[y * self.width + x] = v;
    }
}

/// A picture: one plane per component (Y, Cb, Cr; or Y alone for mono).
#[derive(Clone, Debug, PartialEq)]
pub struct Frame<T: Pixel> {
    pub planes: Vec<Plane<T>>,
}

impl<T: Pixel> Frame<T> {
    /// A frame of `format` with every sample set to mid-grey.
    pub fn new_grey(format: &VideoFormat) -> Self {
        let mid = T::from_u32(1 << (format.bit_depth - 1));
        let planes = (0..format.chroma.plane_count())
            .map(|i| {
                let (w, h) = format.plane_size(i);
                Plane::filled(w, h, mid)
            })
            .collect();
        Frame { planes }
    }

    /// True when the planes have exactly the sizes `format` prescribes.
    pub fn matches(&self, format: &VideoFormat) -> bool {
        self.planes.len() == format.chroma.plane_count()
            && self
                .planes
                .iter()
                .enumerate()
                .all(|(i, p)| (p.width(), p.height()) == format.plane_size(i))
    }
}

/// A frame whose sample type is decided at run time by the clip's bit depth.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyFrame {
    U8(Frame<u8>),
    U16(Frame<u16>),
}

impl AnyFrame {
    /// A mid-grey frame with the sample type `format.bit_depth` calls for.
    pub fn new_grey(format: &VideoFormat) -> Self {
        if format.bit_depth > 8 {
            AnyFrame::U16(Frame::new_grey(format))
        } else {
            AnyFrame::U8(Frame::new_grey(format))
        }
    }

    pub fn plane_count(&self) -> usize {
        match self {
            AnyFrame::U8(f) => f.planes.len(),
            AnyFrame::U16(f) => f.planes.len(),
        }
    }

    pub fn matches(&self, format: &VideoFormat) -> bool {
        match self {
            AnyFrame::U8(f) => format.bit_depth <= 8 && f.matches(format),
            AnyFrame::U16(f) => format.bit_depth > 8 && f.matches(format),
        }
    }
}
