//! The decoder: reads the header, then one frame packet at a time, parses coding units into the
//! same `CodedCu` the encoder produced and reconstructs them with the shared code.

use crate::bitstream::header::DecoderLimits;
use crate::bitstream::{Crc32, SequenceHeader, read_exact, read_signed, read_size};
use crate::deblock::{DeblockParams, deblock};
use crate::entropy::{Contexts, RangeDecoder};
use crate::error::{CodecError, Result};
use crate::gop::{CarriedContexts, FrameKind, PictureBuffer, starting_contexts};
use crate::inter::mvpred::{
    FrameMotion, Motion, MotionField, Vector, merge_candidates, predict_mv,
};
use crate::inter::{Mv, mv_in_bounds};
use crate::intra::DC;
use crate::learned::{self, FilterModel};
use crate::parallel::Workers;
use crate::partition::{SB_SIZE, UNIT_LOG2, UnitGrid, inside};
use crate::picture::{Picture, Sample};
use crate::reconstruct::{
    CodedCu, Prediction, commit_info, reconstruct_cu, skip_bit, tx_split_allowed,
};
use crate::syntax::{
    chroma_mode_options, most_probable_modes, neighbour_count, predicted_qp, read_chroma_mode,
    read_delta_qp, read_luma_mode, read_mvd, read_truncated_unary,
};
use codeclab_video::{AnyFrame, Frame, VideoFormat};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Read;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Frames a decoder holds back for display order: a packet's display index may lead the next
/// frame to show by less than this.
pub const MAX_REORDER: u64 = 32;

/// Coded size: the display size rounded up to whole 8x8 luma blocks.
pub fn coded_size(format: &VideoFormat) -> (usize, usize) {
    (
        format.width.next_multiple_of(8),
        format.height.next_multiple_of(8),
    )
}

/// A decoded picture kept for prediction, with the contexts its frame ended with and the
/// motion it was coded with.
struct Stored<T: Sample> {
    picture: Picture<T>,
    carried: CarriedContexts,
    motion: MotionField,
    /// The learned filter's model in force after this frame.
    filter: Option<Arc<FilterModel>>,
}

/// Memory of decoded pictures that nothing holds any more, which the next frames decode into:
/// fresh pages cost a fault and a clear each.
type Spare<T> = Arc<Mutex<Vec<Stored<T>>>>;

fn lock<T: Sample>(spare: &Spare<T>) -> MutexGuard<'_, Vec<Stored<T>>> {
    // Pushes and pops cannot leave the list half changed.
    spare.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A decoded picture shared by the frames predicting from it and the decoder; whichever lets
/// go of it last, a frame finishing on a worker or the decoder, gives its memory back.
struct Shared<T: Sample> {
    stored: Option<Stored<T>>,
    spare: Spare<T>,
}

impl<T: Sample> Deref for Shared<T> {
    type Target = Stored<T>;

    fn deref(&self) -> &Stored<T> {
        self.stored.as_ref().expect("taken only when dropped")
    }
}

impl<T: Sample> Drop for Shared<T> {
    fn drop(&mut self) {
        if let Some(stored) = self.stored.take() {
            lock(&self.spare).push(stored);
        }
    }
}

/// The decoded pictures kept for prediction by display index, in the sample type of the
/// stream's depth.
enum Store {
    U8(Pictures<u8>),
    U16(Pictures<u16>),
}

impl Store {
    fn new(bit_depth: u8, threads: usize) -> Store {
        if bit_depth > 8 {
            Store::U16(Pictures::new(threads))
        } else {
            Store::U8(Pictures::new(threads))
        }
    }

    /// Frames being decoded.
    fn running(&self) -> usize {
        match self {
            Store::U8(store) => store.workers.running(),
            Store::U16(store) => store.workers.running(),
        }
    }

    /// Decoded frames not yet shown.
    fn unshown(&self) -> usize {
        match self {
            Store::U8(store) => store.unshown.len(),
            Store::U16(store) => store.unshown.len(),
        }
    }

    /// The display-size frame of the picture at display index `poc` once it is decoded.
    fn show(&mut self, poc: u64, (width, height): (usize, usize)) -> Option<AnyFrame> {
        Some(match self {
            Store::U8(store) => AnyFrame::U8(store.show(poc, width, height)?),
            Store::U16(store) => AnyFrame::U16(store.show(poc, width, height)?),
        })
    }
}

/// A decoded picture with what later frames predicting from it need and the unit grid it was
/// decoded with, or why it failed.
type Decoded<T> = (u64, FrameKind, Result<(Stored<T>, UnitGrid)>);

/// The memory a frame is decoded into: a picture with a motion field and a unit grid.
struct FrameMemory<T: Sample> {
    picture: Picture<T>,
    motion: MotionField,
    grid: UnitGrid,
}

/// Pictures kept for prediction, decoded pictures not yet shown, the memory of pictures, unit
/// grids and output frames no longer needed, which the next frames reuse, and the frames being
/// decoded.
struct Pictures<T: Sample> {
    kept: BTreeMap<u64, Arc<Shared<T>>>,
    /// A picture's display frame is cut when its turn comes rather than when it is decoded: a
    /// reference picture then does not wait twice over, and the only output frames are those
    /// the caller holds.
    unshown: BTreeMap<u64, Arc<Shared<T>>>,
    spare: Spare<T>,
    spare_grids: Vec<UnitGrid>,
    spare_frames: Vec<Frame<T>>,
    workers: Workers<Decoded<T>>,
}

impl<T: Sample> Pictures<T> {
    fn new(threads: usize) -> Self {
        Pictures {
            kept: BTreeMap::new(),
            unshown: BTreeMap::new(),
            spare: Spare::default(),
            spare_grids: Vec::new(),
            spare_frames: Vec::new(),
            workers: Workers::new(threads),
        }
    }

    fn show(&mut self, poc: u64, width: usize, height: usize) -> Option<Frame<T>> {
        let shared = self.unshown.remove(&poc)?;
        let spare = self.spare_frames.pop();
        Some(shared.picture.to_frame_in(width, height, spare))
    }
}

/// A frame packet read and not yet decoded.
struct Pending {
    kind: FrameKind,
    qp: u8,
    poc: u64,
    /// Display indices of the pictures it predicts from, nearest first.
    references: Vec<u64>,
    payload: Vec<u8>,
}

/// Packets read ahead when decoding on several threads: enough to hold two mini-GOPs of the
/// longest kind, whose frames of one level of the hierarchy decode in parallel.
const READ_AHEAD: usize = 32;

/// Decodes a stream frame by frame from any reader; frames come as `AnyFrame::U8` for 8-bit
/// streams and `AnyFrame::U16` for deeper ones.
pub struct Decoder<R: Read> {
    reader: R,
    header: SequenceHeader,
    coded: (usize, usize),
    /// The display indices of the pictures kept for reference after the packets read so far,
    /// as the rule shared with the encoder keeps them in coding order.
    layout: PictureBuffer<u64>,
    pictures: Store,
    /// Packets read and not yet decoded, in coding order.
    pending: VecDeque<Pending>,
    threads: usize,
    next_display: u64,
    /// Display indices read, from the first one whose frame is not yet read on: a packet may
    /// lead the first missing one by less than `MAX_REORDER`.
    read_from: u64,
    read: BTreeSet<u64>,
    last_poc: u64,
    crc: Crc32,
    max_packet: u64,
    finished: bool,
}

impl<R: Read> Decoder<R> {
    pub fn new(reader: R) -> Result<Self> {
        Self::with_limits(reader, DecoderLimits::default())
    }

    /// Reads the header; refuses geometry beyond `limits` before allocating anything.
    pub fn with_limits(mut reader: R, limits: DecoderLimits) -> Result<Self> {
        let mut crc = Crc32::default();
        let header = SequenceHeader::read(&mut reader, &limits, &mut crc)?;
        let coded = coded_size(&header.format);
        // A packet larger than this cannot come from the encoder (levels are bounded).
        let max_packet = 64 * (coded.0 * coded.1) as u64 + 4096;
        Ok(Decoder {
            reader,
            layout: PictureBuffer::new(header.reference_frames),
            pictures: Store::new(header.format.bit_depth, 1),
            header,
            coded,
            pending: VecDeque::new(),
            threads: 1,
            next_display: 0,
            read_from: 0,
            read: BTreeSet::new(),
            last_poc: 0,
            crc,
            max_packet,
            finished: false,
        })
    }

    /// Decodes frames on `threads` threads (at least one), before the first frame: each frame
    /// starts once its references are decoded, found up to `READ_AHEAD` packets ahead. The
    /// frames are the same at any count.
    pub fn set_threads(&mut self, threads: usize) {
        assert!(
            self.pictures.running() == 0,
            "threads are set before the first frame"
        );
        self.threads = threads.max(1);
        self.pictures = Store::new(self.header.format.bit_depth, self.threads);
    }

    pub fn header(&self) -> &SequenceHeader {
        &self.header
    }

    pub fn format(&self) -> VideoFormat {
        self.header.format
    }

    /// The next decoded frame in display order, or `None` after the last one (the checksum has
    /// then been verified).
    pub fn next_frame(&mut self) -> Result<Option<AnyFrame>> {
        loop {
            let size = (self.header.format.width, self.header.format.height);
            if let Some(frame) = self.pictures.show(self.next_display, size) {
                self.next_display += 1;
                return Ok(Some(frame));
            }
            let read_ahead = if self.threads > 1 { READ_AHEAD } else { 1 };
            while !self.finished && self.pending.len() < read_ahead {
                self.read_packet()?;
            }
            if self.finished && self.pending.is_empty() && self.pictures.running() == 0 {
                if self.pictures.unshown() == 0 {
                    return Ok(None);
                }
                return Err(CodecError::Corrupt("a frame is missing from display order"));
            }
            self.decode_ready()?;
        }
    }

    /// Gives back a frame from [`Decoder::next_frame`] that the caller is done with: a later
    /// frame is written into its memory instead of fresh memory. Optional; frames of another
    /// size or sample type are dropped.
    pub fn recycle(&mut self, frame: AnyFrame) {
        match (&mut self.pictures, frame) {
            (Store::U8(store), AnyFrame::U8(frame)) => store.spare_frames.push(frame),
            (Store::U16(store), AnyFrame::U16(frame)) => store.spare_frames.push(frame),
            _ => {}
        }
    }

    /// Reads one packet into `pending`, or the end marker and checksum.
    fn read_packet(&mut self) -> Result<()> {
        let size = read_size(&mut self.reader, &mut self.crc)?;
        if size == 0 {
            let mut stored = [0u8; 4];
            read_exact(&mut self.reader, &mut stored)?;
            self.finished = true;
            if u32::from_le_bytes(stored) != self.crc.value() {
                return Err(CodecError::ChecksumMismatch);
            }
            return Ok(());
        }
        if size > self.max_packet {
            return Err(CodecError::Corrupt(
                "frame packet larger than the picture allows",
            ));
        }
        let mut packet = vec![0u8; size as usize];
        read_exact(&mut self.reader, &mut packet)?;
        self.crc.update(&packet);
        let (kind, qp, poc, used) = self.parse_packet(&packet)?;
        self.layout.prepare(kind);
        let references: Vec<u64> = self
            .layout
            .references(poc, kind)
            .into_iter()
            .copied()
            .collect();
        if kind != FrameKind::Key && references.is_empty() {
            return Err(CodecError::Corrupt("predicted frame without a reference"));
        }
        self.layout.insert(poc, kind, poc)?;
        packet.drain(..used);
        self.pending.push_back(Pending {
            kind,
            qp,
            poc,
            references,
            payload: packet,
        });
        Ok(())
    }

    /// The kind, QP and display index of a packet, and where its payload starts.
    fn parse_packet(&mut self, packet: &[u8]) -> Result<(FrameKind, u8, u64, usize)> {
        let [kind, qp, rest @ ..] = packet else {
            return Err(CodecError::Corrupt("frame packet too short"));
        };
        let (kind, qp) = (FrameKind::from_code(*kind)?, *qp);
        if qp > crate::quant::MAX_QP {
            return Err(CodecError::Corrupt("QP out of range"));
        }
        let (delta, used) = read_signed(rest)?;
        let poc = i64::try_from(self.last_poc)
            .ok()
            .and_then(|last| last.checked_add(delta))
            .and_then(|poc| u64::try_from(poc).ok())
            .ok_or(CodecError::Corrupt("display index out of range"))?;
        if poc < self.read_from || poc >= self.read_from + MAX_REORDER || self.read.contains(&poc) {
            return Err(CodecError::Corrupt("display index out of order"));
        }
        self.read.insert(poc);
        while self.read.remove(&self.read_from) {
            self.read_from += 1;
        }
        self.last_poc = poc;
        Ok((kind, qp, poc, 2 + used))
    }

    /// Starts every pending frame whose references are decoded (the first always is, once
    /// the frames before it are), and waits for one to finish.
    fn decode_ready(&mut self) -> Result<()> {
        let (header, coded) = (&self.header, self.coded);
        let (pending, layout) = (&mut self.pending, &self.layout);
        match &mut self.pictures {
            Store::U8(store) => decode_next(header, coded, store, pending, layout),
            Store::U16(store) => decode_next(header, coded, store, pending, layout),
        }
    }
}

/// Starts the frames of `pending` whose references are all kept and waits for one to finish;
/// keeps the pictures later frames predict from and lets go of what neither the buffer's
/// layout nor a pending frame needs.
fn decode_next<T: Sample>(
    header: &SequenceHeader,
    coded: (usize, usize),
    pictures: &mut Pictures<T>,
    pending: &mut VecDeque<Pending>,
    layout: &PictureBuffer<u64>,
) -> Result<()> {
    pictures.start_ready(header, coded, pending);
    pictures.finish_next(pending, layout)?;
    // The frames the finished one held back start before the caller copies out the frames now
    // due, so that no thread waits meanwhile; on the caller's thread they would only be
    // decoded ahead of their turn.
    if pictures.workers.threads() > 1 {
        pictures.start_ready(header, coded, pending);
    }
    Ok(())
}

impl<T: Sample> Pictures<T> {
    /// Starts the pending frames whose references are all kept, in coding order, one a thread
    /// at most at once: a frame waiting for a thread would hold a picture for nothing, and
    /// fresh pictures cost page faults.
    fn start_ready(
        &mut self,
        header: &SequenceHeader,
        coded: (usize, usize),
        pending: &mut VecDeque<Pending>,
    ) {
        let mut i = 0;
        while i < pending.len() && self.workers.running() < self.workers.threads() {
            let kept = &self.kept;
            if !pending[i]
                .references
                .iter()
                .all(|poc| kept.contains_key(poc))
            {
                i += 1;
                continue;
            }
            let packet = pending.remove(i).expect("i < len");
            let references: Vec<Arc<Shared<T>>> = packet
                .references
                .iter()
                .map(|poc| Arc::clone(&kept[poc]))
                .collect();
            let memory = self.memory(coded, u32::from(header.format.bit_depth));
            let header = header.clone();
            self.workers.submit(move || {
                let stored: Vec<&Stored<T>> = references.iter().map(|r| &***r).collect();
                let decoded = decode_picture(&header, coded, &stored, &packet, memory);
                (packet.poc, packet.kind, decoded)
            });
        }
    }

    /// Memory for the next frame: what finished frames left, else memory allocated here, on
    /// the caller's thread as on one thread, whose allocator keeps what a dropped decoder gives
    /// back for the next one (pool threads' arenas hand it to the kernel). The picture and the
    /// field are left untouched, so that fresh pages fault in on the worker that writes them.
    fn memory(&mut self, coded: (usize, usize), bit_depth: u32) -> FrameMemory<T> {
        let spare_grid = self.spare_grids.pop();
        let grid = spare_grid.unwrap_or_else(|| UnitGrid::new(coded.0, coded.1));
        let (picture, motion) = match lock(&self.spare).pop() {
            Some(stored) => (stored.picture, stored.motion),
            None => (
                Picture::zeroed(coded.0, coded.1, bit_depth),
                MotionField::with_room_for(&grid),
            ),
        };
        FrameMemory {
            picture,
            motion,
            grid,
        }
    }

    /// Waits for the next frame to finish and keeps its picture for display and, when later
    /// frames predict from it, for prediction.
    fn finish_next(
        &mut self,
        pending: &VecDeque<Pending>,
        layout: &PictureBuffer<u64>,
    ) -> Result<()> {
        let (poc, kind, decoded) = self.workers.next_finished().expect(
            "the first pending frame has its references once the frames before it are done",
        );
        let (stored, grid) = decoded?;
        self.spare_grids.push(grid);
        let shared = Arc::new(Shared {
            stored: Some(stored),
            spare: Arc::clone(&self.spare),
        });
        if kind.is_reference() {
            self.kept.insert(poc, Arc::clone(&shared));
        }
        self.unshown.insert(poc, shared);
        // A frame still decoding from a picture let go of here gives it back when it finishes.
        self.kept.retain(|poc, _| {
            layout.get(*poc).is_some() || pending.iter().any(|p| p.references.contains(poc))
        });
        Ok(())
    }
}

/// Decodes the payload of a packet predicted from `stored` (its reference list) into the picture
/// in `memory` and returns it with what a later frame predicting from it needs, and the unit
/// grid for the next frame to reuse.
fn decode_picture<T: Sample>(
    header: &SequenceHeader,
    coded: (usize, usize),
    stored: &[&Stored<T>],
    packet: &Pending,
    memory: FrameMemory<T>,
) -> Result<(Stored<T>, UnitGrid)> {
    let Pending { kind, qp, poc, .. } = *packet;
    let references: Vec<&Picture<T>> = stored.iter().map(|s| &s.picture).collect();
    let contexts = if header.context_carry {
        starting_contexts(kind, qp, stored.iter().map(|s| &s.carried))
    } else {
        Contexts::default()
    };
    #[cfg(test)]
    crate::gop::STARTED.with_borrow_mut(|started| started.push((poc, contexts.clone())));
    let fields: Vec<&MotionField> = stored.iter().map(|s| &s.motion).collect();
    let motion = FrameMotion::new(
        poc,
        kind.bi_predicted(),
        &fields,
        header.temporal_mvp,
        header.bi_merge,
    );
    let mut frame = FrameDecoder {
        header,
        coded,
        references: &references,
        motion,
        qp,
        kind,
        reader: RangeDecoder::new(&packet.payload),
        contexts,
        // Every unit is recorded before anything reads it (neighbours only once decoded), so a
        // used grid serves as well as a new one.
        grid: memory.grid,
        // Every sample of the coded area is reconstructed before anything reads it, and
        // `extend_edges` rewrites the border, so a used picture serves as well as a new one.
        picture: memory.picture,
        spare_levels: Vec::new(),
    };
    for sb_y in (0..coded.1).step_by(SB_SIZE) {
        for sb_x in (0..coded.0).step_by(SB_SIZE) {
            frame.decode_node(sb_x, sb_y, crate::partition::SB_LOG2)?;
        }
        // Garbage can make a frame read zeros forever; stop as soon as it cannot be valid.
        if frame.reader.overrun() {
            return Err(CodecError::Truncated);
        }
    }
    if header.deblock {
        deblock(
            &mut frame.picture,
            &frame.grid,
            &DeblockParams {
                chroma_qp_offset: header.chroma_qp_offset,
                beta_offset: header.deblock_beta_offset,
                tc_offset: header.deblock_tc_offset,
            },
        );
    }
    if header.sao {
        let (r, ctx) = (&mut frame.reader, &mut frame.contexts.sao);
        crate::sao::decode(r, ctx, &mut frame.picture)?;
    }
    let filter = match header.learned_filter {
        Some(shape) => {
            let inherited = stored.first().and_then(|s| s.filter.clone());
            let superblocks = (coded.0.div_ceil(SB_SIZE), coded.1.div_ceil(SB_SIZE));
            let (r, ctx) = (&mut frame.reader, &mut frame.contexts.learned_filter);
            let (new_model, applied) =
                learned::read_frame(r, ctx, shape, inherited.is_some(), superblocks)?;
            let model = new_model.map(Arc::new).or(inherited);
            if let (Some(model), Some(applied)) = (&model, &applied) {
                let mut scratch = learned::FilterScratch::default();
                learned::apply(&mut frame.picture, model, applied, &mut scratch);
            }
            model
        }
        None => None,
    };
    let reference_pocs = frame.motion.reference_pocs();
    let motion = MotionField::new_in(poc, &frame.grid, reference_pocs, Some(memory.motion));
    let (mut picture, contexts, grid) = (frame.picture, frame.contexts, frame.grid);
    picture.extend_edges();
    let carried = CarriedContexts { kind, qp, contexts };
    let stored = Stored {
        picture,
        carried,
        motion,
        filter,
    };
    Ok((stored, grid))
}

struct FrameDecoder<'a, T: Sample> {
    header: &'a SequenceHeader,
    coded: (usize, usize),
    references: &'a [&'a Picture<T>],
    motion: FrameMotion<'a>,
    /// The frame's QP: every coding unit's, or the fallback of their prediction.
    qp: u8,
    kind: FrameKind,
    reader: RangeDecoder<'a>,
    contexts: Contexts,
    grid: UnitGrid,
    picture: Picture<T>,
    /// Level buffers of reconstructed coding units, which the next ones read into: no
    /// allocation per transform block.
    spare_levels: Vec<Vec<i32>>,
}

impl<T: Sample> FrameDecoder<'_, T> {
    fn decode_node(&mut self, x: usize, y: usize, log2: u32) -> Result<()> {
        if x >= self.coded.0 || y >= self.coded.1 {
            return Ok(());
        }
        let split = split_is_implied(x, y, log2, self.header, self.coded) || {
            split_is_coded(log2, self.header) && {
                let ctx = split_context(&self.grid, x, y, log2);
                self.reader.bit(&mut self.contexts.split[ctx.0][ctx.1])
            }
        };
        if split {
            let half = 1 << (log2 - 1);
            for (dx, dy) in [(0, 0), (half, 0), (0, half), (half, half)] {
                self.decode_node(x + dx, y + dy, log2 - 1)?;
            }
            return Ok(());
        }
        let cu = self.parse_cu(x, y, log2)?;
        reconstruct_cu(
            &mut self.picture,
            &self.grid,
            self.references,
            &cu,
            (self.header.chroma_qp_offset, self.header.intra_dst),
        );
        commit_info(&mut self.grid, &cu);
        let [cb, cr] = cu.chroma;
        let levels = cu.luma.into_iter().chain([cb, cr]).flatten();
        self.spare_levels.extend(levels);
        Ok(())
    }

    fn parse_cu(&mut self, x: usize, y: usize, log2: u32) -> Result<CodedCu> {
        let (cx, cy) = (x >> UNIT_LOG2, y >> UNIT_LOG2);
        let size_units = 1usize << (log2 - UNIT_LOG2);
        let size = 1usize << log2;
        let r = &mut self.reader;
        let ctx = &mut self.contexts;
        let mut skip = false;
        let intra = if self.kind != FrameKind::Key {
            skip = r.bit(&mut ctx.skip[neighbour_count(&self.grid, cx, cy, |i| i.skip)]);
            !skip && r.bit(&mut ctx.intra[neighbour_count(&self.grid, cx, cy, |i| i.intra)])
        } else {
            true
        };
        let prediction = if intra {
            let mode_of = |info: Option<&crate::partition::UnitInfo>| {
                info.filter(|i| i.intra).map_or(DC, |i| i.luma_mode)
            };
            let left = mode_of(self.grid.neighbour(cx as isize - 1, cy as isize, cx, cy));
            let above = mode_of(self.grid.neighbour(cx as isize, cy as isize - 1, cx, cy));
            let luma_mode = read_luma_mode(r, ctx, most_probable_modes(left, above));
            let chroma_option = read_chroma_mode(r, ctx);
            Prediction::Intra {
                luma_mode,
                chroma_option: chroma_option as u8,
                chroma_mode: chroma_mode_options(luma_mode)[chroma_option],
            }
        } else {
            let reference_count = self.references.len();
            let bi_predicted = self.kind.bi_predicted();
            let merged = skip || r.bit(&mut ctx.merge_flag);
            let (motion, merge_index, mvd) = if merged {
                let count = usize::from(self.header.merge_candidates);
                let index = read_truncated_unary(r, &mut ctx.merge_index, count);
                let list = merge_candidates(&self.grid, &self.motion, cx, cy, size_units, count);
                (list[index], Some(index as u8), [Mv::ZERO; 2])
            } else {
                let two = bi_predicted && r.bit(&mut ctx.bi);
                let read_vector = |r: &mut RangeDecoder, ctx: &mut Contexts| -> Result<_> {
                    let ref_idx = read_truncated_unary(r, &mut ctx.ref_idx, reference_count) as u8;
                    let mvd = read_mvd(r, ctx)?;
                    let mvp = predict_mv(&self.grid, &self.motion, cx, cy, size_units, ref_idx);
                    let mv = Mv::new(mvp.x.saturating_add(mvd.x), mvp.y.saturating_add(mvd.y));
                    Ok((Vector { ref_idx, mv }, mvd))
                };
                let (first, first_mvd) = read_vector(r, ctx)?;
                let second = if two {
                    Some(read_vector(r, ctx)?)
                } else {
                    None
                };
                (
                    Motion {
                        first,
                        second: second.map(|(v, _)| v),
                    },
                    None,
                    [first_mvd, second.map_or(Mv::ZERO, |(_, d)| d)],
                )
            };
            for vector in motion.vectors() {
                if usize::from(vector.ref_idx) >= reference_count
                    || !mv_in_bounds(x, y, size, size, vector.mv, self.coded)
                {
                    return Err(CodecError::Corrupt("motion vector outside the reference"));
                }
            }
            Prediction::Inter {
                motion,
                merge_index,
                mvd,
            }
        };
        let qp = if self.header.block_qp {
            let predicted = predicted_qp(&self.grid, cx, cy, self.qp);
            if skip {
                predicted
            } else {
                let qp = i32::from(predicted) + read_delta_qp(r, ctx);
                if !(0..=i32::from(crate::quant::MAX_QP)).contains(&qp) {
                    return Err(CodecError::Corrupt("QP out of range"));
                }
                qp as u8
            }
        } else {
            self.qp
        };
        let mut cu = CodedCu {
            x,
            y,
            log2,
            skip,
            qp,
            prediction,
            luma: Vec::new(),
            chroma: [None, None],
            transform_skip: 0,
            tx_split: false,
        };
        if !skip {
            if tx_split_allowed(self.header.residual_quadtree, log2, intra) {
                cu.tx_split = r.bit(&mut ctx.tx_split[log2 as usize - 4]);
            }
            let kind = usize::from(!intra);
            let luma_log2 = cu.luma_tx_log2();
            let blocks = 1usize << (2 * (log2 - luma_log2));
            for i in 0..blocks {
                let spare = &mut self.spare_levels;
                let block = (luma_log2, true);
                let (levels, skip) = read_block(r, ctx, self.header, kind, block, spare)?;
                cu.luma.push(levels);
                cu.transform_skip |= if skip { skip_bit(true, i) } else { 0 };
            }
            let chroma_log2 = cu.chroma_tx_log2();
            for p in 0..2 {
                let spare = &mut self.spare_levels;
                let block = (chroma_log2, false);
                let (levels, skip) = read_block(r, ctx, self.header, kind, block, spare)?;
                cu.chroma[p] = levels;
                cu.transform_skip |= if skip { skip_bit(false, p) } else { 0 };
            }
        } else {
            let blocks = 1usize << (2 * (log2 - cu.luma_tx_log2()));
            cu.luma = vec![None; blocks];
        }
        Ok(cu)
    }
}

/// Reads what `write_block` writes: the levels, if any (into a buffer of `spare` where there
/// is one), and the transform skip flag.
fn read_block(
    r: &mut RangeDecoder,
    ctx: &mut Contexts,
    header: &SequenceHeader,
    kind: usize,
    (log2n, luma): (u32, bool),
    spare: &mut Vec<Vec<i32>>,
) -> Result<(Option<Vec<i32>>, bool)> {
    let pt = usize::from(!luma);
    if !r.bit(&mut ctx.cbf[pt][kind]) {
        return Ok((None, false));
    }
    let skip = header.transform_skip && log2n == 2 && r.bit(&mut ctx.transform_skip[pt]);
    // `read_levels` clears the block, so a used buffer's contents do not matter.
    let mut levels = spare.pop().unwrap_or_default();
    levels.resize(1 << (2 * log2n), 0);
    crate::residual::read_levels(r, ctx, &mut levels, log2n, luma, header.sign_hiding)?;
    Ok((Some(levels), skip))
}

/// A node is split without a flag when it crosses the picture edge or exceeds the largest
/// coding unit.
pub fn split_is_implied(
    x: usize,
    y: usize,
    log2: u32,
    header: &SequenceHeader,
    coded: (usize, usize),
) -> bool {
    log2 > u32::from(header.max_block_log2) || !inside(x, y, log2, coded.0, coded.1)
}

/// A split flag is coded only above the smallest coding unit.
pub fn split_is_coded(log2: u32, header: &SequenceHeader) -> bool {
    log2 > u32::from(header.min_block_log2)
}

/// Context of the split flag: neighbours with smaller coding units, and the node size.
pub fn split_context(grid: &UnitGrid, x: usize, y: usize, log2: u32) -> (usize, usize) {
    let (cx, cy) = (x >> UNIT_LOG2, y >> UNIT_LOG2);
    let deeper = neighbour_count(grid, cx, cy, |i| u32::from(i.cu_log2) < log2);
    (deeper, (6 - log2.min(6)) as usize)
}
