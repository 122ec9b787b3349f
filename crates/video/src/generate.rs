//! Procedural test clips: deterministic from a seed, any size from 1x1 to 4096x2160, 8 or 10 bits,
//! 4:2:0.
//!
//! Every pattern moves, carries detail and real chroma, so a codec has work to do on it. Pictures
//! are computed with IEEE basic arithmetic only (`+ - * /`, `floor`, `sqrt`) and the crate's own
//! sine and logarithm, never the platform's `sin`/`exp`/`log`, so the same spec gives the same
//! bytes on every machine. Rows are rendered on all cores; each row depends only on its own
//! coordinates, so the thread count does not change the output.

use std::io::Write;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::VideoError;
use crate::format::{ChromaSampling, Rational, VideoFormat};
use crate::frame::{AnyFrame, Frame, Pixel, Plane};
use crate::y4m::Y4mWriter;

/// Largest width or height the generator makes.
pub const MAX_SIDE: usize = 4096;
/// Largest picture area the generator makes: 4096x2160 (DCI 4K).
pub const MAX_PIXELS: usize = 4096 * 2160;

/// What the clip shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// Interfering sine waves through a colour palette: smooth, everything moving.
    Plasma,
    /// A rotating zoom into the Mandelbrot set: fine detail appearing from nowhere.
    Mandelbrot,
    /// Anti-aliased shapes (signed distance fields) moving, spinning and occluding each other.
    Shapes,
    /// A camera panning with sub-pixel steps over a procedural stone-and-moss texture.
    Pan,
    /// Moving shapes under film-like grain that changes every frame.
    Grain,
    /// Slowly turning colour gradients: the banding test.
    Gradient,
    /// Plasma for the first half, then a hard cut to a pan.
    SceneCut,
}

impl Pattern {
    pub const ALL: [Pattern; 7] = [
        Pattern::Plasma,
        Pattern::Mandelbrot,
        Pattern::Shapes,
        Pattern::Pan,
        Pattern::Grain,
        Pattern::Gradient,
        Pattern::SceneCut,
    ];

    /// The name used in specs, file names and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Plasma => "plasma",
            Pattern::Mandelbrot => "mandelbrot",
            Pattern::Shapes => "shapes",
            Pattern::Pan => "pan",
            Pattern::Grain => "grain",
            Pattern::Gradient => "gradient",
            Pattern::SceneCut => "scene-cut",
        }
    }

    /// The corpus content class of clips with this pattern.
    pub fn content_class(self) -> String {
        format!("synthetic:{}", self.name())
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Pattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Pattern::ALL.iter().map(|p| p.name()).collect();
                format!("unknown pattern `{s}`; one of: {}", names.join(", "))
            })
    }
}

/// Everything that determines a generated clip.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GeneratorSpec {
    pub pattern: Pattern,
    pub width: usize,
    pub height: usize,
    pub frames: u64,
    #[serde(with = "crate::format::rational_text")]
    pub fps: Rational,
    pub seed: u64,
    /// 8 or 10.
    pub bit_depth: u8,
}

impl GeneratorSpec {
    /// The clip's format: 4:2:0, square pixels.
    pub fn format(&self) -> VideoFormat {
        VideoFormat {
            width: self.width,
            height: self.height,
            bit_depth: self.bit_depth,
            chroma: ChromaSampling::Cs420,
            fps: self.fps,
            aspect: Rational::new(1, 1),
        }
    }

    /// Why the generator cannot make this clip, if it cannot.
    pub fn check(&self) -> Result<(), GenerateError> {
        let invalid = |reason: String| Err(GenerateError::InvalidSpec(reason));
        if self.width == 0 || self.height == 0 {
            return invalid(format!("zero-sized picture {}x{}", self.width, self.height));
        }
        if self.width > MAX_SIDE || self.height > MAX_SIDE || self.width * self.height > MAX_PIXELS
        {
            return invalid(format!(
                "picture {}x{} is larger than 4096x2160",
                self.width, self.height
            ));
        }
        if self.bit_depth != 8 && self.bit_depth != 10 {
            return invalid(format!("bit depth {} (8 or 10)", self.bit_depth));
        }
        if self.frames == 0 {
            return invalid("zero frames".into());
        }
        if self.fps.num == 0 || self.fps.den == 0 {
            return invalid(format!("frame rate {} is not positive", self.fps));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid generator spec: {0}")]
    InvalidSpec(String),
    #[error(transparent)]
    Video(#[from] VideoError),
}

/// Makes the frames of one spec. Frame `i` depends only on the spec and `i`.
pub struct Generator {
    spec: GeneratorSpec,
    format: VideoFormat,
    scene: Scene,
}

impl Generator {
    pub fn new(spec: &GeneratorSpec) -> Result<Self, GenerateError> {
        spec.check()?;
        let view = View::new(spec.width, spec.height);
        let scene = match spec.pattern {
            Pattern::SceneCut => Scene::Cut {
                first: Box::new(Scene::new(Pattern::Plasma, spec.seed, view)),
                second: Box::new(Scene::new(Pattern::Pan, spec.seed ^ CUT_SALT, view)),
                at: (spec.frames / 2).max(1),
            },
            pattern => Scene::new(pattern, spec.seed, view),
        };
        Ok(Generator {
            spec: spec.clone(),
            format: spec.format(),
            scene,
        })
    }

    pub fn spec(&self) -> &GeneratorSpec {
        &self.spec
    }

    pub fn format(&self) -> &VideoFormat {
        &self.format
    }

    /// Frame `index` (any index: the content is defined past the spec's frame count too).
    pub fn frame(&self, index: u64) -> AnyFrame {
        let mut frame = AnyFrame::U8(Frame { planes: Vec::new() });
        self.frame_into(index, &mut frame);
        frame
    }

    /// Renders frame `index` into `frame`, reusing its planes when they have the clip's shape.
    pub fn frame_into(&self, index: u64, frame: &mut AnyFrame) {
        let source = self.scene.at(index);
        if self.format.bit_depth > 8 {
            if let AnyFrame::U16(f) = frame
                && f.matches(&self.format)
                && let [y, cb, cr] = f.planes.as_mut_slice()
            {
                rasterize(source.as_ref(), &self.format, y, cb, cr);
            } else {
                *frame = AnyFrame::U16(self.new_frame(source.as_ref()));
            }
        } else if let AnyFrame::U8(f) = frame
            && f.matches(&self.format)
            && let [y, cb, cr] = f.planes.as_mut_slice()
        {
            rasterize(source.as_ref(), &self.format, y, cb, cr);
        } else {
            *frame = AnyFrame::U8(self.new_frame(source.as_ref()));
        }
    }

    fn new_frame<T: Pixel>(&self, source: &dyn RowSource) -> Frame<T> {
        let mut planes: Vec<Plane<T>> = (0..3)
            .map(|i| {
                let (w, h) = self.format.plane_size(i);
                Plane::filled(w, h, T::default())
            })
            .collect();
        if let [y, cb, cr] = planes.as_mut_slice() {
            rasterize(source, &self.format, y, cb, cr);
        }
        Frame { planes }
    }

    /// Streams the whole clip as Y4M into `writer`; memory stays at one frame.
    pub fn write_y4m<W: Write>(&self, writer: W) -> Result<W, GenerateError> {
        self.write_y4m_reporting(writer, "output", |_| {})
    }

    /// [`Generator::write_y4m`], with errors calling the output `name` and `on_frame` called
    /// after each frame (for progress bars).
    pub fn write_y4m_reporting<W: Write>(
        &self,
        writer: W,
        name: &str,
        mut on_frame: impl FnMut(u64),
    ) -> Result<W, GenerateError> {
        let mut y4m = Y4mWriter::named(writer, &self.format, name)?;
        let mut frame = AnyFrame::U8(Frame { planes: Vec::new() });
        for index in 0..self.spec.frames {
            self.frame_into(index, &mut frame);
            y4m.write_frame(&frame)?;
            on_frame(index);
        }
        Ok(y4m.finish()?)
    }
}

/// Mixed into the seed of the second half of a scene cut, so it differs from the first.
const CUT_SALT: u64 = 0x5CE9_E0C0_7000_0001;
/// Mixed into the seed of the content under the grain, so `grain` and `shapes` with one seed differ.
const GRAIN_SALT: u64 = 0x0067_7261_696E_0001;

// ---------------------------------------------------------------------------------------------
// Colour

/// A colour in BT.709 Y'CbCr: luma in 0..=1, chroma in -0.5..=0.5.
#[derive(Clone, Copy, Debug, Default)]
struct Ycc {
    y: f32,
    cb: f32,
    cr: f32,
}

#[derive(Clone, Copy, Debug)]
struct Rgb([f32; 3]);

impl Rgb {
    fn to_ycc(self) -> Ycc {
        let [r, g, b] = self.0.map(|c| c.clamp(0.0, 1.0));
        let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
        Ycc {
            y,
            cb: (b - y) / 1.8556,
            cr: (r - y) / 1.5748,
        }
    }

    fn mix(self, other: Rgb, t: f32) -> Rgb {
        Rgb(std::array::from_fn(|i| {
            self.0[i] + (other.0[i] - self.0[i]) * t
        }))
    }

    fn scale(self, k: f32) -> Rgb {
        Rgb(self.0.map(|c| c * k))
    }
}

/// A cosine palette: channel `c` at `t` is `offset + amp * cos(2π (freq * t + phase))`.
#[derive(Clone, Copy, Debug)]
struct Palette {
    offset: [f32; 3],
    amp: [f32; 3],
    freq: [f32; 3],
    phase: [f32; 3],
}

impl Palette {
    fn random(rng: &mut SplitMix64) -> Self {
        Palette {
            offset: std::array::from_fn(|_| rng.range(0.4, 0.6)),
            amp: std::array::from_fn(|_| rng.range(0.3, 0.5)),
            freq: std::array::from_fn(|_| rng.range(0.6, 1.4)),
            phase: std::array::from_fn(|_| rng.unit()),
        }
    }

    fn at(&self, t: f32) -> Rgb {
        Rgb(std::array::from_fn(|i| {
            self.offset[i] + self.amp[i] * cos_turns(self.freq[i] * t + self.phase[i])
        }))
    }
}

/// A vivid random colour.
fn random_colour(rng: &mut SplitMix64) -> Rgb {
    Palette::random(rng).at(rng.unit())
}

// ---------------------------------------------------------------------------------------------
// Deterministic arithmetic helpers

/// sin(2π·x) from basic arithmetic (a corrected parabola; error under 0.001).
#[inline]
fn sin_turns(x: f32) -> f32 {
    let r = x - (x + 0.5).floor(); // in [-0.5, 0.5)
    let y = 8.0 * r - 16.0 * r * r.abs();
    0.225 * (y * y.abs() - y) + y
}

#[inline]
fn cos_turns(x: f32) -> f32 {
    sin_turns(x + 0.25)
}

/// The fractional part of `x`, in f64 so that large frame indices keep their precision.
fn frac(x: f64) -> f32 {
    (x - x.floor()) as f32
}

/// log2(x) for positive normal `x`, from the float's exponent and a quadratic for the mantissa
/// (error under 0.01).
fn log2_approx(x: f64) -> f64 {
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as f64 - 1023.0;
    let mantissa = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    exponent + (-0.344_848_43 * mantissa + 2.024_665_78) * mantissa - 1.674_877_59
}

#[inline]
fn smoothstep(t: f32) -> f32 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// The splitmix64 generator: scene parameters come from it.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    fn sign(&mut self) -> f32 {
        if self.next_u64() & 1 == 0 { 1.0 } else { -1.0 }
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// splitmix64's finaliser: a strong 64-bit mix.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of a lattice point to [0, 1).
#[inline]
fn lattice(x: i32, y: i32, salt: u32) -> f32 {
    let mut h = (x as u32).wrapping_mul(0x8DA6_B343)
        ^ (y as u32).wrapping_mul(0xD816_3841)
        ^ salt.wrapping_mul(0xCB1A_B31F);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    h = h.wrapping_mul(0x297A_2D39);
    h ^= h >> 15;
    (h >> 8) as f32 / (1u32 << 24) as f32
}

/// Value noise along one row, for x increasing: the lattice corners are hashed once per cell
/// instead of once per pixel, which matters for the coarse layers of a texture at 4K.
struct NoiseRow {
    scale: f32,
    salt: u32,
    row: i32,
    /// Vertical interpolation weight within the cell row.
    ty: f32,
    cell: Option<i32>,
    /// Noise at the cell's left and right edges, already interpolated vertically.
    left: f32,
    right: f32,
}

impl NoiseRow {
    fn new(y: f32, scale: f32, salt: u32) -> Self {
        let fy = (y * scale).floor();
        NoiseRow {
            scale,
            salt,
            row: fy as i32,
            ty: smoothstep(y * scale - fy),
            cell: None,
            left: 0.0,
            right: 0.0,
        }
    }

    fn column(&self, x: i32) -> f32 {
        let top = lattice(x, self.row, self.salt);
        let bottom = lattice(x, self.row.wrapping_add(1), self.salt);
        top + (bottom - top) * self.ty
    }

    /// Noise at `x` (same result as [`value_noise`] at `(x, y)` scaled).
    #[inline]
    fn at(&mut self, x: f32) -> f32 {
        let fx = (x * self.scale).floor();
        let ix = fx as i32;
        if self.cell != Some(ix) {
            self.left = if self.cell == Some(ix.wrapping_sub(1)) {
                self.right
            } else {
                self.column(ix)
            };
            self.right = self.column(ix.wrapping_add(1));
            self.cell = Some(ix);
        }
        self.left + (self.right - self.left) * smoothstep(x * self.scale - fx)
    }
}

/// Fractal noise along a row: `octaves` layers, each twice the frequency and half the weight of
/// the one before; values in [0, 1).
struct FbmRow {
    layers: Vec<NoiseRow>,
}

impl FbmRow {
    fn new(y: f32, scale: f32, octaves: u32, salt: u32) -> Self {
        FbmRow {
            layers: (0..octaves)
                .map(|o| NoiseRow::new(y, scale * (1u32 << o) as f32, salt.wrapping_add(o)))
                .collect(),
        }
    }

    #[inline]
    fn at(&mut self, x: f32) -> f32 {
        let (mut sum, mut weight, mut total) = (0.0, 1.0, 0.0);
        for layer in &mut self.layers {
            sum += weight * layer.at(x);
            total += weight;
            weight *= 0.5;
        }
        sum / total
    }
}

// ---------------------------------------------------------------------------------------------
// Rasterizing

/// Picture geometry in "view" units: the picture's height is 1, its width the aspect ratio.
#[derive(Clone, Copy, Debug)]
struct View {
    /// Size of one pixel in view units.
    pixel: f32,
    aspect: f32,
}

impl View {
    fn new(width: usize, height: usize) -> Self {
        View {
            pixel: 1.0 / height as f32,
            aspect: width as f32 / height as f32,
        }
    }

    /// View coordinate of the centre of pixel column or row `i`.
    #[inline]
    fn at(&self, i: usize) -> f32 {
        (i as f32 + 0.5) * self.pixel
    }
}

/// One frame of a scene: renders full-resolution colour rows.
trait RowSource: Sync {
    /// Fills `out` (one entry per luma column) for luma row `y`.
    fn row(&self, y: usize, out: &mut [Ycc]);
}

/// Renders `source` into the three planes: luma per pixel, chroma as the mean of each 2x2 block
/// (fewer at odd edges). Threads take small bands of rows from a shared queue, so costly regions
/// (the inside of the Mandelbrot set) do not leave one thread working alone.
fn rasterize<T: Pixel>(
    source: &dyn RowSource,
    format: &VideoFormat,
    luma: &mut Plane<T>,
    cb: &mut Plane<T>,
    cr: &mut Plane<T>,
) {
    let width = format.width;
    let chroma_width = cb.width();
    let chroma_rows = cb.height();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(chroma_rows);
    let band_rows = (chroma_rows / (8 * threads)).max(1);
    let quantizer = Quantizer::new(format.bit_depth);
    let bands = luma
        .data_mut()
        .chunks_mut(2 * width * band_rows)
        .zip(cb.data_mut().chunks_mut(chroma_width * band_rows))
        .zip(cr.data_mut().chunks_mut(chroma_width * band_rows))
        .enumerate();
    let queue = std::sync::Mutex::new(bands);
    let work = || {
        let mut row = vec![Ycc::default(); width];
        let mut chroma_sum = vec![(0.0f32, 0.0f32); chroma_width];
        loop {
            // A poisoned queue means another worker panicked; the iterator itself is intact.
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
            let Some((band, ((luma_band, cb_band), cr_band))) = next else {
                break;
            };
            let pairs = luma_band
                .chunks_mut(2 * width)
                .zip(cb_band.chunks_mut(chroma_width))
                .zip(cr_band.chunks_mut(chroma_width))
                .enumerate();
            for (i, ((luma_rows, cb_row), cr_row)) in pairs {
                let chroma_y = band * band_rows + i;
                chroma_sum.fill((0.0, 0.0));
                let mut rows_done = 0;
                for (j, luma_row) in luma_rows.chunks_mut(width).enumerate() {
                    source.row(2 * chroma_y + j, &mut row);
                    for (x, (out, ycc)) in luma_row.iter_mut().zip(&row).enumerate() {
                        *out = T::from_u32(quantizer.luma(ycc.y));
                        let sum = &mut chroma_sum[x / 2];
                        sum.0 += ycc.cb;
                        sum.1 += ycc.cr;
                    }
                    rows_done += 1;
                }
                for (x, (sum, (cb_out, cr_out))) in chroma_sum
                    .iter()
                    .zip(cb_row.iter_mut().zip(cr_row.iter_mut()))
                    .enumerate()
                {
                    let columns = (width - 2 * x).min(2);
                    let count = (columns * rows_done) as f32;
                    *cb_out = T::from_u32(quantizer.chroma(sum.0 / count));
                    *cr_out = T::from_u32(quantizer.chroma(sum.1 / count));
                }
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
}

/// Maps colour to limited-range ("video range") codes: luma 16..=235, chroma 16..=240 at 8 bits,
/// times 4 at 10 bits.
#[derive(Clone, Copy)]
struct Quantizer {
    scale: f32,
}

impl Quantizer {
    fn new(bit_depth: u8) -> Self {
        Quantizer {
            scale: (1u32 << (bit_depth - 8)) as f32,
        }
    }

    #[inline]
    fn luma(self, y: f32) -> u32 {
        ((16.0 + 219.0 * y.clamp(0.0, 1.0)) * self.scale + 0.5) as u32
    }

    #[inline]
    fn chroma(self, c: f32) -> u32 {
        ((128.0 + 224.0 * c.clamp(-0.5, 0.5)) * self.scale + 0.5) as u32
    }
}

// ---------------------------------------------------------------------------------------------
// Scenes

enum Scene {
    Plasma(Plasma),
    Mandelbrot(Mandelbrot),
    Shapes(Shapes),
    Pan(Pan),
    Grain(Grain),
    Gradient(Gradient),
    Cut {
        first: Box<Scene>,
        second: Box<Scene>,
        at: u64,
    },
}

impl Scene {
    /// A single-content scene (`SceneCut` is assembled by the generator from two of these).
    fn new(pattern: Pattern, seed: u64, view: View) -> Self {
        let mut rng = SplitMix64(seed);
        match pattern {
            Pattern::Plasma | Pattern::SceneCut => Scene::Plasma(Plasma::new(&mut rng, view)),
            Pattern::Mandelbrot => Scene::Mandelbrot(Mandelbrot::new(&mut rng, view)),
            Pattern::Shapes => Scene::Shapes(Shapes::new(&mut rng, view, 1.0)),
            Pattern::Pan => Scene::Pan(Pan::new(&mut rng, view)),
            Pattern::Grain => Scene::Grain(Grain {
                content: Shapes::new(&mut SplitMix64(seed ^ GRAIN_SALT), view, 0.4),
                salt: rng.next_u64(),
            }),
            Pattern::Gradient => Scene::Gradient(Gradient::new(&mut rng, view)),
        }
    }

    fn at(&self, frame: u64) -> Box<dyn RowSource + '_> {
        match self {
            Scene::Plasma(s) => Box::new(s.at(frame)),
            Scene::Mandelbrot(s) => Box::new(s.at(frame)),
            Scene::Shapes(s) => Box::new(s.at(frame)),
            Scene::Pan(s) => Box::new(s.at(frame)),
            Scene::Grain(s) => Box::new(GrainAt {
                content: s.content.at(frame),
                frame,
                scene: s,
            }),
            Scene::Gradient(s) => Box::new(s.at(frame)),
            Scene::Cut { first, second, at } => {
                if frame < *at {
                    first.at(frame)
                } else {
                    second.at(frame - at)
                }
            }
        }
    }
}

// --- Plasma ---

struct Plasma {
    view: View,
    /// Spatial frequencies, cycles per picture height.
    freq: [f32; 5],
    /// Temporal speeds, turns per frame.
    speed: [f64; 5],
    /// The centre of the radial wave wanders on a Lissajous path.
    orbit_speed: [f64; 2],
    palette: Palette,
}

struct PlasmaAt<'a> {
    scene: &'a Plasma,
    phase: [f32; 5],
    centre: (f32, f32),
    hue: f32,
}

impl Plasma {
    fn new(rng: &mut SplitMix64, view: View) -> Self {
        Plasma {
            view,
            freq: [
                rng.range(1.0, 3.0),
                rng.range(1.0, 3.0),
                rng.range(1.5, 4.0),
                rng.range(2.0, 5.0),
                rng.range(9.0, 16.0),
            ],
            speed: std::array::from_fn(|_| f64::from(rng.range(0.004, 0.02) * rng.sign())),
            orbit_speed: [
                f64::from(rng.range(0.002, 0.006)),
                f64::from(rng.range(0.002, 0.006)),
            ],
            palette: Palette::random(rng),
        }
    }

    fn at(&self, frame: u64) -> PlasmaAt<'_> {
        let t = frame as f64;
        PlasmaAt {
            scene: self,
            phase: std::array::from_fn(|i| frac(t * self.speed[i])),
            centre: (
                self.view.aspect * (0.5 + 0.35 * sin_turns(frac(t * self.orbit_speed[0]))),
                0.5 + 0.35 * cos_turns(frac(t * self.orbit_speed[1])),
            ),
            hue: frac(t * 0.0015),
        }
    }
}

impl RowSource for PlasmaAt<'_> {
    fn row(&self, y: usize, out: &mut [Ycc]) {
        let s = self.scene;
        let v = s.view.at(y);
        let (f, p) = (&s.freq, &self.phase);
        let row_wave = sin_turns(v * f[1] + p[1]);
        for (x, px) in out.iter_mut().enumerate() {
            let u = s.view.at(x);
            let (dx, dy) = (u - self.centre.0, v - self.centre.1);
            let radius = (dx * dx + dy * dy).sqrt();
            let wave = sin_turns(u * f[0] + p[0])
                + row_wave
                + sin_turns((u + v) * f[2] + p[2])
                + sin_turns(radius * f[3] + p[3]);
            // A faint fine ripple adds texture a codec must spend bits on.
            let ripple = 0.06 * sin_turns((u - v) * f[4] + wave * 0.5 + p[4]);
            *px = s.palette.at(wave * 0.125 + self.hue + ripple).to_ycc();
        }
    }
}

// --- Mandelbrot ---

/// Points on the set's boundary where zooming keeps finding detail.
const MANDELBROT_TARGETS: [(f64, f64); 5] = [
    (-0.743_643_887_037_151, 0.131_825_904_205_330),
    (-0.101_096_363_845_622_3, 0.956_286_510_809_142),
    (-1.250_660_78, 0.020_120_45),
    (0.286_931_868_895_045_1, 0.014_286_693_904_085),
    (-0.775_683_77, 0.136_467_37),
];
/// Zoom factor per frame, and the frame after which the zoom starts over (before f64 runs out of
/// precision at 4K).
const MANDELBROT_ZOOM: f64 = 0.97;
const MANDELBROT_CYCLE: u64 = 700;

struct Mandelbrot {
    view: View,
    target: (f64, f64),
    spin: f64,
    palette: Palette,
}

struct MandelbrotAt<'a> {
    scene: &'a Mandelbrot,
    /// Half the picture height in the complex plane.
    half_height: f64,
    rotation: (f64, f64),
    max_iterations: u32,
    hue: f32,
}

impl Mandelbrot {
    fn new(rng: &mut SplitMix64, view: View) -> Self {
        Mandelbrot {
            view,
            target: MANDELBROT_TARGETS[rng.below(MANDELBROT_TARGETS.len() as u64) as usize],
            spin: f64::from(rng.range(0.0005, 0.002) * rng.sign()),
            palette: Palette::random(rng),
        }
    }

    fn at(&self, frame: u64) -> MandelbrotAt<'_> {
        let depth = frame % MANDELBROT_CYCLE;
        let mut half_height = 1.4;
        // Repeated multiplication rather than `powi`, whose result is not pinned down.
        for _ in 0..depth {
            half_height *= MANDELBROT_ZOOM;
        }
        let angle = frac(frame as f64 * self.spin);
        MandelbrotAt {
            scene: self,
            half_height,
            rotation: (f64::from(cos_turns(angle)), f64::from(sin_turns(angle))),
            max_iterations: 80 + (depth / 4) as u32,
            hue: frac(frame as f64 * 0.004),
        }
    }
}

impl RowSource for MandelbrotAt<'_> {
    fn row(&self, y: usize, out: &mut [Ycc]) {
        let s = self.scene;
        let scale = 2.0 * self.half_height;
        let v = (f64::from(s.view.at(y)) - 0.5) * scale;
        let (cos, sin) = self.rotation;
        let inside = Rgb([0.03, 0.02, 0.06]).to_ycc();
        for (x, px) in out.iter_mut().enumerate() {
            let u = (f64::from(s.view.at(x)) - 0.5 * f64::from(s.view.aspect)) * scale;
            let cr = s.target.0 + u * cos - v * sin;
            let ci = s.target.1 + u * sin + v * cos;
            *px = match escape_time(cr, ci, self.max_iterations) {
                Some(smooth) => s.palette.at(smooth as f32 * 0.035 + self.hue).to_ycc(),
                None => inside,
            };
        }
    }
}

/// The smooth escape count of `c`, `None` inside the set (or when the count runs out).
fn escape_time(cr: f64, ci: f64, max_iterations: u32) -> Option<f64> {
    // The main cardioid and the period-2 bulb are inside; skip iterating them.
    let shifted = cr - 0.25;
    let q = shifted * shifted + ci * ci;
    if q * (q + shifted) <= 0.25 * ci * ci || (cr + 1.0) * (cr + 1.0) + ci * ci <= 0.0625 {
        return None;
    }
    let (mut zr, mut zi) = (0.0f64, 0.0f64);
    for n in 0..max_iterations {
        let (zr2, zi2) = (zr * zr, zi * zi);
        if zr2 + zi2 > 256.0 {
            // n + 1 - log2(log2 |z|), with log2 |z| = log2(|z|²) / 2.
            let log_modulus = 0.5 * log2_approx(zr2 + zi2);
            return Some(f64::from(n) + 1.0 - log2_approx(log_modulus));
        }
        zi = 2.0 * zr * zi + ci;
        zr = zr2 - zi2 + cr;
    }
    None
}

// --- Shapes ---

#[derive(Clone, Copy, Debug)]
enum ShapeKind {
    Disc,
    RoundedBox,
    Ring,
    Capsule,
}

struct Shape {
    kind: ShapeKind,
    /// Main radius or half-size, view units.
    size: f32,
    /// Second dimension relative to `size` (box height, ring thickness, capsule length).
    ratio: f32,
    colour: Rgb,
    home: (f32, f32),
    swing: (f32, f32),
    /// Turns per frame of the Lissajous path, per axis.
    rate: (f64, f64),
    phase: (f64, f64),
    /// Turns per frame of rotation.
    spin: f64,
}

struct PlacedShape<'a> {
    shape: &'a Shape,
    centre: (f32, f32),
    /// cos and sin of the rotation.
    rotation: (f32, f32),
    /// Radius of a circle that holds the whole shape.
    reach: f32,
}

impl Shape {
    fn random(rng: &mut SplitMix64, view: View) -> Self {
        let kind = match rng.below(4) {
            0 => ShapeKind::Disc,
            1 => ShapeKind::RoundedBox,
            2 => ShapeKind::Ring,
            _ => ShapeKind::Capsule,
        };
        Shape {
            kind,
            size: rng.range(0.05, 0.2),
            ratio: rng.range(0.3, 0.9),
            colour: random_colour(rng),
            home: (rng.range(0.15, 0.85) * view.aspect, rng.range(0.15, 0.85)),
            swing: (rng.range(0.05, 0.35) * view.aspect, rng.range(0.05, 0.3)),
            rate: (
                f64::from(rng.range(0.002, 0.012)),
                f64::from(rng.range(0.002, 0.012)),
            ),
            phase: (f64::from(rng.unit()), f64::from(rng.unit())),
            spin: f64::from(rng.range(0.001, 0.01) * rng.sign()),
        }
    }

    fn place(&self, frame: u64, speed: f64) -> PlacedShape<'_> {
        let t = frame as f64 * speed;
        let angle = frac(t * self.spin);
        let reach = match self.kind {
            ShapeKind::Disc | ShapeKind::Ring => self.size,
            ShapeKind::RoundedBox => self.size * (1.0 + self.ratio * self.ratio).sqrt(),
            ShapeKind::Capsule => self.size * (1.0 + self.ratio),
        };
        PlacedShape {
            shape: self,
            centre: (
                self.home.0 + self.swing.0 * sin_turns(frac(t * self.rate.0 + self.phase.0)),
                self.home.1 + self.swing.1 * sin_turns(frac(t * self.rate.1 + self.phase.1)),
            ),
            rotation: (cos_turns(angle), sin_turns(angle)),
            reach,
        }
    }
}

impl PlacedShape<'_> {
    /// Signed distance (view units) from `(x, y)` to the shape's edge, negative inside, and the
    /// point in the shape's own frame (for shading).
    #[inline]
    fn distance(&self, x: f32, y: f32) -> (f32, (f32, f32)) {
        let (dx, dy) = (x - self.centre.0, y - self.centre.1);
        let (c, s) = self.rotation;
        let (px, py) = (dx * c + dy * s, -dx * s + dy * c);
        let size = self.shape.size;
        let ratio = self.shape.ratio;
        let d = match self.shape.kind {
            ShapeKind::Disc => (px * px + py * py).sqrt() - size,
            ShapeKind::RoundedBox => {
                let corner = 0.2 * size * ratio;
                let (bx, by) = (size - corner, size * ratio - corner);
                let (qx, qy) = (px.abs() - bx, py.abs() - by);
                let (ox, oy) = (qx.max(0.0), qy.max(0.0));
                (ox * ox + oy * oy).sqrt() + qx.max(qy).min(0.0) - corner
            }
            ShapeKind::Ring => {
                let thickness = 0.25 * size * ratio;
                ((px * px + py * py).sqrt() - (size - thickness)).abs() - thickness
            }
            ShapeKind::Capsule => {
                let half_length = size * ratio;
                let radius = 0.45 * size;
                let along = px.clamp(-half_length, half_length);
                let (ex, ey) = (px - along, py);
                (ex * ex + ey * ey).sqrt() - radius
            }
        };
        (d, (px, py))
    }
}

struct Shapes {
    view: View,
    shapes: Vec<Shape>,
    sky: (Rgb, Rgb),
    /// Motion speed multiplier (slower under grain).
    speed: f64,
}

struct ShapesAt<'a> {
    scene: &'a Shapes,
    placed: Vec<PlacedShape<'a>>,
    drift: f32,
}

impl Shapes {
    fn new(rng: &mut SplitMix64, view: View, speed: f64) -> Self {
        let count = 5 + rng.below(6) as usize;
        Shapes {
            view,
            sky: (random_colour(rng).scale(0.6), random_colour(rng).scale(0.9)),
            shapes: (0..count).map(|_| Shape::random(rng, view)).collect(),
            speed,
        }
    }

    fn at(&self, frame: u64) -> ShapesAt<'_> {
        ShapesAt {
            scene: self,
            placed: self
                .shapes
                .iter()
                .map(|s| s.place(frame, self.speed))
                .collect(),
            drift: frac(frame as f64 * 0.003 * self.speed),
        }
    }
}

impl RowSource for ShapesAt<'_> {
    fn row(&self, y: usize, out: &mut [Ycc]) {
        let s = self.scene;
        let view = s.view;
        let v = view.at(y);
        // Background: a vertical gradient with soft moving bands.
        let base = s.sky.0.mix(s.sky.1, v);
        let mut colours = vec![base; out.len()];
        for (x, c) in colours.iter_mut().enumerate() {
            let u = view.at(x);
            let band = 0.9 + 0.1 * sin_turns(u * 3.0 + v * 1.5 + self.drift);
            *c = c.scale(band);
        }
        let margin = 2.0 * view.pixel;
        for placed in &self.placed {
            if (v - placed.centre.1).abs() > placed.reach + margin {
                continue;
            }
            // Only the columns the shape can reach.
            let left = ((placed.centre.0 - placed.reach - margin) / view.pixel).floor();
            let right = ((placed.centre.0 + placed.reach + margin) / view.pixel).ceil();
            let first = left.max(0.0) as usize;
            let end = (right.max(0.0) as usize).min(out.len());
            for (x, c) in colours.iter_mut().enumerate().take(end).skip(first) {
                let (d, (_, local_y)) = placed.distance(view.at(x), v);
                // Area coverage of a pixel by the edge: one pixel of anti-aliasing ramp.
                let coverage = (0.5 - d / view.pixel).clamp(0.0, 1.0);
                if coverage > 0.0 {
                    let shade = 0.8 - 0.3 * local_y / placed.shape.size;
                    *c = c.mix(placed.shape.colour.scale(shade), coverage);
                }
            }
        }
        for (px, c) in out.iter_mut().zip(&colours) {
            *px = c.to_ycc();
        }
    }
}

// --- Pan ---

struct Pan {
    view: View,
    /// Pixels per frame, both axes: non-integer, so content moves by sub-pixel steps.
    velocity: (f64, f64),
    stone: (Rgb, Rgb),
    moss: Rgb,
    salt: u32,
}

struct PanAt<'a> {
    scene: &'a Pan,
    camera: (f32, f32),
}

impl Pan {
    fn new(rng: &mut SplitMix64, view: View) -> Self {
        Pan {
            view,
            velocity: (
                f64::from(rng.range(0.6, 3.3) * rng.sign()),
                f64::from(rng.range(0.1, 1.2) * rng.sign()),
            ),
            stone: (
                random_colour(rng).scale(0.5),
                random_colour(rng).scale(0.85),
            ),
            moss: random_colour(rng).scale(0.7),
            salt: rng.next_u64() as u32,
        }
    }

    fn at(&self, frame: u64) -> PanAt<'_> {
        let t = frame as f64;
        let pixel = f64::from(self.view.pixel);
        // A slight sway on top of the steady pan, as a hand-held camera would add.
        let sway = 2.0 * f64::from(sin_turns(frac(t / 90.0)));
        PanAt {
            scene: self,
            camera: (
                (t * self.velocity.0 * pixel) as f32,
                ((t * self.velocity.1 + sway) * pixel) as f32,
            ),
        }
    }
}

impl RowSource for PanAt<'_> {
    fn row(&self, y: usize, out: &mut [Ycc]) {
        let s = self.scene;
        let view = s.view;
        let world_y = view.at(y) + self.camera.1;
        // Stones: a staggered grid of blocks, 5 per picture height, with anti-aliased joints.
        let blocks = 5.0;
        let block_y = world_y * blocks;
        let row_index = block_y.floor();
        let stagger = if (row_index as i32) & 1 == 0 {
            0.0
        } else {
            0.5
        };
        let edge_y = (block_y - row_index).min(1.0 - (block_y - row_index));
        let joint_px = 1.5;
        let px_per_block = 1.0 / (blocks * view.pixel);
        let mut grain = FbmRow::new(world_y, 7.0, 4, s.salt.wrapping_add(1));
        let mut patches = NoiseRow::new(world_y, 2.0, s.salt.wrapping_add(9));
        for (x, px) in out.iter_mut().enumerate() {
            let world_x = view.at(x) + self.camera.0;
            let block_x = world_x * blocks + stagger;
            let column_index = block_x.floor();
            let edge_x = (block_x - column_index).min(1.0 - (block_x - column_index));
            let edge_px = edge_x.min(edge_y) * px_per_block;
            let joint = (joint_px - edge_px).clamp(0.0, 1.0);
            let tint = lattice(column_index as i32, row_index as i32, s.salt);
            let grain = grain.at(world_x);
            let patches = patches.at(world_x);
            let stone = s.stone.0.mix(s.stone.1, tint).scale(0.6 + 0.8 * grain);
            let moss_cover = smoothstep((patches - 0.55) * 5.0);
            let colour = stone.mix(s.moss.scale(0.5 + grain), moss_cover);
            *px = colour.scale(1.0 - 0.6 * joint).to_ycc();
        }
    }
}

// --- Grain ---

struct Grain {
    content: Shapes,
    salt: u64,
}

struct GrainAt<'a> {
    content: ShapesAt<'a>,
    frame: u64,
    scene: &'a Grain,
}

impl RowSource for GrainAt<'_> {
    fn row(&self, y: usize, out: &mut [Ycc]) {
        self.content.row(y, out);
        let frame_salt = mix64(self.scene.salt ^ self.frame.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let row_salt = mix64(frame_salt ^ y as u64);
        // Coarser grain clumps, shared by pairs of rows and columns.
        let clump_salt = mix64(frame_salt ^ (y as u64 / 2) ^ 0xC1);
        for (x, px) in out.iter_mut().enumerate() {
            let fine = mix64(row_salt ^ x as u64);
            let clump = mix64(clump_salt ^ (x as u64 / 2));
            // Two uniforms summed: a triangular distribution in [-1, 1].
            let noise =
                |h: u64| ((h & 0xFFFF) as f32 + ((h >> 16) & 0xFFFF) as f32) / 65535.0 - 1.0;
            let g = 0.7 * noise(fine) + 0.3 * noise(clump);
            // Film grain is strongest in the mid-tones.
            let strength = 0.03 + 0.25 * px.y * (1.0 - px.y);
            px.y += strength * g;
            px.cb += 0.2 * strength * noise(fine >> 32);
            px.cr += 0.2 * strength * noise(clump >> 32);
        }
    }
}

// --- Gradient ---

struct Gradient {
    view: View,
    colours: [Rgb; 3],
    angle: f32,
    spin: f64,
    orbit: (f64, f64),
}

struct GradientAt<'a> {
    scene: &'a Gradient,
    direction: (f32, f32),
    centre: (f32, f32),
    extent: f32,
}

impl Gradient {
    fn new(rng: &mut SplitMix64, view: View) -> Self {
        Gradient {
            view,
            colours: std::array::from_fn(|_| random_colour(rng)),
            angle: rng.unit(),
            spin: f64::from(rng.range(0.0005, 0.002) * rng.sign()),
            orbit: (
                f64::from(rng.range(0.002, 0.005)),
                f64::from(rng.range(0.002, 0.005)),
            ),
        }
    }

    fn at(&self, frame: u64) -> GradientAt<'_> {
        let t = frame as f64;
        let angle = self.angle + frac(t * self.spin);
        let direction = (cos_turns(angle), sin_turns(angle));
        // Half the picture's extent along the direction, so the ramp spans it exactly.
        let extent = 0.5 * (self.view.aspect * direction.0.abs() + direction.1.abs());
        GradientAt {
            scene: self,
            direction,
            centre: (
                self.view.aspect * (0.5 + 0.3 * sin_turns(frac(t * self.orbit.0))),
                0.5 + 0.3 * cos_turns(frac(t * self.orbit.1)),
            ),
            extent,
        }
    }
}

impl RowSource for GradientAt<'_> {
    fn row(&self, y: usize, out: &mut [Ycc]) {
        let s = self.scene;
        let v = s.view.at(y) - 0.5;
        let [a, b, c] = s.colours;
        for (x, px) in out.iter_mut().enumerate() {
            let u = s.view.at(x) - 0.5 * s.view.aspect;
            let along = (u * self.direction.0 + v * self.direction.1) / self.extent;
            let linear = a.mix(b, smoothstep(0.5 + 0.5 * along));
            let (dx, dy) = (s.view.at(x) - self.centre.0, s.view.at(y) - self.centre.1);
            let glow = (1.0 - (dx * dx + dy * dy).sqrt() * 1.4).clamp(0.0, 1.0);
            *px = linear.mix(c, 0.6 * glow * glow).to_ycc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Value noise at one point: the reference the row evaluator must agree with.
    #[inline]
    fn value_noise(x: f32, y: f32, salt: u32) -> f32 {
        let (fx, fy) = (x.floor(), y.floor());
        let (ix, iy) = (fx as i32, fy as i32);
        let (tx, ty) = (smoothstep(x - fx), smoothstep(y - fy));
        let a = lattice(ix, iy, salt);
        let b = lattice(ix.wrapping_add(1), iy, salt);
        let c = lattice(ix, iy.wrapping_add(1), salt);
        let d = lattice(ix.wrapping_add(1), iy.wrapping_add(1), salt);
        let top = a + (b - a) * tx;
        let bottom = c + (d - c) * tx;
        top + (bottom - top) * ty
    }

    #[test]
    fn sine_approximation_is_close() {
        for i in -1000..=1000 {
            let x = i as f32 / 333.0;
            let exact = (x * std::f32::consts::TAU).sin();
            assert!((sin_turns(x) - exact).abs() < 0.002, "x = {x}");
        }
    }

    #[test]
    fn log2_approximation_is_close() {
        for i in 1..2000 {
            let x = f64::from(i) * 0.37;
            assert!((log2_approx(x) - x.log2()).abs() < 0.01, "x = {x}");
        }
    }

    #[test]
    fn row_noise_matches_point_noise_stays_in_range_and_varies() {
        let y = -3.3;
        let mut row = NoiseRow::new(y, 2.5, 3);
        for i in 0..400 {
            let x = i as f32 * 0.07 - 9.0;
            let reference = value_noise(x * 2.5, y * 2.5, 3);
            assert!((row.at(x) - reference).abs() < 1e-5, "x = {x}");
        }
        let mut fbm = FbmRow::new(y, 1.0, 4, 3);
        let samples: Vec<f32> = (0..500).map(|i| fbm.at(i as f32 * 0.37)).collect();
        assert!(samples.iter().all(|v| (0.0..1.0).contains(v)));
        let spread = samples.iter().cloned().fold(0.0f32, f32::max)
            - samples.iter().cloned().fold(1.0f32, f32::min);
        assert!(spread > 0.3, "noise too flat: {spread}");
    }

    #[test]
    fn quantizer_uses_video_range() {
        let q8 = Quantizer::new(8);
        assert_eq!((q8.luma(0.0), q8.luma(1.0)), (16, 235));
        assert_eq!(
            (q8.chroma(-0.5), q8.chroma(0.0), q8.chroma(0.5)),
            (16, 128, 240)
        );
        let q10 = Quantizer::new(10);
        assert_eq!((q10.luma(0.0), q10.luma(1.0)), (64, 940));
        assert_eq!(q10.chroma(0.0), 512);
    }
}
