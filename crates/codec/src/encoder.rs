//! The encoder: rate-distortion optimised choice of partition, prediction and levels for each
//! superblock, then the real entropy-coding pass over the decisions.

use crate::bitstream::{Crc32, SequenceHeader, write_signed, write_size};
use crate::deblock::{DeblockParams, deblock};
use crate::decoder::{coded_size, split_context, split_is_coded, split_is_implied};
use crate::entropy::{Contexts, CostCounter, RangeEncoder, Writer};
use crate::error::{CodecError, Result};
use crate::genome::Genome;
use crate::gop::{
    CarriedContexts, FrameKind, PictureBuffer, Scheduled, mini_gop_order, starting_contexts,
};
use crate::inter::mvpred::{
    FrameMotion, Motion, MotionField, Vector, merge_candidates, predict_mv, spatial_candidates,
};
use crate::inter::search::{HalfSamplePlanes, SearchParams, search, vector_rate_cost};
use crate::inter::{Mv, mv_in_bounds};
use crate::intra::{DC, Edges, HORIZONTAL, MODE_COUNT, PLANAR, VERTICAL, predict};
use crate::learned::{self, FilterModel, FilterShape};
use crate::lookahead::{InterCosts, LowRes, inter_costs, is_scene_cut};
use crate::parallel::Workers;
use crate::partition::{MAX_TX_LOG2, SB_LOG2, SB_SIZE, UNIT_LOG2, UnitGrid, UnitInfo};
use crate::picture::{BIT_DEPTHS, PaddedPlane, Picture, Sample, qp_offset};
use crate::quant::quantize;
use crate::ratecontrol::{InFlight, RateController, RateMode};
use crate::rdo::{RdCost, lambda, satd, sse};
use crate::reconstruct::{
    CodedCu, Prediction, add_inter_residuals, add_residual_with, chroma_qp, commit_info,
    predict_motion_chroma, predict_motion_luma, reconstruct_cu, skip_bit, tx_split_allowed,
};
use crate::residual::{levels_cost, write_levels};
use crate::syntax::{
    chroma_mode_options, most_probable_modes, neighbour_count, predicted_qp, write_chroma_mode,
    write_delta_qp, write_luma_mode, write_mvd, write_truncated_unary,
};
use crate::temporal::{QpMap, WindowFrame, propagate};
use crate::transform::{TxType, block_transform, forward};
use codeclab_video::{ChromaSampling, Frame, VideoFormat};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// One coded frame: the bytes to append to the stream (the header before the first frame) and
/// the encoder's reconstruction, which the decoder reproduces exactly. Frames come in coding
/// order; `display_index` places each in display order.
#[derive(Clone, Debug)]
pub struct EncodedFrame<T: Sample = u8> {
    pub bytes: Vec<u8>,
    pub reconstruction: Frame<T>,
    pub display_index: u64,
    pub kind: FrameKind,
    pub qp: u8,
}

/// A frame received and not yet planned.
struct Waiting<T: Sample> {
    source: Picture<T>,
    /// It starts a new scene.
    cut: bool,
}

/// A coded picture kept for prediction, with the half-sample planes motion search uses, the
/// contexts its frame ended with and the motion it was coded with.
struct Reference<T: Sample> {
    picture: Picture<T>,
    search: HalfSamplePlanes<T>,
    carried: CarriedContexts,
    motion: MotionField,
    /// The learned filter's model in force after it, which frames predicting from it first
    /// inherit.
    filter: Option<Arc<FilterModel>>,
}

/// A frame planned for coding with everything its coding depends on fixed, so that it codes
/// the same whenever its references are ready.
struct Planned<T: Sample> {
    scheduled: Scheduled,
    kind: FrameKind,
    /// Display indices of the pictures it predicts from, nearest first.
    references: Vec<u64>,
    source: Picture<T>,
    qp_map: Option<QpMap>,
    /// Set when it is planned; for a target bitrate, when it starts, after every frame before
    /// it is in the stream.
    qp: Option<(u8, InFlight)>,
}

/// A frame coded by a worker, waiting for its place in the stream.
struct Coded<T: Sample> {
    poc: u64,
    kind: FrameKind,
    qp: u8,
    in_flight: InFlight,
    payload: Vec<u8>,
    reconstruction: Frame<T>,
    reference: Option<Reference<T>>,
}

/// Encodes frames of `T` samples: `u8` for 8-bit video, `u16` for deeper video.
pub struct Encoder<T: Sample = u8> {
    header: SequenceHeader,
    genome: Genome,
    coded: (usize, usize),
    rate: RateController,
    /// The display indices of the pictures kept for prediction after the frames planned so
    /// far, as a decoder's buffer holds them in coding order.
    layout: PictureBuffer<u64>,
    /// Coded pictures that planned frames, or frames not yet planned, may predict from.
    references: HashMap<u64, Arc<Reference<T>>>,
    /// Frames planned and not yet started, in coding order.
    planned: VecDeque<Planned<T>>,
    /// Display indices of the frames planned and not yet in the stream, in coding order, with
    /// each one's result once it is coded.
    in_coding: VecDeque<(u64, Option<Coded<T>>)>,
    workers: Workers<Coded<T>>,
    /// Frames received and not yet planned, in display order from `waiting_from`.
    waiting: VecDeque<Waiting<T>>,
    waiting_from: u64,
    /// Lookahead analysis of the frames from the last anchor on.
    analysis: BTreeMap<u64, LowRes>,
    /// Costs of predicting the frame at the first display index from the second.
    inter: HashMap<(u64, u64), InterCosts>,
    /// QP offsets temporal rate-distortion chose for the frames of the mini-GOP being coded.
    qp_maps: HashMap<u64, QpMap>,
    /// Display index of the last key frame planned.
    last_key: u64,
    /// Display index of the last anchor planned.
    last_anchor: Option<u64>,
    /// Display index of the last frame coded (packets code theirs relative to it).
    last_poc: u64,
    frames: u64,
    crc: Crc32,
}

impl<T: Sample> Encoder<T> {
    pub fn new(format: VideoFormat, genome: Genome, mode: RateMode) -> Result<Self> {
        genome.validate()?;
        mode.validate()?;
        if !BIT_DEPTHS.contains(&format.bit_depth) || format.chroma != ChromaSampling::Cs420 {
            return Err(CodecError::UnsupportedFormat(format!(
                "{}-bit {:?} ({}- to {}-bit 4:2:0 only)",
                format.bit_depth,
                format.chroma,
                BIT_DEPTHS.start(),
                BIT_DEPTHS.end()
            )));
        }
        // 8-bit video is coded in bytes, deeper video in 16-bit samples.
        if (format.bit_depth > 8) != (std::mem::size_of::<T>() > 1) {
            return Err(CodecError::UnsupportedFormat(format!(
                "{}-bit video in {}-byte samples",
                format.bit_depth,
                std::mem::size_of::<T>()
            )));
        }
        let limits = crate::bitstream::header::DecoderLimits::default();
        if format.width == 0
            || format.height == 0
            || format.width > limits.max_width
            || format.height > limits.max_height
            || format.width * format.height > limits.max_pixels
        {
            return Err(CodecError::UnsupportedFormat(format!(
                "{}x{}",
                format.width, format.height
            )));
        }
        if format.fps.num == 0 || format.fps.den == 0 {
            return Err(CodecError::UnsupportedFormat("frame rate 0".into()));
        }
        let coded = coded_size(&format);
        let rate = RateController::new(
            mode,
            format.fps.as_f64(),
            format.width * format.height,
            &genome,
        );
        Ok(Encoder {
            header: SequenceHeader::new(format, &genome),
            layout: PictureBuffer::new(genome.reference_frames),
            references: HashMap::new(),
            planned: VecDeque::new(),
            in_coding: VecDeque::new(),
            workers: Workers::new(1),
            genome,
            coded,
            rate,
            waiting: VecDeque::new(),
            waiting_from: 0,
            analysis: BTreeMap::new(),
            inter: HashMap::new(),
            qp_maps: HashMap::new(),
            last_key: 0,
            last_anchor: None,
            last_poc: 0,
            frames: 0,
            crc: Crc32::default(),
        })
    }

    /// Codes frames on `threads` threads (at least one), before the first frame: each frame
    /// starts once its references are coded, so those of one level of a mini-GOP's hierarchy
    /// code together and the next mini-GOP's anchor starts beside the B frames of the last.
    /// The stream does not change with it.
    pub fn set_threads(&mut self, threads: usize) {
        assert!(
            self.unfinished() == 0,
            "threads are set before the first frame"
        );
        self.workers = Workers::new(threads.max(1));
    }

    /// Frames planned and not yet in the stream.
    fn unfinished(&self) -> usize {
        self.in_coding.len()
    }

    pub fn format(&self) -> VideoFormat {
        self.header.format
    }

    fn bit_depth(&self) -> u32 {
        u32::from(self.header.format.bit_depth)
    }

    /// Takes the next frame in display order; returns the frames this completes, in coding
    /// order (none while a mini-GOP is still being gathered).
    pub fn encode_frame(&mut self, frame: &Frame<T>) -> Result<Vec<EncodedFrame<T>>> {
        if !frame.matches(&self.header.format) {
            return Err(CodecError::FrameMismatch);
        }
        let mut source = Picture::new(self.coded.0, self.coded.1, self.bit_depth());
        source.load(frame);
        source.extend_edges();
        let poc = self.waiting_from + self.waiting.len() as u64;
        let threshold = self.genome.scene_cut_threshold;
        // Only scene cuts, temporal rate-distortion, rate control other than constant QP and
        // adaptive mini-GOPs read the lookahead's analysis.
        let rate_reads_costs = self.rate.needs_complexity();
        if threshold > 0.0
            || self.genome.temporal_rd
            || rate_reads_costs
            || self.genome.adaptive_gop
        {
            self.analysis.insert(poc, LowRes::new(&source.planes[0]));
        }
        if poc > 0 && (threshold > 0.0 || rate_reads_costs) {
            self.analyse_prediction(poc, poc - 1);
        }
        let cut = poc > 0
            && threshold > 0.0
            && is_scene_cut(
                &self.analysis[&poc],
                &self.inter[&(poc, poc - 1)],
                threshold,
            );
        self.waiting.push_back(Waiting { source, cut });
        self.code_ready(false)
    }

    /// Codes the frames still waiting, then ends the stream: the last frames, and the end marker
    /// and checksum (with the header if no frame was coded).
    pub fn finish(mut self) -> Result<(Vec<EncodedFrame<T>>, Vec<u8>)> {
        let frames = self.code_ready(true)?;
        let mut bytes = Vec::new();
        if self.frames == 0 {
            bytes.extend_from_slice(&self.header.to_bytes());
        }
        write_size(&mut bytes, 0);
        self.crc.update(&bytes);
        bytes.extend_from_slice(&self.crc.value().to_le_bytes());
        Ok((frames, bytes))
    }

    /// Plans every mini-GOP whose frames have all arrived (with `flush`, the rest too) and
    /// codes them; returns the frames that reach the stream, in coding order. With several
    /// threads two mini-GOPs may be in coding at once, the rest waits; flushing codes all.
    fn code_ready(&mut self, flush: bool) -> Result<Vec<EncodedFrame<T>>> {
        let mut out = Vec::new();
        loop {
            // With a target bitrate each QP follows the sizes of all frames before it, and the
            // next mini-GOP's share of the budget follows them too.
            if self.rate.follows_sizes() {
                self.code_until(0, &mut out)?;
            }
            let Some(group) = self.next_group(flush) else {
                break;
            };
            self.plan(&group, flush)?;
            self.start_ready();
        }
        let most = if flush || self.workers.threads() == 1 {
            0
        } else {
            2 * usize::from(self.genome.mini_gop)
        };
        self.code_until(most, &mut out)?;
        Ok(out)
    }

    /// Plans the frames of `group` (coding order): their references, QPs and temporal QP
    /// offsets, and their sources, leaving the frames after it waiting.
    fn plan(&mut self, group: &[(Scheduled, FrameKind)], flush: bool) -> Result<()> {
        let end = group
            .iter()
            .map(|(s, _)| s.poc)
            .max()
            .unwrap_or(self.waiting_from);
        if self.genome.temporal_rd {
            self.plan_temporal_rd(group);
        }
        if self.rate.needs_complexity() {
            let complexity = self.group_complexity(group, end);
            self.rate.set_complexity(complexity);
            // Once flushing, every frame waiting is coded: the stream's end is known.
            let frames_left = flush.then_some(self.waiting.len() as u64);
            // The frames after the mini-GOP weigh in too, so that a key frame alone is not
            // given a single frame's share.
            let [costs, following] = self.planned_costs(group);
            let first = group[0].0.poc;
            let scene_cut = self.waiting[(first - self.waiting_from) as usize].cut;
            self.rate
                .begin_group(costs, following, frames_left, scene_cut);
        }
        let from = self.waiting_from;
        let count = (end + 1 - from) as usize;
        let mut sources: Vec<Option<Picture<T>>> = self
            .waiting
            .drain(..count)
            .map(|waiting| Some(waiting.source))
            .collect();
        self.waiting_from = end + 1;
        for &(scheduled, kind) in group {
            let poc = scheduled.poc;
            self.layout.prepare(kind);
            let references = self
                .layout
                .references(poc, kind)
                .into_iter()
                .copied()
                .collect();
            self.layout.insert(poc, kind, poc)?;
            let qp =
                (!self.rate.follows_sizes()).then(|| self.rate.frame_qp(kind, scheduled.layer));
            self.in_coding.push_back((poc, None));
            self.planned.push_back(Planned {
                scheduled,
                kind,
                references,
                source: sources[(poc - from) as usize]
                    .take()
                    .expect("a mini-GOP holds each frame once"),
                qp_map: self.qp_maps.remove(&poc),
                qp,
            });
            if kind.is_anchor() {
                self.last_anchor = Some(poc);
            }
            if kind == FrameKind::Key {
                self.last_key = poc;
            }
        }
        // Only the last anchor and the frames after it are compared with again.
        let keep = self.last_anchor.unwrap_or(0);
        self.analysis.retain(|&poc, _| poc >= keep);
        self.inter.retain(|&(poc, _), _| poc >= keep);
        self.qp_maps.clear();
        Ok(())
    }

    /// Mean lookahead cost per luma sample of predicting each frame from the one before, over
    /// the mini-GOP ending at `end` and the lookahead after it; a key frame's group is judged by
    /// the frames that follow it, the first frame alone by its intra cost.
    fn group_complexity(&self, group: &[(Scheduled, FrameKind)], end: u64) -> f64 {
        let last_received = self.waiting_from + self.waiting.len() as u64 - 1;
        let first = group.iter().map(|(s, _)| s.poc).min().unwrap_or(end);
        let last = (end + u64::from(self.genome.lookahead)).min(last_received);
        let samples = (self.coded.0 * self.coded.1) as f64;
        let frame_cost = |poc: u64| {
            let intra = &self.analysis[&poc].intra;
            let cost: u64 = match self.inter.get(&(poc, poc.wrapping_sub(1))) {
                Some(inter) => inter
                    .cost
                    .iter()
                    .zip(intra)
                    .map(|(&p, &i)| u64::from(p.min(i)))
                    .sum(),
                None => intra.iter().map(|&c| u64::from(c)).sum(),
            };
            cost as f64 / samples
        };
        let predicted: Vec<f64> = (first.max(1)..=last)
            .filter(|&poc| poc > first || !matches!(group[0].1, FrameKind::Key))
            .map(frame_cost)
            .collect();
        if predicted.is_empty() {
            frame_cost(first)
        } else {
            predicted.iter().sum::<f64>() / predicted.len() as f64
        }
    }

    /// Caches the lookahead costs of predicting the frame at `poc` from the one at `from`.
    fn analyse_prediction(&mut self, poc: u64, from: u64) {
        if !self.inter.contains_key(&(poc, from)) {
            let costs = inter_costs(&self.analysis[&poc], &self.analysis[&from]);
            self.inter.insert((poc, from), costs);
        }
    }

    /// The frames received after `group`, in the mini-GOPs they would likely be coded in, whole
    /// mini-GOPs until at least `at_least` frames (or all received).
    fn planned_after(
        &mut self,
        group: &[(Scheduled, FrameKind)],
        at_least: usize,
    ) -> Vec<(Scheduled, FrameKind)> {
        let last_received = self.waiting_from + self.waiting.len() as u64 - 1;
        let (mut last_anchor, mut last_key) = (self.last_anchor, self.last_key);
        let mut planned = Vec::new();
        let mut next = group.to_vec();
        loop {
            let mut end = 0;
            for &(scheduled, kind) in &next {
                end = end.max(scheduled.poc);
                if kind.is_anchor() {
                    last_anchor = Some(scheduled.poc);
                }
                if kind == FrameKind::Key {
                    last_key = scheduled.poc;
                }
            }
            if end >= last_received || planned.len() >= at_least {
                return planned;
            }
            match self.plan_group(end + 1, last_anchor, last_key, last_received, true) {
                Some(group) => {
                    planned.extend_from_slice(&group);
                    next = group;
                }
                None => return planned,
            }
        }
    }

    /// What each frame of `order` (coding order) predicts from, as a decoder's picture buffer of
    /// one reference per direction would give it, with the lookahead's costs of those
    /// predictions analysed.
    fn planned_references(&mut self, order: &[(u64, FrameKind)]) -> Vec<Vec<u64>> {
        let mut buffer = PictureBuffer::new(1);
        let mut references = Vec::with_capacity(order.len());
        for &(poc, kind) in order {
            buffer.prepare(kind);
            let list: Vec<u64> = buffer.references(poc, kind).into_iter().copied().collect();
            for &from in &list {
                self.analyse_prediction(poc, from);
            }
            references.push(list);
            // Cannot fail: one picture per display index, the structure's own B pictures.
            let _ = buffer.insert(poc, kind, poc);
        }
        references
    }

    /// The lookahead costs per luma sample of coding the mini-GOP's frames and those planned
    /// after it (at least a mini-GOP's worth, as far as the lookahead reaches), each predicted
    /// from the references it would likely have: the frames' kinds, layers and costs, in
    /// coding order, for the mini-GOP and for the frames after it.
    fn planned_costs(
        &mut self,
        group: &[(Scheduled, FrameKind)],
    ) -> [Vec<(FrameKind, u8, f64)>; 2] {
        let mut planned: Vec<(Scheduled, FrameKind)> = Vec::new();
        if let Some(anchor) = self.last_anchor.filter(|_| group[0].1 != FrameKind::Key) {
            let scheduled = Scheduled {
                poc: anchor,
                layer: 0,
                reference: true,
            };
            planned.push((scheduled, FrameKind::Predicted));
        }
        let skip = planned.len();
        planned.extend_from_slice(group);
        let after = self.planned_after(group, usize::from(self.genome.mini_gop));
        planned.extend_from_slice(&after);
        let order: Vec<(u64, FrameKind)> = planned.iter().map(|&(s, kind)| (s.poc, kind)).collect();
        let references = self.planned_references(&order);
        let samples = (self.coded.0 * self.coded.1) as f64;
        let mut costs: Vec<(FrameKind, u8, f64)> = Vec::with_capacity(planned.len());
        for ((scheduled, kind), list) in planned.iter().zip(&references).skip(skip) {
            let cost = self.prediction_cost(scheduled.poc, list) / samples;
            costs.push((*kind, scheduled.layer, cost));
        }
        let following = costs.split_off(group.len());
        [costs, following]
    }

    /// Runs temporal rate-distortion over the mini-GOP about to be coded and the frames after
    /// it that have arrived, laid out as they will likely be coded, and keeps the QP offsets of
    /// the mini-GOP's frames.
    fn plan_temporal_rd(&mut self, group: &[(Scheduled, FrameKind)]) {
        // Coding order: the anchor the mini-GOP predicts from, the mini-GOP, then the next ones.
        let mut order: Vec<(u64, FrameKind)> = Vec::new();
        if let Some(anchor) = self.last_anchor.filter(|_| group[0].1 != FrameKind::Key) {
            order.push((anchor, FrameKind::Predicted));
        }
        order.extend(group.iter().map(|&(s, kind)| (s.poc, kind)));
        let after = self.planned_after(group, usize::MAX);
        order.extend(after.iter().map(|&(s, kind)| (s.poc, kind)));
        let references = self.planned_references(&order);
        let index_of: HashMap<u64, usize> = order
            .iter()
            .enumerate()
            .map(|(i, &(poc, _))| (poc, i))
            .collect();
        let window: Vec<WindowFrame> = order
            .iter()
            .zip(&references)
            .map(|(&(poc, _), list)| WindowFrame {
                low: &self.analysis[&poc],
                predictions: list
                    .iter()
                    .map(|from| (index_of[from], &self.inter[&(poc, *from)]))
                    .collect(),
            })
            .collect();
        let maps = propagate(&window, self.genome.temporal_rd_strength);
        for ((poc, _), map) in order.iter().zip(maps) {
            if group.iter().any(|(s, _)| s.poc == *poc) {
                self.qp_maps.insert(*poc, map);
            }
        }
    }

    /// The next mini-GOP to code, once its frames and the lookahead after it have arrived.
    fn next_group(&mut self, flush: bool) -> Option<Vec<(Scheduled, FrameKind)>> {
        let received = self.waiting.len() as u64;
        if received == 0 {
            return None;
        }
        let last_received = self.waiting_from + received - 1;
        let group = self.plan_group(
            self.waiting_from,
            self.last_anchor,
            self.last_key,
            last_received,
            flush,
        )?;
        let end = group.iter().map(|(s, _)| s.poc).max()?;
        let lookahead = if self.genome.temporal_rd || self.rate.needs_complexity() {
            u64::from(self.genome.lookahead)
        } else {
            0
        };
        (flush || end + lookahead <= last_received).then_some(group)
    }

    /// The frame at `poc` (received) must be a key frame: the first, a scene cut, or `keyint`
    /// frames after the last key frame.
    fn is_key_position(&self, poc: u64, last_key: u64) -> bool {
        let waiting = &self.waiting[(poc - self.waiting_from) as usize];
        poc == 0 || waiting.cut || poc >= last_key + u64::from(self.genome.keyint)
    }

    /// The lookahead's cost of predicting the frame at `poc` from the frames at `references`:
    /// per block, the cheapest of its intra cost and its inter cost from each.
    fn prediction_cost(&mut self, poc: u64, references: &[u64]) -> f64 {
        for &from in references {
            self.analyse_prediction(poc, from);
        }
        let costs: Vec<&InterCosts> = references
            .iter()
            .map(|&from| &self.inter[&(poc, from)])
            .collect();
        let cost: u64 = self.analysis[&poc]
            .intra
            .iter()
            .enumerate()
            .map(|(i, &intra)| u64::from(costs.iter().fold(intra, |c, inter| c.min(inter.cost[i]))))
            .sum();
        cost as f64
    }

    // EVOLVE-BLOCK-START gop_structure
    /// The mini-GOP starting at `first` in coding order with each frame's kind: a key frame
    /// alone, or the frames up to the next anchor (`mini_gop` frames after the last one, fewer
    /// before a key frame or after `last_received` when flushing, or as `adaptive_gop` chooses),
    /// the anchor first. `None` while its frames have not all arrived.
    fn plan_group(
        &mut self,
        first: u64,
        last_anchor: Option<u64>,
        last_key: u64,
        last_received: u64,
        flush: bool,
    ) -> Option<Vec<(Scheduled, FrameKind)>> {
        let Some(previous) = last_anchor.filter(|_| !self.is_key_position(first, last_key)) else {
            let key = Scheduled {
                poc: first,
                layer: 0,
                reference: true,
            };
            return Some(vec![(key, FrameKind::Key)]);
        };
        let mut anchor = previous + u64::from(self.genome.mini_gop);
        if anchor > last_received {
            if !flush {
                return None;
            }
            anchor = last_received;
        }
        // Key frames start mini-GOPs of their own.
        if let Some(key) = (first + 1..=anchor).find(|&poc| self.is_key_position(poc, last_key)) {
            anchor = key - 1;
        }
        if self.genome.adaptive_gop {
            anchor = previous + self.adaptive_length(previous, anchor - previous);
        }
        let order = mini_gop_order(previous, anchor);
        Some(
            order
                .into_iter()
                .map(|s| {
                    let kind = if s.layer == 0 {
                        FrameKind::Predicted
                    } else {
                        FrameKind::Bi {
                            reference: s.reference,
                        }
                    };
                    (s, kind)
                })
                .collect(),
        )
    }

    /// The length of the mini-GOP after the anchor at `previous`, at most `longest` (x264's
    /// b-adapt in spirit): from one frame, the length doubles (up to `longest`) while one
    /// mini-GOP of the longer length costs no more than two of half of it over the same frames.
    /// Motion makes far predictions expensive and so stops it early; still content reaches the
    /// longest, whose deep B frames cost least. Growing from short mini-GOPs rather than
    /// splitting long ones keeps content that nothing predicts well at any distance (where
    /// every length costs about the same) from taking the longest.
    fn adaptive_length(&mut self, previous: u64, longest: u64) -> u64 {
        let mut length = 1;
        while length < longest {
            let longer = (2 * length).min(longest);
            let half = longer / 2;
            let one = self.structure_cost(previous, previous + longer);
            let two = self.structure_cost(previous, previous + half)
                + self.structure_cost(previous + half, previous + longer);
            if one > two {
                break;
            }
            length = longer;
        }
        length
    }

    /// Estimated cost of the mini-GOP from the anchor at `previous` to the one at `anchor`:
    /// the lookahead cost of each frame predicted from its references in the hierarchy (both
    /// neighbours for B frames), a B frame's weighted by 2^(-ΔQP/6) for its level's higher QP
    /// (bits roughly halve every 6 QP).
    fn structure_cost(&mut self, previous: u64, anchor: u64) -> f64 {
        let level_weight = (-f64::from(self.genome.b_layer_qp_offset) / 6.0).exp2();
        let mut cost = self.prediction_cost(anchor, &[previous]);
        let mut spans = vec![(previous, anchor, level_weight)];
        while let Some((low, high, weight)) = spans.pop() {
            if high - low < 2 {
                continue;
            }
            let middle = low + (high - low) / 2;
            cost += weight * self.prediction_cost(middle, &[low, high]);
            spans.push((low, middle, weight * level_weight));
            spans.push((middle, high, weight * level_weight));
        }
        cost
    }
    // EVOLVE-BLOCK-END

    /// Starts, in coding order, every planned frame whose references are coded; for a target
    /// bitrate only the first, once every frame before it is in the stream.
    fn start_ready(&mut self) {
        let mut i = 0;
        while i < self.planned.len() {
            let next_in_stream = self.in_coding.front().map(|(poc, _)| *poc);
            if self.rate.follows_sizes()
                && (i > 0 || next_in_stream != Some(self.planned[i].scheduled.poc))
            {
                return;
            }
            let references = &self.planned[i].references;
            if references
                .iter()
                .all(|poc| self.references.contains_key(poc))
            {
                let frame = self.planned.remove(i).expect("i < len");
                self.start(frame);
            } else {
                i += 1;
            }
        }
    }

    /// Hands `frame` to the workers.
    fn start(&mut self, frame: Planned<T>) {
        let (scheduled, kind) = (frame.scheduled, frame.kind);
        let (qp, in_flight) = match frame.qp {
            Some(qp) => qp,
            None => self.rate.frame_qp(kind, scheduled.layer),
        };
        let references: Vec<Arc<Reference<T>>> = frame
            .references
            .iter()
            .map(|poc| Arc::clone(&self.references[poc]))
            .collect();
        // The rate estimates start from the state the real coder starts from.
        let contexts = if self.header.context_carry {
            starting_contexts(kind, qp, references.iter().map(|r| &r.carried))
        } else {
            Contexts::default()
        };
        #[cfg(test)]
        crate::gop::STARTED
            .with_borrow_mut(|started| started.push((scheduled.poc, contexts.clone())));
        let (genome, header, coded) = (self.genome.clone(), self.header.clone(), self.coded);
        let (source, qp_map) = (frame.source, frame.qp_map);
        self.workers.submit(move || {
            let pictures: Vec<&Picture<T>> = references.iter().map(|r| &r.picture).collect();
            let search_planes: Vec<&HalfSamplePlanes<T>> =
                references.iter().map(|r| &r.search).collect();
            let fields: Vec<&MotionField> = references.iter().map(|r| &r.motion).collect();
            let poc = scheduled.poc;
            let motion = FrameMotion::new(
                poc,
                kind.bi_predicted(),
                &fields,
                header.temporal_mvp,
                header.bi_merge,
            );
            let mut frame_encoder = FrameEncoder::new(
                &genome,
                &header,
                coded,
                &source,
                &pictures,
                &search_planes,
                motion,
                qp,
                kind,
                qp_map.as_ref(),
                contexts,
            );
            frame_encoder.filter = references.first().and_then(|r| r.filter.clone());
            let payload = frame_encoder.encode();
            let visible = (header.format.width, header.format.height);
            let reconstruction = frame_encoder.picture.to_frame(visible.0, visible.1);
            let reference = kind.is_reference().then(|| Reference {
                search: HalfSamplePlanes::new(&frame_encoder.picture.planes[0]),
                motion: MotionField::new(
                    poc,
                    &frame_encoder.grid,
                    frame_encoder.motion.reference_pocs(),
                ),
                carried: CarriedContexts {
                    kind,
                    qp,
                    contexts: frame_encoder.contexts,
                },
                filter: frame_encoder.filter,
                picture: frame_encoder.picture,
            });
            Coded {
                poc,
                kind,
                qp,
                in_flight,
                payload,
                reconstruction,
                reference,
            }
        });
    }

    /// Starts frames as their references are coded and puts coded frames in the stream, in
    /// coding order, until at most `most` frames are planned and not yet in it.
    fn code_until(&mut self, most: usize, out: &mut Vec<EncodedFrame<T>>) -> Result<()> {
        loop {
            self.start_ready();
            let coded = match self.workers.finished_now() {
                Some(coded) => coded,
                None if self.unfinished() > most => self
                    .workers
                    .next_finished()
                    .expect("the first frame not yet coded has its references, so it started"),
                None => return Ok(()),
            };
            self.take_coded(coded, out);
        }
    }

    /// Keeps a coded frame's picture for the frames that predict from it, and puts the frames
    /// that are next in coding order in the stream.
    fn take_coded(&mut self, mut coded: Coded<T>, out: &mut Vec<EncodedFrame<T>>) {
        if let Some(reference) = coded.reference.take() {
            self.references.insert(coded.poc, Arc::new(reference));
        }
        let poc = coded.poc;
        if let Some((_, slot)) = self.in_coding.iter_mut().find(|(p, _)| *p == poc) {
            *slot = Some(coded);
        }
        while let Some((_, Some(_))) = self.in_coding.front() {
            let Some((_, Some(coded))) = self.in_coding.pop_front() else {
                unreachable!("the front was just seen coded");
            };
            let (in_flight, qp) = (coded.in_flight, coded.qp);
            let frame = self.packetize(coded);
            self.rate.record(in_flight, qp, frame.bytes.len());
            out.push(frame);
        }
        // What neither a planned frame nor the buffer's layout (for frames not yet planned)
        // holds is not predicted from again.
        let (layout, planned) = (&self.layout, &self.planned);
        self.references.retain(|poc, _| {
            layout.get(*poc).is_some() || planned.iter().any(|p| p.references.contains(poc))
        });
    }

    /// The stream bytes of a coded frame (after the sequence header for the first), in coding
    /// order.
    fn packetize(&mut self, frame: Coded<T>) -> EncodedFrame<T> {
        let mut bytes = Vec::new();
        if self.frames == 0 {
            bytes.extend_from_slice(&self.header.to_bytes());
        }
        let (poc, kind, qp) = (frame.poc, frame.kind, frame.qp);
        let mut packet = Vec::with_capacity(frame.payload.len() + 4);
        packet.push(kind.code());
        packet.push(qp);
        write_signed(&mut packet, poc as i64 - self.last_poc as i64);
        packet.extend_from_slice(&frame.payload);
        write_size(&mut bytes, packet.len() as u64);
        bytes.extend_from_slice(&packet);
        self.crc.update(&bytes);
        self.last_poc = poc;
        self.frames += 1;
        EncodedFrame {
            bytes,
            reconstruction: frame.reconstruction,
            display_index: poc,
            kind,
            qp,
        }
    }
}

/// A candidate for one coding unit with its rate-distortion cost.
struct Candidate {
    cost: u64,
    cu: CodedCu,
}

/// Where the prediction of a unit's best candidate is: the best merge candidate's buffer, a
/// motion-searched one, or none made yet (intra, predicted block by block as it reconstructs).
enum BestPrediction<T: Sample> {
    Merge,
    Motion(Prediction3<T>),
    Intra,
}

struct FrameEncoder<'a, T: Sample> {
    genome: &'a Genome,
    header: &'a SequenceHeader,
    coded: (usize, usize),
    source: &'a Picture<T>,
    references: &'a [&'a Picture<T>],
    search_planes: &'a [&'a HalfSamplePlanes<T>],
    motion: FrameMotion<'a>,
    bit_depth: u32,
    /// Added to coded QPs for the quantiser and λ: distortion is in samples of the depth.
    qp_offset: u8,
    /// The frame's QP, and the coding unit's being decided (the frame's plus its offset).
    frame_qp: u8,
    qp: u8,
    chroma_qp: u8,
    kind: FrameKind,
    qp_map: Option<&'a QpMap>,
    rd: RdCost,
    lambda_sad: u64,
    contexts: Contexts,
    grid: UnitGrid,
    picture: Picture<T>,
    cus: Vec<CodedCu>,
    /// The last vector found by motion search on each reference: a starting point for the
    /// next blocks.
    mv_hints: Vec<Mv>,
    /// The reconstruction of a block whose levels are being weighed (reused, not reallocated).
    reconstruction_scratch: Vec<T>,
    /// Coefficient-sized buffers of blocks being weighed, kept between blocks (see
    /// [`Self::take_block`]).
    blocks: Vec<Vec<i32>>,
    /// Predictions of merge candidates, and the second direction of bi-predicted ones
    /// (reused, not reallocated).
    /// Per unit size (log2): predictions of merge candidates, kept apart so that the buffers
    /// never change length (and are never zero-filled again).
    merge_predictions: Vec<[Prediction3<T>; 2]>,
    /// The second direction of bi-predicted merge candidates (only grows).
    bi_scratch: [Vec<T>; 3],
    /// Buffers of motion-searched predictions, reused from unit to unit.
    prediction_pool: Vec<Prediction3<T>>,
    /// The source samples of the unit being searched (units are searched one at a time).
    source_block: SourceBlock<T>,
    /// Per tree depth (log2): the reconstruction and unit info of the node whose split is
    /// being weighed, restored if the unsplit unit wins.
    saved_regions: Vec<SavedRegion<T>>,
    /// Working memory of [`Self::rdoq_decide`].
    rdoq_scratch: RdoqScratch,
    /// Luma source and prediction of one transform block of a split residual.
    sub_blocks: [Vec<T>; 2],
    /// The learned filter's model in force: inherited from the nearest reference, replaced by
    /// the one a key frame trains.
    filter: Option<Arc<FilterModel>>,
}

impl<'a, T: Sample> FrameEncoder<'a, T> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        genome: &'a Genome,
        header: &'a SequenceHeader,
        coded: (usize, usize),
        source: &'a Picture<T>,
        references: &'a [&'a Picture<T>],
        search_planes: &'a [&'a HalfSamplePlanes<T>],
        motion: FrameMotion<'a>,
        qp: u8,
        kind: FrameKind,
        qp_map: Option<&'a QpMap>,
        contexts: Contexts,
    ) -> Self {
        let bit_depth = source.bit_depth();
        let qp_offset = qp_offset(bit_depth);
        let lambda_value = lambda(qp + qp_offset, genome.lambda_scale);
        FrameEncoder {
            genome,
            header,
            coded,
            source,
            references,
            search_planes,
            motion,
            bit_depth,
            qp_offset,
            frame_qp: qp,
            qp,
            chroma_qp: chroma_qp(qp, genome.chroma_qp_offset),
            kind,
            qp_map,
            rd: RdCost::new(lambda_value),
            lambda_sad: RdCost::lambda_sad(lambda_value),
            contexts,
            grid: UnitGrid::new(coded.0, coded.1),
            picture: Picture::new(coded.0, coded.1, bit_depth),
            cus: Vec::new(),
            mv_hints: vec![Mv::ZERO; references.len()],
            reconstruction_scratch: Vec::new(),
            blocks: Vec::new(),
            merge_predictions: (0..=SB_LOG2).map(|_| Default::default()).collect(),
            bi_scratch: Default::default(),
            prediction_pool: Vec::new(),
            source_block: SourceBlock::default(),
            saved_regions: (0..=SB_LOG2).map(|_| SavedRegion::default()).collect(),
            rdoq_scratch: RdoqScratch::default(),
            sub_blocks: Default::default(),
            filter: None,
        }
    }

    fn encode(&mut self) -> Vec<u8> {
        let mut writer = RangeEncoder::new();
        for sb_y in (0..self.coded.1).step_by(SB_SIZE) {
            for sb_x in (0..self.coded.0).step_by(SB_SIZE) {
                self.cus.clear();
                self.search_node(sb_x, sb_y, SB_LOG2);
                let mut next = 0;
                self.write_node(&mut writer, sb_x, sb_y, SB_LOG2, &mut next);
            }
        }
        if self.header.deblock {
            deblock(
                &mut self.picture,
                &self.grid,
                &DeblockParams {
                    chroma_qp_offset: self.header.chroma_qp_offset,
                    beta_offset: self.header.deblock_beta_offset,
                    tc_offset: self.header.deblock_tc_offset,
                },
            );
        }
        if self.header.sao {
            let visible = (self.header.format.width, self.header.format.height);
            let (ctx, picture) = (&mut self.contexts.sao, &mut self.picture);
            // The frame's multiplier, whatever QP the last coding unit took; SAO weighs
            // distortion in 8-bit units, so without the depth's offset.
            let rd = RdCost::new(lambda(self.frame_qp, self.genome.lambda_scale));
            crate::sao::encode(&mut writer, ctx, picture, self.source, visible, &rd);
        }
        if let Some(shape) = self.header.learned_filter {
            self.learned_filter(&mut writer, shape);
        }
        self.picture.extend_edges();
        writer.finish()
    }

    /// Every frame chooses the model it applies: the one in force (inherited from its nearest
    /// reference; a key frame has none), one of the shipped models of the genome's shape, or,
    /// on a key frame, one trained on its reconstruction from the best of those. It takes the
    /// one estimated to save the most distortion beyond the bits that put it in force, applies
    /// it where that pays, and codes what it did.
    fn learned_filter(&mut self, writer: &mut RangeEncoder, shape: FilterShape) {
        let visible = (self.header.format.width, self.header.format.height);
        // As SAO, in 8-bit units at the frame's multiplier.
        let rd = RdCost::new(lambda(self.frame_qp, self.genome.lambda_scale));
        let mut scratch = learned::FilterScratch::default();
        let input = learned::padded_luma(&self.picture);
        if self.kind == FrameKind::Key {
            self.filter = None;
        }
        let in_force = self.filter.clone();
        let shipped = learned::shipped_models();
        let putting_in_force = |new_model: learned::NewModel<'_>| -> u64 {
            rd.cost(0, learned::new_model_rate(new_model))
        };
        // (estimated saving beyond the bits of putting the model in force, the model)
        let mut candidates: Vec<(i64, learned::ModelChoice)> = Vec::new();
        if let Some(model) = &in_force {
            let saving =
                learned::estimated_saving(&input, self.source, visible, model, &mut scratch);
            candidates.push((saving, learned::ModelChoice::InForce));
        }
        for (index, model) in shipped.iter().enumerate() {
            if model.shape != shape || in_force.as_deref() == Some(model) {
                continue;
            }
            let index = index as u8;
            let saving =
                learned::estimated_saving(&input, self.source, visible, model, &mut scratch);
            let cost = putting_in_force(learned::NewModel::Shipped(index));
            candidates.push((saving - cost as i64, learned::ModelChoice::Shipped(index)));
        }
        let trained =
            (self.kind == FrameKind::Key && self.genome.filter_training_steps > 0).then(|| {
                let start = learned::best_choice(&candidates).and_then(|choice| match choice {
                    learned::ModelChoice::Shipped(index) => Some(&shipped[usize::from(index)]),
                    _ => None,
                });
                self.train_filter(shape, &input, start)
            });
        if let Some(model) = &trained {
            let saving =
                learned::estimated_saving(&input, self.source, visible, model, &mut scratch);
            let cost = putting_in_force(learned::NewModel::Sent(model));
            candidates.push((saving - cost as i64, learned::ModelChoice::Trained));
        }
        let (model, new_model) = match learned::best_choice(&candidates) {
            None => (None, None),
            Some(learned::ModelChoice::InForce) => (in_force.as_deref(), None),
            Some(learned::ModelChoice::Shipped(index)) => (
                Some(&shipped[usize::from(index)]),
                Some(learned::NewModel::Shipped(index)),
            ),
            Some(learned::ModelChoice::Trained) => (
                trained.as_ref(),
                trained.as_ref().map(learned::NewModel::Sent),
            ),
        };
        let applied = model.and_then(|model| {
            let cost = new_model.map_or(0, putting_in_force);
            let picture = &mut self.picture;
            learned::choose_and_apply(
                picture,
                &input,
                self.source,
                visible,
                model,
                &rd,
                cost,
                &mut scratch,
            )
        });
        // A model that does not pay on the frame that would send it is not sent.
        let new_model = new_model.filter(|_| applied.is_some());
        if let (Some(model), Some(_)) = (model, new_model) {
            self.filter = Some(Arc::new(model.clone()));
        }
        learned::write_frame(
            writer,
            &mut self.contexts.learned_filter,
            new_model,
            self.filter.is_some(),
            applied.as_ref(),
            self.coded.0.div_ceil(SB_SIZE),
        );
    }

    /// A model of the learned filter trained on this frame's reconstruction (its luma plane
    /// `input`, edges replicated), from `start`.
    fn train_filter(
        &self,
        shape: FilterShape,
        input: &PaddedPlane<T>,
        start: Option<&FilterModel>,
    ) -> FilterModel {
        let example = learned::train::Example {
            reconstruction: input,
            source: &self.source.planes[0],
            visible: (self.header.format.width, self.header.format.height),
        };
        let schedule = learned::train::Schedule {
            steps: u32::from(self.genome.filter_training_steps),
            seed: learned::train::SEED,
            start,
        };
        learned::train::train(shape, &[example], &schedule)
            .expect("the filter's tensors have the shapes the network gives them")
            .model
    }

    // ---- the real coding pass -------------------------------------------------------------

    fn write_node<W: Writer>(
        &mut self,
        w: &mut W,
        x: usize,
        y: usize,
        log2: u32,
        next: &mut usize,
    ) {
        if x >= self.coded.0 || y >= self.coded.1 {
            return;
        }
        let leaf = self
            .cus
            .get(*next)
            .is_some_and(|cu| cu.x == x && cu.y == y && cu.log2 == log2);
        if !split_is_implied(x, y, log2, self.header, self.coded)
            && split_is_coded(log2, self.header)
        {
            let (a, b) = split_context(&self.grid, x, y, log2);
            w.bit(&mut self.contexts.split[a][b], !leaf);
        }
        if !leaf {
            let half = 1 << (log2 - 1);
            for (dx, dy) in [(0, 0), (half, 0), (0, half), (half, half)] {
                self.write_node(w, x + dx, y + dy, log2 - 1, next);
            }
            return;
        }
        let cu = &self.cus[*next];
        *next += 1;
        let frame = self.syntax();
        write_cu(w, &mut self.contexts, &self.grid, cu, &frame);
    }

    // ---- decisions -------------------------------------------------------------------------

    fn split_flag_cost(&self, x: usize, y: usize, log2: u32, split: bool) -> u64 {
        if split_is_implied(x, y, log2, self.header, self.coded)
            || !split_is_coded(log2, self.header)
        {
            return 0;
        }
        let (a, b) = split_context(&self.grid, x, y, log2);
        u64::from(self.contexts.split[a][b].cost(split))
    }

    /// Decides the subtree at (x, y), leaving its reconstruction in the picture and its coding
    /// units in `cus`; returns its cost.
    fn search_node(&mut self, x: usize, y: usize, log2: u32) -> u64 {
        if x >= self.coded.0 || y >= self.coded.1 {
            return 0;
        }
        let implied = split_is_implied(x, y, log2, self.header, self.coded);
        let mark = self.cus.len();
        let mut leaf: Option<(u64, CodedCu)> = None;
        // Intra blocks are searched up to 32x32, so key frames always split 64x64 nodes.
        if !implied && (self.kind != FrameKind::Key || log2 <= MAX_TX_LOG2) {
            let candidate = self.search_cu(x, y, log2);
            let rate = self.split_flag_cost(x, y, log2, false);
            let cost = candidate.cost.saturating_add(self.rd.cost(0, rate));
            leaf = Some((cost, candidate.cu));
        }
        let may_split = implied || split_is_coded(log2, self.header);
        let stops_split = leaf.as_ref().is_some_and(|(_, cu)| {
            (cu.skip && self.genome.skip_stops_split)
                || (self.genome.clean_inter_stops_split
                    && matches!(cu.prediction, Prediction::Inter { .. })
                    && !has_levels(cu))
        });
        if (!may_split || stops_split)
            && let Some((cost, cu)) = leaf
        {
            self.cus.push(cu);
            return cost;
        }
        if leaf.is_some() {
            self.save_region(x, y, log2);
        }
        let leaf_cost = leaf.as_ref().map_or(u64::MAX, |(c, _)| *c);
        let mut split_cost = self.rd.cost(0, self.split_flag_cost(x, y, log2, true));
        let half = 1 << (log2 - 1);
        for (dx, dy) in [(0, 0), (half, 0), (0, half), (half, half)] {
            split_cost = split_cost.saturating_add(self.search_node(x + dx, y + dy, log2 - 1));
            if split_cost >= leaf_cost {
                break;
            }
        }
        match leaf {
            Some((cost, cu)) if cost <= split_cost => {
                self.restore_region(x, y, log2);
                self.cus.truncate(mark);
                self.cus.push(cu);
                cost
            }
            _ => split_cost,
        }
    }

    /// Saves the node's reconstruction and unit info in its depth's slot.
    fn save_region(&mut self, x: usize, y: usize, log2: u32) {
        let size = 1usize << log2;
        let saved = &mut self.saved_regions[log2 as usize];
        for (i, (plane, block)) in self
            .picture
            .planes
            .iter()
            .zip(&mut saved.planes)
            .enumerate()
        {
            let (px, py, n) = if i == 0 {
                (x, y, size)
            } else {
                (x / 2, y / 2, size / 2)
            };
            copy_block_into(plane, px, py, n, block);
        }
        let units = size >> UNIT_LOG2;
        saved.units = self.grid.copy_region(x >> UNIT_LOG2, y >> UNIT_LOG2, units);
    }

    /// Puts back what [`Self::save_region`] saved for the node.
    fn restore_region(&mut self, x: usize, y: usize, log2: u32) {
        let size = 1usize << log2;
        let saved = &self.saved_regions[log2 as usize];
        for (i, (plane, block)) in self
            .picture
            .planes
            .iter_mut()
            .zip(&saved.planes)
            .enumerate()
        {
            let (px, py, n) = if i == 0 {
                (x, y, size)
            } else {
                (x / 2, y / 2, size / 2)
            };
            plane.put_block(px, py, n, n, block);
        }
        let units = size >> UNIT_LOG2;
        self.grid
            .restore_region(x >> UNIT_LOG2, y >> UNIT_LOG2, units, &saved.units);
    }

    fn syntax(&self) -> FrameSyntax<'a> {
        FrameSyntax {
            header: self.header,
            reference_count: self.references.len(),
            kind: self.kind,
            qp: self.frame_qp,
        }
    }

    /// Cost of a complete coding unit's syntax with the frozen contexts, in 1/256 bit.
    fn cu_rate(&mut self, cu: &CodedCu) -> u64 {
        let mut counter = CostCounter::default();
        let frame = self.syntax();
        write_cu(&mut counter, &mut self.contexts, &self.grid, cu, &frame);
        counter.cost
    }

    /// A buffer for one block's residual, coefficients or levels, as long as the largest
    /// transform, from those kept between blocks; its contents are whatever its last user left
    /// (every user writes what it reads), which spares zeroing it for each block weighed.
    fn take_block(&mut self) -> Vec<i32> {
        let mut block = self.blocks.pop().unwrap_or_default();
        block.resize(1 << (2 * MAX_TX_LOG2), 0);
        block
    }

    /// Returns a buffer of [`Self::take_block`] for the next block.
    fn give_block(&mut self, block: Vec<i32>) {
        self.blocks.push(block);
    }

    /// Chooses the best way to code the unit at (x, y), reconstructs it and records its info.
    fn search_cu(&mut self, x: usize, y: usize, log2: u32) -> Candidate {
        let size = 1usize << log2;
        self.set_cu_qp(x, y, size);
        let mut source = std::mem::take(&mut self.source_block);
        source.load(self.source, x, y, size);
        let mut best: Option<Candidate> = None;
        // Where the best candidate's prediction is kept, so that reconstruction reuses it.
        let mut best_prediction = BestPrediction::Intra;
        let consider = |best: &mut Option<Candidate>, candidate: Candidate| {
            let better = best.as_ref().is_none_or(|b| candidate.cost < b.cost);
            if better {
                *best = Some(candidate);
            }
            better
        };
        let mut done = false;
        if self.kind != FrameKind::Key {
            let (skip, merged) = self.search_merge(&source, x, y, log2);
            let merged_without_levels = merged.as_ref().is_some_and(|m| !has_levels(&m.cu));
            for candidate in [skip, merged].into_iter().flatten() {
                if consider(&mut best, candidate) {
                    best_prediction = BestPrediction::Merge;
                }
            }
            done = self.genome.early_skip && merged_without_levels && best.is_some();
            if !done {
                for (candidate, prediction) in self.search_motion(&source, x, y, log2) {
                    let unused = if consider(&mut best, candidate) {
                        std::mem::replace(&mut best_prediction, BestPrediction::Motion(prediction))
                    } else {
                        BestPrediction::Motion(prediction)
                    };
                    if let BestPrediction::Motion(unused) = unused {
                        self.prediction_pool.push(unused);
                    }
                }
            }
        }
        // Intra rarely beats an inter prediction that needs no luma residual.
        let inter_is_clean = best
            .as_ref()
            .is_some_and(|b| b.cu.luma.iter().all(Option::is_none));
        if self.genome.skip_intra_after_clean_inter && inter_is_clean {
            done = true;
        }
        if !done && log2 <= 5 {
            let candidate = self.search_intra(&source, x, y, log2);
            if consider(&mut best, candidate)
                && let BestPrediction::Motion(unused) =
                    std::mem::replace(&mut best_prediction, BestPrediction::Intra)
            {
                self.prediction_pool.push(unused);
            }
        }
        // Every unit has a candidate: motion search always yields one (the zero vector is in
        // bounds) and key frames search intra at every size they leave unsplit.
        let best = best.expect("a candidate for every coding unit");
        let tools = (self.genome.chroma_qp_offset, self.genome.intra_dst);
        match &best_prediction {
            BestPrediction::Merge => {
                let prediction = &self.merge_predictions[log2 as usize][1];
                add_inter_residuals(&mut self.picture, &best.cu, prediction.slices(), tools);
            }
            BestPrediction::Motion(prediction) => {
                add_inter_residuals(&mut self.picture, &best.cu, prediction.slices(), tools);
            }
            BestPrediction::Intra => {
                reconstruct_cu(
                    &mut self.picture,
                    &self.grid,
                    self.references,
                    &best.cu,
                    tools,
                );
            }
        }
        if let BestPrediction::Motion(prediction) = best_prediction {
            self.prediction_pool.push(prediction);
        }
        commit_info(&mut self.grid, &best.cu);
        self.source_block = source;
        best
    }

    /// The QP of the coding unit at (x, y): the frame's plus the temporal offset of its area,
    /// with the Lagrange multipliers that go with it.
    fn set_cu_qp(&mut self, x: usize, y: usize, size: usize) {
        let offset = self.qp_map.map_or(0, |map| map.offset(x, y, size));
        let qp =
            (i32::from(self.frame_qp) + offset).clamp(0, i32::from(crate::quant::MAX_QP)) as u8;
        if qp != self.qp {
            let lambda_value = lambda(qp + self.qp_offset, self.genome.lambda_scale);
            self.qp = qp;
            self.chroma_qp = chroma_qp(qp, self.genome.chroma_qp_offset);
            self.rd = RdCost::new(lambda_value);
            self.lambda_sad = RdCost::lambda_sad(lambda_value);
        }
    }

    /// The QP a coding unit at (x, y) without levels takes: its prediction.
    fn skipped_qp(&self, x: usize, y: usize) -> u8 {
        if self.header.block_qp {
            predicted_qp(&self.grid, x >> UNIT_LOG2, y >> UNIT_LOG2, self.frame_qp)
        } else {
            self.frame_qp
        }
    }

    /// Merge candidates as skipped blocks (no residual), and the best one with a residual.
    fn search_merge(
        &mut self,
        source: &SourceBlock<T>,
        x: usize,
        y: usize,
        log2: u32,
    ) -> (Option<Candidate>, Option<Candidate>) {
        let size = 1usize << log2;
        let (cx, cy) = (x >> UNIT_LOG2, y >> UNIT_LOG2);
        let count = usize::from(self.header.merge_candidates);
        let list = merge_candidates(&self.grid, &self.motion, cx, cy, size >> UNIT_LOG2, count);
        let mut best_skip: Option<Candidate> = None;
        // The candidate's prediction and the best one's, in buffers kept between units.
        let [mut pred, mut best_pred] = std::mem::take(&mut self.merge_predictions[log2 as usize]);
        let mut scratch = std::mem::take(&mut self.bi_scratch);
        for (index, &motion) in list.iter().enumerate() {
            if list[..index].contains(&motion) || !self.motion_in_bounds(x, y, size, &motion) {
                continue;
            }
            let cu = CodedCu {
                x,
                y,
                log2,
                skip: true,
                qp: self.skipped_qp(x, y),
                prediction: Prediction::Inter {
                    motion,
                    merge_index: Some(index as u8),
                    mvd: [Mv::ZERO; 2],
                },
                luma: vec![None; luma_blocks(log2)],
                chroma: [None, None],
                transform_skip: 0,
                tx_split: false,
            };
            let rate = self.cu_rate(&cu);
            // The chroma's distortion only adds to the luma's: a candidate whose luma alone
            // costs as much as the best one's whole is out, chroma unpredicted.
            let best_cost = best_skip.as_ref().map_or(u64::MAX, |b| b.cost);
            let unit = (x, y, size);
            pred.predict_inter_luma(self.references, unit, &motion, &mut scratch);
            let luma = pred.plane_sse(0, source);
            if self.rd.cost(luma, rate) >= best_cost {
                continue;
            }
            pred.predict_inter_chroma(self.references, unit, &motion, &mut scratch);
            let cost = self.rd.cost(
                luma + pred.plane_sse(1, source) + pred.plane_sse(2, source),
                rate,
            );
            if cost < best_cost {
                best_skip = Some(Candidate { cost, cu });
                std::mem::swap(&mut pred, &mut best_pred);
            }
        }
        let merged = best_skip.as_ref().map(|skip| {
            let mut cu = skip.cu.clone();
            cu.skip = false;
            cu.qp = self.qp;
            self.code_inter_residual(source, cu, &best_pred)
        });
        self.merge_predictions[log2 as usize] = [pred, best_pred];
        self.bi_scratch = scratch;
        (best_skip, merged)
    }

    /// Every vector of `motion` stays inside its reference's border.
    fn motion_in_bounds(&self, x: usize, y: usize, size: usize, motion: &Motion) -> bool {
        motion
            .vectors()
            .all(|v| mv_in_bounds(x, y, size, size, v.mv, self.coded))
    }

    /// An inter coding unit with explicitly coded vectors.
    fn coded_motion_cu(&self, x: usize, y: usize, log2: u32, motion: Motion) -> CodedCu {
        let units = 1usize << (log2 - UNIT_LOG2);
        let (cx, cy) = (x >> UNIT_LOG2, y >> UNIT_LOG2);
        let difference = |v: Vector| {
            let mvp = predict_mv(&self.grid, &self.motion, cx, cy, units, v.ref_idx);
            Mv::new(v.mv.x - mvp.x, v.mv.y - mvp.y)
        };
        CodedCu {
            x,
            y,
            log2,
            skip: false,
            qp: self.qp,
            prediction: Prediction::Inter {
                motion,
                merge_index: None,
                mvd: [
                    difference(motion.first),
                    motion.second.map_or(Mv::ZERO, difference),
                ],
            },
            luma: Vec::new(),
            chroma: [None, None],
            transform_skip: 0,
            tx_split: false,
        }
    }

    // EVOLVE-BLOCK-START inter_mode_decision
    /// Motion search on each reference, and in bi-predicted frames the average of the two
    /// best; ranked by luma SATD plus vector rate, the cheapest are coded with a residual: as
    /// many as the genome keeps, of those within its margin of the cheapest.
    fn search_motion(
        &mut self,
        source: &SourceBlock<T>,
        x: usize,
        y: usize,
        log2: u32,
    ) -> Vec<(Candidate, Prediction3<T>)> {
        let size = 1usize << log2;
        let (cx, cy) = (x >> UNIT_LOG2, y >> UNIT_LOG2);
        let units = size >> UNIT_LOG2;
        let neighbours = spatial_candidates(&self.grid, cx, cy, units, 3);
        // A lone prediction (one reference, no average) needs no ranking.
        let ranked = self.references.len() > 1;
        // (SATD + vector rate where ranked, motion, prediction) of each reference's best vector.
        let mut searched: Vec<(u64, Motion, Prediction3<T>)> = Vec::new();
        for ref_idx in 0..self.references.len() {
            let mvp = predict_mv(&self.grid, &self.motion, cx, cy, units, ref_idx as u8);
            let mut starts: Vec<Mv> = neighbours
                .iter()
                .flat_map(|m| m.vectors())
                .filter(|v| usize::from(v.ref_idx) == ref_idx)
                .map(|v| v.mv)
                .collect();
            starts.push(self.mv_hints[ref_idx]);
            // The co-located motion, where the sequence uses it, is worth a look too.
            starts.extend(
                self.motion
                    .temporal_mv(&self.grid, cx, cy, units, ref_idx as u8),
            );
            let params = SearchParams {
                source: &self.source.planes[0],
                reference: self.search_planes[ref_idx],
                x,
                y,
                size,
                mvp,
                starts: &starts,
                range: i32::from(self.genome.me_range),
                subpel: self.genome.subpel_precision,
                lambda_sad: self.lambda_sad,
            };
            let (mv, _) = search(&params);
            if !mv_in_bounds(x, y, size, size, mv, self.coded) {
                continue;
            }
            self.mv_hints[ref_idx] = mv;
            let motion = Motion::single(ref_idx as u8, mv);
            let pred = self.predict_pooled((x, y, size), &motion);
            let cost = if ranked {
                self.luma_satd(source, &pred, size) + vector_rate_cost(mv, mvp, self.lambda_sad)
            } else {
                0
            };
            searched.push((cost, motion, pred));
        }
        let bi = self.kind.bi_predicted() && self.genome.bipred && searched.len() >= 2;
        searched.sort_by_key(|(cost, ..)| *cost);
        if bi {
            let motion = Motion {
                first: searched[0].1.first,
                second: Some(searched[1].1.first),
            };
            let pred = self.predict_pooled((x, y, size), &motion);
            let rate: u64 = motion
                .vectors()
                .map(|v| {
                    let mvp = predict_mv(&self.grid, &self.motion, cx, cy, units, v.ref_idx);
                    vector_rate_cost(v.mv, mvp, self.lambda_sad)
                })
                .sum();
            let cost = self.luma_satd(source, &pred, size) + rate;
            searched.push((cost, motion, pred));
            searched.sort_by_key(|(cost, ..)| *cost);
        }
        let cheapest = searched.first().map_or(0, |(cost, ..)| *cost);
        let limit = (cheapest as f64 * (1.0 + self.genome.inter_rd_margin)) as u64;
        // Ranked cheapest first, so those within the limit lead.
        let mut coded = Vec::new();
        for (rank, (cost, motion, pred)) in searched.into_iter().enumerate() {
            if rank < usize::from(self.genome.inter_rd_candidates) && cost <= limit {
                let cu = self.coded_motion_cu(x, y, log2, motion);
                coded.push((self.code_inter_residual(source, cu, &pred), pred));
            } else {
                self.prediction_pool.push(pred);
            }
        }
        coded
    }

    /// The motion-compensated prediction of a unit, in buffers from the pool.
    fn predict_pooled(&mut self, unit: (usize, usize, usize), motion: &Motion) -> Prediction3<T> {
        let mut prediction = self.prediction_pool.pop().unwrap_or_default();
        prediction.predict_inter(self.references, unit, motion, &mut self.bi_scratch);
        prediction
    }
    // EVOLVE-BLOCK-END

    /// Hadamard cost of a prediction's luma against the unit's source.
    fn luma_satd(&self, source: &SourceBlock<T>, pred: &Prediction3<T>, size: usize) -> u64 {
        u64::from(satd(
            &source.planes[0],
            size,
            &pred.planes[0],
            size,
            size,
            size,
        ))
    }

    /// Quantises the residual of an inter prediction and costs the whole unit, its luma residual
    /// as one transform per 32x32 and, where that is weighed, split into four.
    fn code_inter_residual(
        &mut self,
        source: &SourceBlock<T>,
        mut cu: CodedCu,
        pred: &Prediction3<T>,
    ) -> Candidate {
        cu.tx_split = false;
        let whole = self.code_inter_residual_at(source, cu.clone(), pred);
        if !self.weigh_transform_split(&whole.cu) {
            return whole;
        }
        cu.tx_split = true;
        let split = self.code_inter_residual_at(source, cu, pred);
        if split.cost < whole.cost {
            split
        } else {
            whole
        }
    }

    // EVOLVE-BLOCK-START transform_split
    /// Whether a split of the luma residual is weighed against the whole-size transform's
    /// `coded` unit: where the unit may split and the whole transform left luma levels (a
    /// residual that quantises to nothing gains nothing from smaller transforms).
    fn weigh_transform_split(&self, coded: &CodedCu) -> bool {
        tx_split_allowed(self.genome.residual_quadtree, coded.log2, false)
            && coded.luma.iter().any(Option::is_some)
    }
    // EVOLVE-BLOCK-END

    /// Quantises the residual of an inter prediction at the unit's transform sizes and costs
    /// the whole unit.
    fn code_inter_residual_at(
        &mut self,
        source: &SourceBlock<T>,
        mut cu: CodedCu,
        pred: &Prediction3<T>,
    ) -> Candidate {
        let size = 1usize << cu.log2;
        let luma_log2 = cu.luma_tx_log2();
        let n = 1usize << luma_log2;
        let mut distortion = 0;
        cu.luma.clear();
        cu.transform_skip = 0;
        let [mut src, mut prd] = std::mem::take(&mut self.sub_blocks);
        for i in 0..(size / n).pow(2) {
            let (bx, by) = cu.luma_tx_offset(i);
            let (levels, d, skip) = if n == size {
                self.code_block(&source.planes[0], &pred.planes[0], luma_log2, true, false)
            } else {
                extract(&source.planes[0], size, bx, by, n, &mut src);
                extract(&pred.planes[0], size, bx, by, n, &mut prd);
                self.code_block(&src, &prd, luma_log2, true, false)
            };
            distortion += d;
            cu.luma.push(levels);
            cu.transform_skip |= if skip { skip_bit(true, i) } else { 0 };
        }
        self.sub_blocks = [src, prd];
        let chroma_log2 = cu.chroma_tx_log2();
        for p in 0..2 {
            let (levels, d, skip) = self.code_block(
                &source.planes[1 + p],
                &pred.planes[1 + p],
                chroma_log2,
                false,
                false,
            );
            distortion += d;
            cu.chroma[p] = levels;
            cu.transform_skip |= if skip { skip_bit(false, p) } else { 0 };
        }
        let rate = self.cu_rate(&cu);
        let cost = self.rd.cost(distortion, rate);
        Candidate { cost, cu }
    }

    // EVOLVE-BLOCK-START transform_choice
    /// Transforms and quantises one block's residual, 4x4 blocks also without the transform
    /// where the genome allows it; keeps the levels only when they pay for themselves. Returns
    /// the levels, the distortion of the reconstruction they give and whether the transform is
    /// skipped.
    fn code_block(
        &mut self,
        src: &[T],
        pred: &[T],
        log2n: u32,
        luma: bool,
        intra: bool,
    ) -> (Option<Vec<i32>>, u64, bool) {
        let n = 1usize << log2n;
        let len = n * n;
        let [mut residual, mut coeffs, mut levels] = [(); 3].map(|()| self.take_block());
        for ((r, &s), &p) in residual[..len].iter_mut().zip(src).zip(pred) {
            *r = s.to_i32() - p.to_i32();
        }
        let no_levels = sse(src, n, pred, n, n, n);
        let cbf = self.contexts.cbf[usize::from(!luma)][usize::from(!intra)];
        let mut best = (
            self.rd.cost(no_levels, u64::from(cbf.cost(false))),
            None,
            no_levels,
            false,
        );
        let skip_coded = self.genome.transform_skip && log2n == 2;
        for skip in [false, true] {
            if skip && !skip_coded {
                continue;
            }
            let tx = block_transform(intra, log2n, self.genome.intra_dst, skip);
            let block = (src, pred, &residual[..len]);
            let buffers = (&mut coeffs[..len], &mut levels[..len]);
            if let Some((d, cost)) =
                self.quantise_into(block, (log2n, tx), luma, intra, skip_coded, buffers)
                && cost < best.0
            {
                best = (cost, Some(levels[..len].to_vec()), d, skip);
            }
        }
        for block in [residual, coeffs, levels] {
            self.give_block(block);
        }
        (best.1, best.2, best.3)
    }

    // EVOLVE-BLOCK-END

    /// Levels of one block through transform `tx` into the caller's buffers (the block's
    /// coefficients and levels), with their distortion and D + λ·R (the coded block flag and,
    /// where `skip_coded`, the transform skip flag counted); `None` when every level quantises
    /// to zero.
    #[allow(clippy::too_many_arguments)]
    fn quantise_into(
        &mut self,
        (src, pred, residual): (&[T], &[T], &[i32]),
        (log2n, tx): (u32, TxType),
        luma: bool,
        intra: bool,
        skip_coded: bool,
        (coeffs, levels): (&mut [i32], &mut [i32]),
    ) -> Option<(u64, u64)> {
        let n = 1usize << log2n;
        forward(residual, coeffs, log2n, tx);
        let qp = if luma { self.qp } else { self.chroma_qp };
        let rounding = if intra {
            self.genome.deadzone_intra
        } else {
            self.genome.deadzone_inter
        };
        if quantize(coeffs, levels, qp + self.qp_offset, log2n, rounding) == 0 {
            return None;
        }
        let pt = usize::from(!luma);
        let mut flags = u64::from(self.contexts.cbf[pt][usize::from(!intra)].cost(true));
        if skip_coded {
            flags += u64::from(self.contexts.transform_skip[pt].cost(tx == TxType::Skip));
        }
        let sign_hiding = self.genome.sign_hiding;
        let bit_depth = self.bit_depth;
        let mut out = std::mem::take(&mut self.reconstruction_scratch);
        out.resize(n * n, T::default());
        let (mut dequantised, mut residual) = (self.take_block(), self.take_block());
        let mut evaluate = |levels: &[i32], ctx: &mut Contexts| {
            let scratch = (&mut dequantised[..], &mut residual[..]);
            let transform = (log2n, tx);
            add_residual_with(
                pred,
                Some(levels),
                qp,
                transform,
                bit_depth,
                &mut out,
                scratch,
            );
            let d = sse(src, n, &out, n, n, n);
            let rate = levels_cost(ctx, levels, log2n, luma, sign_hiding) + flags;
            (d, rate)
        };
        let (d, rate) = if self.genome.rdoq {
            self.optimise_levels(coeffs, levels, luma, &mut evaluate)
        } else {
            if sign_hiding {
                let lambda_fixed = self.rd.cost(0, 1 << 16);
                let quant = (qp + self.qp_offset, self.bit_depth);
                Self::hide_signs(coeffs, levels, quant, luma, &self.contexts, lambda_fixed);
            }
            evaluate(levels, &mut self.contexts)
        };
        self.reconstruction_scratch = out;
        self.give_block(dequantised);
        self.give_block(residual);
        if levels.iter().all(|&l| l == 0) {
            return None;
        }
        Some((d, self.rd.cost(d, rate)))
    }

    // EVOLVE-BLOCK-START rdo_quantisation
    /// Rate-distortion optimised quantisation of every level of the block (`coeffs` are its
    /// transform coefficients, `levels` their dead-zone levels): the decision of
    /// [`Self::rdoq_decide`], measured against the dead-zone levels (both with their hidden
    /// signs' parities fixed) and kept only where it lowers D + λ·R. Returns the final
    /// (distortion, rate).
    fn optimise_levels(
        &mut self,
        coeffs: &[i32],
        levels: &mut [i32],
        luma: bool,
        evaluate: &mut impl FnMut(&[i32], &mut Contexts) -> (u64, u64),
    ) -> (u64, u64) {
        let qp = if luma { self.qp } else { self.chroma_qp } + self.qp_offset;
        let mut dead_zone = self.take_block();
        let dead_zone_levels = &mut dead_zone[..levels.len()];
        dead_zone_levels.copy_from_slice(levels);
        // λ per 1/256 bit, times 2^16.
        let lambda_fixed = self.rd.cost(0, 1 << 16);
        let (ctx, depth) = (&self.contexts, self.bit_depth);
        let scratch = &mut self.rdoq_scratch;
        let decided = Self::rdoq_decide(
            coeffs,
            levels,
            (qp, depth),
            luma,
            ctx,
            lambda_fixed,
            scratch,
        );
        if self.genome.sign_hiding {
            Self::hide_signs(coeffs, levels, (qp, depth), luma, ctx, lambda_fixed);
        }
        let result = if decided {
            if self.genome.sign_hiding {
                let quant = (qp, depth);
                Self::hide_signs(coeffs, dead_zone_levels, quant, luma, ctx, lambda_fixed);
            }
            let (d, rate) = evaluate(dead_zone_levels, &mut self.contexts);
            // Hiding may have brought both to the same levels: the same measure.
            let (d2, r2) = if dead_zone_levels == levels {
                (d, rate)
            } else {
                evaluate(levels, &mut self.contexts)
            };
            if self.rd.cost(d2, r2) < self.rd.cost(d, rate) {
                (d2, r2)
            } else {
                levels.copy_from_slice(dead_zone_levels);
                (d, rate)
            }
        } else {
            evaluate(levels, &mut self.contexts)
        };
        self.give_block(dead_zone);
        result
    }

    /// Sign-data hiding, as in HM: in every coefficient group that hides a sign whose parity
    /// disagrees with it, the one level change by ±1 with the least D + λ·R (transform-domain
    /// distortion, the rate of the changed level in its contexts from the frozen ones) that
    /// keeps the group hiding the same sign: the first nonzero level is not zeroed, and a new
    /// first one before it must carry the hidden sign. Positions past the block's last level
    /// are left alone (a new last position costs more than it gains).
    fn hide_signs(
        coeffs: &[i32],
        levels: &mut [i32],
        (qp, bit_depth): (u8, u32),
        luma: bool,
        ctx: &Contexts,
        lambda_fixed: u64,
    ) {
        use crate::quant::{MAX_LEVEL, dequantize};
        use crate::residual::{GROUP, estimate, hides_sign, last_in_scan};
        let count = levels.len();
        let log2n = count.trailing_zeros() / 2;
        let n = 1usize << log2n;
        let order = estimate::scan_order(log2n);
        let Some(last) = last_in_scan(levels, log2n) else {
            return;
        };
        // Costs are J·2^16, as in `rdoq_decide`.
        let dshift = 2 * log2n + 2;
        let dist = |c: i32, magnitude: u32| -> i64 {
            let mut back = [0i32];
            dequantize(&[magnitude as i32], &mut back, qp, log2n, bit_depth);
            let e = i64::from(c.unsigned_abs()) - i64::from(back[0]);
            (e * e) << dshift
        };
        let pt = usize::from(!luma);
        let significant = &ctx.significant[pt][usize::from(log2n > 3)];
        let (greater_one, greater_two) = (&ctx.greater_one[pt], &ctx.greater_two[pt]);
        // Bits (1/256) of `magnitude` at `pos` with its significance flag and sign.
        let bits = |map: &estimate::Template, pos: usize, magnitude: u32| -> i64 {
            let (x, y) = (pos % n, pos / n);
            let (clipped, nonzero, sum) = map.template(pos, n);
            let sig = significant[estimate::significance(clipped, x, y, luma)];
            if magnitude == 0 {
                return i64::from(sig.cost(false));
            }
            let lc = estimate::level(clipped, nonzero, x, y);
            let mut bits = sig.cost(true) + greater_one[lc].cost(magnitude > 1) + (1 << 8);
            if magnitude > 1 {
                bits += greater_two[lc].cost(magnitude > 2);
            }
            if magnitude > 2 {
                let k = estimate::remainder_order(sum);
                let shifted = ((magnitude - 3) >> k) + 1;
                bits += (2 * (31 - shifted.leading_zeros()) + 1 + k) << 8;
            }
            i64::from(bits)
        };
        let mut map = estimate::Template::new(n);
        for &pos in &order[..=last] {
            let pos = usize::from(pos);
            map.set(pos, n, levels[pos].unsigned_abs());
        }
        for start in (0..=last).step_by(GROUP) {
            let end = (start + GROUP - 1).min(last);
            let nonzero = |&i: &usize| levels[usize::from(order[i])] != 0;
            let (Some(first), Some(group_last)) = (
                (start..=end).find(nonzero),
                (start..=end).rev().find(nonzero),
            ) else {
                continue;
            };
            let negative = levels[usize::from(order[first])] < 0;
            let sum: u32 = (first..=group_last)
                .map(|i| levels[usize::from(order[i])].unsigned_abs())
                .sum();
            if !hides_sign(first, group_last, true) || (sum % 2 == 1) == negative {
                continue;
            }
            // (cost change, scan index, new magnitude)
            let mut best: Option<(i64, usize, u32)> = None;
            for (i, &pos) in order.iter().enumerate().take(end + 1).skip(start) {
                let pos = usize::from(pos);
                let c = coeffs[pos];
                let magnitude = levels[pos].unsigned_abs();
                let here = dist(c, magnitude) + bits(&map, pos, magnitude) * lambda_fixed as i64;
                let mut consider = |new: u32| {
                    let cost = dist(c, new) + bits(&map, pos, new) * lambda_fixed as i64 - here;
                    if best.is_none_or(|(b, _, _)| cost < b) {
                        best = Some((cost, i, new));
                    }
                };
                if magnitude < MAX_LEVEL as u32 && (i >= first || (c < 0) == negative) {
                    consider(magnitude + 1);
                }
                if magnitude > 1 || (magnitude == 1 && i != first) {
                    consider(magnitude - 1);
                }
            }
            let Some((_, i, new)) = best else {
                continue;
            };
            let pos = usize::from(order[i]);
            let negative_here = if levels[pos] == 0 {
                coeffs[pos] < 0
            } else {
                levels[pos] < 0
            };
            levels[pos] = if negative_here {
                -(new as i32)
            } else {
                new as i32
            };
            map.set(pos, n, new);
        }
    }

    /// The decision, as in HM: in reverse scan from the last dead-zone level, each coefficient
    /// takes the cheapest of {level, level - 1, 0} (level the dead-zone one, so its rounding
    /// offset caps the choice) by transform-domain distortion plus λ times its rate from the
    /// frozen contexts, with the neighbour template of the levels already decided, plus what it
    /// changes in the rate of the neighbours coded after it (at their dead-zone levels); then
    /// the last position that minimises the block's estimated total (the tail left uncoded) is
    /// chosen. Changes `levels` and returns true only where that differs from them and leaves a
    /// nonzero level. `qp` is the quantiser's (the depth's offset included).
    fn rdoq_decide(
        coeffs: &[i32],
        levels: &mut [i32],
        (qp, bit_depth): (u8, u32),
        luma: bool,
        ctx: &Contexts,
        lambda_fixed: u64,
        scratch: &mut RdoqScratch,
    ) -> bool {
        use crate::entropy::Prob;
        use crate::quant::dequantize;
        use crate::residual::{estimate, last_in_scan};
        let count = levels.len();
        let log2n = count.trailing_zeros() / 2;
        let n = 1usize << log2n;
        let order = estimate::scan_order(log2n);
        let Some(start) = last_in_scan(levels, log2n) else {
            return false;
        };
        // Coefficients are 128/N times orthonormal ones, so a squared error e² in them is
        // e²·N²/2^14 in the pixel domain; costs below are J·2^16 (distortion shifted up by
        // 2·log2n + 2, rate in 1/256 bit times λ·2^16).
        let dshift = 2 * log2n + 2;
        let dist = |c: i32, magnitude: u32| -> u64 {
            let mut back = [0i32];
            dequantize(&[magnitude as i32], &mut back, qp, log2n, bit_depth);
            let e = i64::from(c.unsigned_abs()) - i64::from(back[0]);
            ((e * e) as u64) << dshift
        };
        let rate = |bits: u64| bits * lambda_fixed;
        let pt = usize::from(!luma);
        let size_class = usize::from(log2n > 3);
        let significant = &ctx.significant[pt][size_class];
        let (greater_one, greater_two) = (&ctx.greater_one[pt], &ctx.greater_two[pt]);
        // The contexts of `pos` from its template: (significance, greater-than, remainder order).
        let contexts = |map: &estimate::Template, pos: usize| -> (Prob, usize, u32) {
            let (x, y) = (pos % n, pos / n);
            let (clipped, nonzero, sum) = map.template(pos, n);
            (
                significant[estimate::significance(clipped, x, y, luma)],
                estimate::level(clipped, nonzero, x, y),
                estimate::remainder_order(sum),
            )
        };
        // Cost in 1/256 bit of coding `magnitude` in those contexts, significance flag aside.
        let level_bits = |(_, lc, k): (Prob, usize, u32), magnitude: u32| -> u64 {
            if magnitude == 0 {
                return 0;
            }
            let mut bits = greater_one[lc].cost(magnitude > 1);
            if magnitude > 1 {
                bits += greater_two[lc].cost(magnitude > 2);
            }
            if magnitude > 2 {
                let shifted = ((magnitude - 3) >> k) + 1;
                let prefix = 31 - shifted.leading_zeros();
                bits += (2 * prefix + 1 + k) << 8;
            }
            // The sign.
            u64::from(bits + (1 << 8))
        };
        // The template holds the decided levels and, where undecided, the dead-zone ones.
        let mut map = estimate::Template::new(n);
        for &pos in &order[..=start] {
            let pos = usize::from(pos);
            map.set(pos, n, levels[pos].unsigned_abs());
        }
        // Starts as the dead-zone levels: zero past `start` and wherever those are zero, and
        // every other position is decided below.
        let RdoqScratch {
            decided,
            coded,
            sig_one,
            uncoded,
        } = scratch;
        decided.clear();
        decided.extend_from_slice(levels);
        // Per scan index: cost of the chosen level with its significance flag, cost of the
        // significance flag set (not coded at the last position, and read only where a level
        // is decided), cost of leaving it zero and uncoded (past the last position). Every
        // entry read is written first, so the buffers only grow.
        for buffer in [&mut *coded, &mut *sig_one, &mut *uncoded] {
            if buffer.len() < start + 1 {
                buffer.resize(start + 1, 0);
            }
        }
        let (coded, sig_one, uncoded) = (
            &mut coded[..=start],
            &mut sig_one[..=start],
            &mut uncoded[..=start],
        );
        for i in (0..=start).rev() {
            let pos = usize::from(order[i]);
            let c = coeffs[pos];
            let zero = dist(c, 0);
            uncoded[i] = zero;
            let here = contexts(&map, pos);
            let own_zero = zero + rate(u64::from(here.0.cost(false)));
            let high = levels[pos].unsigned_abs();
            if high == 0 {
                // Nothing to choose (and the template already holds the zero).
                coded[i] = own_zero;
                continue;
            }
            sig_one[i] = rate(u64::from(here.0.cost(true)));
            let (x, y) = (pos % n, pos / n);
            // What a magnitude here does to the rate of the coefficients coded after it whose
            // template holds it, at their dead-zone levels.
            let later = |map: &mut estimate::Template, magnitude: u32| -> u64 {
                map.set(pos, n, magnitude);
                let mut total = 0;
                for (dx, dy) in [(1, 0), (2, 0), (0, 1), (0, 2), (1, 1)] {
                    if x >= dx && y >= dy {
                        let q = (y - dy) * n + x - dx;
                        let magnitude = levels[q].unsigned_abs();
                        let there = contexts(map, q);
                        total +=
                            u64::from(there.0.cost(magnitude != 0)) + level_bits(there, magnitude);
                    }
                }
                total
            };
            // (cost with the later rates, own cost, magnitude)
            let mut best = (own_zero + rate(later(&mut map, 0)), own_zero, 0u32);
            for magnitude in [high, high - 1] {
                if magnitude == 0 {
                    continue;
                }
                let own = dist(c, magnitude) + sig_one[i] + rate(level_bits(here, magnitude));
                let cost = own + rate(later(&mut map, magnitude));
                if cost < best.0 {
                    best = (cost, own, magnitude);
                }
            }
            coded[i] = best.1;
            decided[pos] = if c < 0 {
                -(best.2 as i32)
            } else {
                best.2 as i32
            };
            map.set(pos, n, best.2);
        }
        // The best last position: levels before it coded as decided, the tail left uncoded.
        let size = log2n as usize - 2;
        let last_x = estimate::last_costs(&ctx.last_x[pt][size], n);
        let last_y = estimate::last_costs(&ctx.last_y[pt][size], n);
        let mut tail: u64 = 0;
        let mut head: u64 = coded.iter().sum();
        let mut best_last: Option<(u64, usize)> = None;
        for i in (0..=start).rev() {
            head -= coded[i];
            let pos = usize::from(order[i]);
            if decided[pos] != 0 {
                let cost =
                    head + coded[i] - sig_one[i] + rate(last_x[pos % n] + last_y[pos / n]) + tail;
                if best_last.is_none_or(|(b, _)| cost < b) {
                    best_last = Some((cost, i));
                }
            }
            tail += uncoded[i];
        }
        let Some((_, last)) = best_last else {
            return false;
        };
        for &pos in &order[last + 1..] {
            decided[usize::from(pos)] = 0;
        }
        if decided[..] == *levels {
            return false;
        }
        levels.copy_from_slice(decided);
        true
    }
    // EVOLVE-BLOCK-END

    // EVOLVE-BLOCK-START intra_mode_decision
    /// Intra: Hadamard pre-selection of luma modes, full rate-distortion check of the best few,
    /// then the chroma mode.
    fn search_intra(
        &mut self,
        source: &SourceBlock<T>,
        x: usize,
        y: usize,
        log2: u32,
    ) -> Candidate {
        let size = 1usize << log2;
        let (cx, cy) = (x >> UNIT_LOG2, y >> UNIT_LOG2);
        let luma_log2 = log2.min(5);
        let edges = Edges::gather(
            &self.picture.planes[0],
            &self.grid,
            (x, y, size),
            0,
            (cx, cy),
        );
        let mode_of =
            |info: Option<&UnitInfo>| info.filter(|i| i.intra).map_or(DC, |i| i.luma_mode);
        let mpm = most_probable_modes(
            mode_of(self.grid.neighbour(cx as isize - 1, cy as isize, cx, cy)),
            mode_of(self.grid.neighbour(cx as isize, cy as isize - 1, cx, cy)),
        );
        // Intra units are at most the largest transform.
        let mut block = [T::default(); 1 << (2 * MAX_TX_LOG2)];
        let pred = &mut block[..size * size];
        let rank = |mode: u8, pred: &mut [T]| {
            predict(&edges, mode, true, pred);
            let distortion = u64::from(satd(&source.planes[0], size, pred, size, size, size));
            let bits = if mpm.contains(&mode) { 2 } else { 6 };
            (distortion + ((bits * self.lambda_sad) >> 8), mode)
        };
        // Coarse pass over planar, DC and every fourth direction (plus the most probable
        // modes), then the directions next to the best one.
        let mut ranked: Vec<(u64, u8)> = Vec::with_capacity(16);
        let mut coarse: Vec<u8> = if self.genome.intra_angular {
            [PLANAR, DC]
                .into_iter()
                .chain((2..MODE_COUNT).step_by(4))
                .collect()
        } else {
            vec![PLANAR, DC, HORIZONTAL, VERTICAL]
        };
        for m in mpm {
            if !coarse.contains(&m) && (self.genome.intra_angular || m <= DC) {
                coarse.push(m);
            }
        }
        for &mode in &coarse {
            ranked.push(rank(mode, pred));
        }
        if self.genome.intra_angular {
            ranked.sort_unstable();
            if let Some(&(_, best_angular)) = ranked.iter().find(|(_, m)| *m > DC) {
                for delta in [-2i32, -1, 1, 2] {
                    let mode = i32::from(best_angular) + delta;
                    if (2..i32::from(MODE_COUNT)).contains(&mode) && !coarse.contains(&(mode as u8))
                    {
                        ranked.push(rank(mode as u8, pred));
                    }
                }
            }
        }
        ranked.sort_unstable();
        ranked.truncate(usize::from(self.genome.intra_rdo_candidates));
        // (cost, mode, levels, distortion, transform skip bits)
        type Choice = (u64, u8, Option<Vec<i32>>, u64, u8);
        let mut best: Option<Choice> = None;
        for &(_, mode) in &ranked {
            predict(&edges, mode, true, pred);
            let (levels, d, skip) = self.code_block(&source.planes[0], pred, luma_log2, true, true);
            let transform_skip = if skip { skip_bit(true, 0) } else { 0 };
            let cu = CodedCu {
                x,
                y,
                log2,
                skip: false,
                qp: self.qp,
                prediction: Prediction::Intra {
                    luma_mode: mode,
                    chroma_option: 0,
                    chroma_mode: mode,
                },
                luma: vec![levels.clone()],
                chroma: [None, None],
                transform_skip,
                tx_split: false,
            };
            let rate = self.cu_rate(&cu);
            let cost = self.rd.cost(d, rate);
            if best.as_ref().is_none_or(|b| cost < b.0) {
                best = Some((cost, mode, levels, d, transform_skip));
            }
        }
        let (_, luma_mode, luma_levels, luma_distortion, luma_skip) =
            best.unwrap_or((0, DC, None, 0, 0));
        // Chroma: each signallable mode, both planes coded.
        let half = size / 2;
        let chroma_log2 = log2 - 1;
        let mut best_chroma: Option<(u64, usize, ChromaLevels, u8)> = None;
        let chroma_pred = &mut block[..half * half];
        let chroma_edges: Vec<Edges<T>> = (1..3)
            .map(|p| {
                Edges::gather(
                    &self.picture.planes[p],
                    &self.grid,
                    (x / 2, y / 2, half),
                    1,
                    (cx, cy),
                )
            })
            .collect();
        let options = chroma_mode_options(luma_mode);
        // Same-as-luma and the best other mode by Hadamard cost go to the full check.
        let best_other = (1..options.len())
            .min_by_key(|&option| {
                chroma_edges
                    .iter()
                    .zip(&source.planes[1..])
                    .map(|(edges, src)| {
                        predict(edges, options[option], false, chroma_pred);
                        satd(src, half, chroma_pred, half, half, half)
                    })
                    .sum::<u32>()
            })
            .unwrap_or(0);
        for option in [0, best_other] {
            let mode = options[option];
            let mut distortion = 0;
            let mut levels: [Option<Vec<i32>>; 2] = [None, None];
            let mut transform_skip = luma_skip;
            for (p, slot) in levels.iter_mut().enumerate() {
                predict(&chroma_edges[p], mode, false, chroma_pred);
                let (l, d, skip) =
                    self.code_block(&source.planes[1 + p], chroma_pred, chroma_log2, false, true);
                distortion += d;
                *slot = l;
                transform_skip |= if skip { skip_bit(false, p) } else { 0 };
            }
            let cu = CodedCu {
                x,
                y,
                log2,
                skip: false,
                qp: self.qp,
                prediction: Prediction::Intra {
                    luma_mode,
                    chroma_option: option as u8,
                    chroma_mode: mode,
                },
                luma: vec![luma_levels.clone()],
                chroma: levels.clone(),
                transform_skip,
                tx_split: false,
            };
            let rate = self.cu_rate(&cu);
            let cost = self.rd.cost(luma_distortion + distortion, rate);
            if best_chroma.as_ref().is_none_or(|b| cost < b.0) {
                best_chroma = Some((cost, option, levels, transform_skip));
            }
        }
        let (cost, option, chroma, transform_skip) =
            best_chroma.unwrap_or((u64::MAX, 0, [None, None], luma_skip));
        Candidate {
            cost,
            cu: CodedCu {
                x,
                y,
                log2,
                skip: false,
                qp: self.qp,
                prediction: Prediction::Intra {
                    luma_mode,
                    chroma_option: option as u8,
                    chroma_mode: chroma_mode_options(luma_mode)[option],
                },
                luma: vec![luma_levels],
                chroma,
                transform_skip,
                tx_split: false,
            },
        }
    }
    // EVOLVE-BLOCK-END
}

/// Buffers of [`FrameEncoder::rdoq_decide`], kept between blocks.
#[derive(Default)]
struct RdoqScratch {
    decided: Vec<i32>,
    coded: Vec<u64>,
    sig_one: Vec<u64>,
    uncoded: Vec<u64>,
}

#[derive(Default)]
struct SavedRegion<T: Sample> {
    planes: [Vec<T>; 3],
    units: Vec<UnitInfo>,
}

/// The source samples of a coding unit, tight rows per plane.
#[derive(Default)]
struct SourceBlock<T: Sample> {
    planes: [Vec<T>; 3],
}

impl<T: Sample> SourceBlock<T> {
    #[cfg(test)]
    fn new(source: &Picture<T>, x: usize, y: usize, size: usize) -> Self {
        let mut block = SourceBlock::default();
        block.load(source, x, y, size);
        block
    }

    /// The unit at (x, y) of `source`, into these buffers' memory.
    fn load(&mut self, source: &Picture<T>, x: usize, y: usize, size: usize) {
        let half = size / 2;
        let [luma, cb, cr] = &mut self.planes;
        copy_block_into(&source.planes[0], x, y, size, luma);
        copy_block_into(&source.planes[1], x / 2, y / 2, half, cb);
        copy_block_into(&source.planes[2], x / 2, y / 2, half, cr);
    }
}

/// A prediction of a coding unit, tight rows per plane.
#[derive(Default)]
struct Prediction3<T: Sample> {
    planes: [Vec<T>; 3],
}

impl<T: Sample> Prediction3<T> {
    fn slices(&self) -> [&[T]; 3] {
        [&self.planes[0], &self.planes[1], &self.planes[2]]
    }

    /// The motion-compensated prediction of a `size` unit at (x, y) into these buffers
    /// (`scratch`, at least as long, holds the second direction's), reusing their memory.
    fn predict_inter(
        &mut self,
        references: &[&Picture<T>],
        (x, y, size): (usize, usize, usize),
        motion: &Motion,
        scratch: &mut [Vec<T>; 3],
    ) {
        self.predict_inter_luma(references, (x, y, size), motion, scratch);
        self.predict_inter_chroma(references, (x, y, size), motion, scratch);
    }

    /// The luma of [`Self::predict_inter`], which sizes the buffers for the unit: it comes
    /// first.
    fn predict_inter_luma(
        &mut self,
        references: &[&Picture<T>],
        (x, y, size): (usize, usize, usize),
        motion: &Motion,
        scratch: &mut [Vec<T>; 3],
    ) {
        let samples = size * size;
        let resize = |planes: &mut [Vec<T>; 3], n: usize| {
            planes[0].resize(n, T::default());
            planes[1].resize(n / 4, T::default());
            planes[2].resize(n / 4, T::default());
        };
        resize(&mut self.planes, samples);
        // The scratch only grows: shrinking it would zero-fill it again on the next larger unit.
        if motion.second.is_some() && scratch[0].len() < samples {
            resize(scratch, samples);
        }
        predict_motion_luma(
            references,
            x,
            y,
            size,
            motion,
            &mut self.planes[0],
            &mut scratch[0],
        );
    }

    /// The chroma of [`Self::predict_inter`], after its luma.
    fn predict_inter_chroma(
        &mut self,
        references: &[&Picture<T>],
        (x, y, size): (usize, usize, usize),
        motion: &Motion,
        scratch: &mut [Vec<T>; 3],
    ) {
        let [_, cb, cr] = &mut self.planes;
        let [_, scb, scr] = scratch;
        predict_motion_chroma(references, x, y, size, motion, [cb, cr], [scb, scr]);
    }

    /// The sum of squared differences of plane `index` against the unit's source.
    fn plane_sse(&self, index: usize, source: &SourceBlock<T>) -> u64 {
        let (p, s) = (&self.planes[index], &source.planes[index]);
        let n = p.len().isqrt();
        sse(p, n, s, n, n, n)
    }
}

/// An n×n block at (bx, by) of a tight `stride`-wide block, into `out`'s memory.
fn extract<T: Sample>(
    block: &[T],
    stride: usize,
    bx: usize,
    by: usize,
    n: usize,
    out: &mut Vec<T>,
) {
    out.clear();
    for row in 0..n {
        let start = (by + row) * stride + bx;
        out.extend_from_slice(&block[start..start + n]);
    }
}

/// The n×n block of `plane` at (x, y) as tight rows, into `out`'s memory: copied, never
/// zero-filled first.
fn copy_block_into<T: Sample>(
    plane: &PaddedPlane<T>,
    x: usize,
    y: usize,
    n: usize,
    out: &mut Vec<T>,
) {
    /// Rows of `N` samples: fixed-size copies compile to a few moves, where a copy of a
    /// run-time length calls `memcpy` per row.
    fn rows<T: Sample, const N: usize>(plane: &PaddedPlane<T>, x: usize, y: usize, out: &mut [T]) {
        for (row, dst) in out.chunks_exact_mut(N).enumerate() {
            let dst: &mut [T; N] = dst.try_into().expect("rows of N samples");
            *dst = plane
                .row(x, y + row, N)
                .try_into()
                .expect("a row of N samples");
        }
    }
    out.resize(n * n, T::default());
    match n {
        4 => rows::<T, 4>(plane, x, y, out),
        8 => rows::<T, 8>(plane, x, y, out),
        16 => rows::<T, 16>(plane, x, y, out),
        32 => rows::<T, 32>(plane, x, y, out),
        _ => {
            for (row, dst) in out.chunks_exact_mut(n).enumerate() {
                dst.copy_from_slice(plane.row(x, y + row, n));
            }
        }
    }
}

fn luma_blocks(log2: u32) -> usize {
    1 << (2 * (log2 - log2.min(crate::partition::MAX_TX_LOG2)))
}

fn has_levels(cu: &CodedCu) -> bool {
    cu.luma.iter().chain(&cu.chroma).any(Option::is_some)
}

/// What the syntax of a coding unit depends on besides its neighbours.
#[derive(Clone, Copy)]
pub struct FrameSyntax<'a> {
    pub header: &'a SequenceHeader,
    pub reference_count: usize,
    pub kind: FrameKind,
    /// The frame's QP.
    pub qp: u8,
}

/// Writes one coding unit's syntax: the same order `Decoder::parse_cu` reads it.
pub fn write_cu<W: Writer>(
    w: &mut W,
    ctx: &mut Contexts,
    grid: &UnitGrid,
    cu: &CodedCu,
    frame: &FrameSyntax,
) {
    let FrameSyntax {
        header,
        reference_count,
        kind,
        qp: frame_qp,
    } = *frame;
    let (cx, cy) = cu.unit();
    let intra = matches!(cu.prediction, Prediction::Intra { .. });
    if kind != FrameKind::Key {
        w.bit(
            &mut ctx.skip[neighbour_count(grid, cx, cy, |i| i.skip)],
            cu.skip,
        );
        if !cu.skip {
            w.bit(
                &mut ctx.intra[neighbour_count(grid, cx, cy, |i| i.intra)],
                intra,
            );
        }
    }
    match cu.prediction {
        Prediction::Intra {
            luma_mode,
            chroma_option,
            ..
        } => {
            let mode_of =
                |info: Option<&UnitInfo>| info.filter(|i| i.intra).map_or(DC, |i| i.luma_mode);
            let mpm = most_probable_modes(
                mode_of(grid.neighbour(cx as isize - 1, cy as isize, cx, cy)),
                mode_of(grid.neighbour(cx as isize, cy as isize - 1, cx, cy)),
            );
            write_luma_mode(w, ctx, luma_mode, mpm);
            write_chroma_mode(w, ctx, usize::from(chroma_option));
        }
        Prediction::Inter {
            motion,
            merge_index,
            mvd,
        } => {
            if !cu.skip {
                w.bit(&mut ctx.merge_flag, merge_index.is_some());
            }
            match merge_index {
                Some(index) => write_truncated_unary(
                    w,
                    &mut ctx.merge_index,
                    usize::from(index),
                    usize::from(header.merge_candidates),
                ),
                None => {
                    if kind.bi_predicted() {
                        w.bit(&mut ctx.bi, motion.second.is_some());
                    }
                    for (vector, mvd) in motion.vectors().zip(mvd) {
                        write_truncated_unary(
                            w,
                            &mut ctx.ref_idx,
                            usize::from(vector.ref_idx),
                            reference_count,
                        );
                        write_mvd(w, ctx, mvd);
                    }
                }
            }
        }
    }
    if cu.skip {
        return;
    }
    if header.block_qp {
        let predicted = predicted_qp(grid, cx, cy, frame_qp);
        write_delta_qp(w, ctx, i32::from(cu.qp) - i32::from(predicted));
    }
    if tx_split_allowed(header.residual_quadtree, cu.log2, intra) {
        w.bit(&mut ctx.tx_split[cu.log2 as usize - 4], cu.tx_split);
    }
    let kind = usize::from(!intra);
    let luma_log2 = cu.luma_tx_log2();
    let skip = |luma: bool, index: usize| cu.transform_skip & skip_bit(luma, index) != 0;
    for (i, levels) in cu.luma.iter().enumerate() {
        let block = (levels.as_deref(), skip(true, i));
        write_block(w, ctx, header, kind, block, luma_log2, true);
    }
    let chroma_log2 = cu.chroma_tx_log2();
    for (p, levels) in cu.chroma.iter().enumerate() {
        let block = (levels.as_deref(), skip(false, p));
        write_block(w, ctx, header, kind, block, chroma_log2, false);
    }
}

/// A block's coded flag, transform skip flag (4x4 blocks with levels, when the sequence allows
/// it) and levels.
fn write_block<W: Writer>(
    w: &mut W,
    ctx: &mut Contexts,
    header: &SequenceHeader,
    kind: usize,
    (levels, transform_skip): (Option<&[i32]>, bool),
    log2n: u32,
    luma: bool,
) {
    let pt = usize::from(!luma);
    w.bit(&mut ctx.cbf[pt][kind], levels.is_some());
    if let Some(levels) = levels {
        if header.transform_skip && log2n == 2 {
            w.bit(&mut ctx.transform_skip[pt], transform_skip);
        }
        write_levels(w, ctx, levels, log2n, luma, header.sign_hiding);
    }
}

/// Levels of the two chroma planes of a coding unit.
type ChromaLevels = [Option<Vec<i32>>; 2];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::dequantize;
    use crate::reconstruct::add_residual;
    use crate::residual::write_levels;
    use crate::transform::inverse;
    use codeclab_video::{AnyFrame, Rational};

    use crate::test_rng::Rng;

    fn encoder(rdoq: bool) -> Encoder<u8> {
        encoder_with(Genome {
            rdoq,
            ..Genome::default()
        })
    }

    fn encoder_with(genome: Genome) -> Encoder<u8> {
        let format = VideoFormat {
            width: 64,
            height: 64,
            bit_depth: 8,
            chroma: ChromaSampling::Cs420,
            fps: Rational::new(30, 1),
            aspect: Rational::new(1, 1),
        };
        Encoder::new(format, genome, RateMode::ConstantQp(32)).unwrap()
    }

    /// A frame encoder of `encoder`'s settings with no reference, coding `source`.
    fn frame_encoder<'a>(
        encoder: &'a Encoder,
        source: &'a Picture<u8>,
        qp: u8,
        key: bool,
    ) -> FrameEncoder<'a, u8> {
        let kind = if key {
            FrameKind::Key
        } else {
            FrameKind::Predicted
        };
        FrameEncoder::new(
            &encoder.genome,
            &encoder.header,
            encoder.coded,
            source,
            &[],
            &[],
            FrameMotion::new(0, false, &[], false, false),
            qp,
            kind,
            None,
            Contexts::default(),
        )
    }

    /// A source block and a prediction that misses it by noise of a random strength, so that
    /// blocks range from a few small levels to many large ones.
    fn random_block(rng: &mut Rng, n: usize) -> (Vec<u8>, Vec<u8>) {
        let base = rng.below(200) + 28;
        let texture = rng.below(24) + 1;
        let noise = [2, 4, 8, 16, 40][rng.below(5) as usize] as u32;
        let src: Vec<u8> = (0..n * n)
            .map(|_| (base + rng.below(texture as u32) - texture / 2).clamp(0, 255) as u8)
            .collect();
        let pred = src
            .iter()
            .map(|&s| (i32::from(s) + rng.below(noise) - noise as i32 / 2).clamp(0, 255) as u8)
            .collect();
        (src, pred)
    }

    /// Contexts adapted by coding some random blocks, so the estimates see skewed
    /// probabilities.
    fn trained_contexts(rng: &mut Rng) -> Contexts {
        let mut ctx = Contexts::default();
        let mut w = RangeEncoder::new();
        for _ in 0..40 {
            let log2n = 2 + rng.below(4) as u32;
            let n = 1usize << log2n;
            let mut levels = vec![0i32; n * n];
            for (i, l) in levels.iter_mut().enumerate() {
                if (i % n) + (i / n) < 3 + rng.below(n as u32) as usize / 2 && rng.below(3) == 0 {
                    *l = rng.below(7) - 3;
                }
            }
            levels[0] = 1 + rng.below(4);
            write_levels(&mut w, &mut ctx, &levels, log2n, rng.below(2) == 0, false);
        }
        ctx
    }

    /// J = D + λ·R of what `code_block` decided, R with the block's coded-block flag.
    fn block_cost(
        fe: &mut FrameEncoder<u8>,
        (levels, d, skip): (&Option<Vec<i32>>, u64, bool),
        log2n: u32,
        luma: bool,
        intra: bool,
    ) -> u64 {
        let mut counter = CostCounter::default();
        let mut ctx = fe.contexts.clone();
        write_block(
            &mut counter,
            &mut ctx,
            fe.header,
            usize::from(!intra),
            (levels.as_deref(), skip),
            log2n,
            luma,
        );
        fe.rd.cost(d, counter.cost)
    }

    /// A textured 64x64 frame moved `t` samples right and down by half as many.
    fn moving_frame(t: usize) -> Frame<u8> {
        let planes = (0..3)
            .map(|p| {
                let n = if p == 0 { 64 } else { 32 };
                let data = (0..n * n)
                    .map(|i| {
                        let (x, y) = (i % n + 2 * t, i / n + t);
                        let wave =
                            ((x as f64 * 0.3).sin() * 50.0 + (y as f64 * 0.2).cos() * 40.0) as i32;
                        (128 + wave + 20 * ((x / 9 + y / 7) % 2) as i32) as u8
                    })
                    .collect();
                codeclab_video::Plane::from_vec(n, n, data).unwrap()
            })
            .collect();
        Frame { planes }
    }

    #[test]
    fn the_decoder_starts_each_frame_from_the_encoders_contexts() {
        let mut encoder = encoder_with(Genome {
            context_carry: true,
            keyint: 14,
            mini_gop: 8,
            reference_frames: 2,
            ..Genome::default()
        });
        let mut stream = Vec::new();
        for t in 0..20 {
            for frame in encoder.encode_frame(&moving_frame(t)).unwrap() {
                stream.extend_from_slice(&frame.bytes);
            }
        }
        let (last, end) = encoder.finish().unwrap();
        stream.extend(last.into_iter().flat_map(|f| f.bytes).chain(end));
        // Frames coded in parallel start in no particular order.
        let mut encoded = crate::gop::STARTED.take();
        encoded.sort_by_key(|(poc, _)| *poc);
        let mut decoder = crate::Decoder::new(stream.as_slice()).unwrap();
        while decoder.next_frame().unwrap().is_some() {}
        let mut decoded = crate::gop::STARTED.take();
        decoded.sort_by_key(|(poc, _)| *poc);
        assert_eq!(encoded.len(), 20);
        assert!(encoded == decoded);
        // Every frame but the two key frames started from carried contexts.
        let defaults = encoded
            .iter()
            .filter(|(_, c)| *c == Contexts::default())
            .count();
        assert_eq!(defaults, 2);
    }

    /// Display indices of the anchors an encoder of `genome` codes for `frames` 128x128 frames
    /// of smooth texture moved `speed` samples right per frame.
    fn anchors_of_moving_texture(genome: Genome, frames: usize, speed: usize) -> Vec<u64> {
        let format = VideoFormat {
            width: 128,
            height: 128,
            bit_depth: 8,
            chroma: ChromaSampling::Cs420,
            fps: Rational::new(30, 1),
            aspect: Rational::new(1, 1),
        };
        let mut encoder = Encoder::new(format, genome, RateMode::ConstantQp(32)).unwrap();
        let frame = |t: usize| {
            let planes = (0..3)
                .map(|p| {
                    let n = if p == 0 { 128 } else { 64 };
                    let data = (0..n * n)
                        .map(|i| {
                            let (x, y) = ((i % n + speed * t) as f64, (i / n) as f64);
                            let wave = (x * 0.11 + (y * 0.07).sin() * 2.0).sin() * 60.0
                                + (y * 0.13 + x * 0.05).cos() * 40.0
                                + (x * 0.031 - y * 0.017).sin() * 20.0;
                            (128.0 + wave) as u8
                        })
                        .collect();
                    codeclab_video::Plane::from_vec(n, n, data).unwrap()
                })
                .collect();
            Frame { planes }
        };
        let mut coded = Vec::new();
        for t in 0..frames {
            coded.extend(encoder.encode_frame(&frame(t)).unwrap());
        }
        let (last, end) = encoder.finish().unwrap();
        coded.extend(last);
        assert_eq!(coded.len(), frames);
        // The decoder follows whatever structure was chosen.
        let stream: Vec<u8> = coded
            .iter()
            .flat_map(|f| f.bytes.clone())
            .chain(end)
            .collect();
        let mut decoder = crate::Decoder::new(stream.as_slice()).unwrap();
        let mut in_display_order: Vec<&EncodedFrame> = coded.iter().collect();
        in_display_order.sort_by_key(|f| f.display_index);
        for f in in_display_order {
            let decoded = decoder.next_frame().unwrap();
            assert!(matches!(decoded, Some(AnyFrame::U8(d)) if d == f.reconstruction));
        }
        coded
            .iter()
            .filter(|f| f.kind.is_anchor())
            .map(|f| f.display_index)
            .collect()
    }

    #[test]
    fn adaptive_mini_gops_are_longest_on_still_content_and_shorter_in_motion() {
        let adaptive = Genome {
            adaptive_gop: true,
            ..Genome::default()
        };
        assert_eq!(
            anchors_of_moving_texture(adaptive.clone(), 33, 0),
            [0, 16, 32]
        );
        // Moving 6 samples a frame, a reference 16 frames away is beyond the lookahead's search.
        let moving = anchors_of_moving_texture(adaptive, 33, 6);
        assert!(
            moving.windows(2).all(|w| w[1] - w[0] <= 8),
            "anchors {moving:?}"
        );
        // Without the switch the mini-GOPs keep their length.
        let fixed = anchors_of_moving_texture(Genome::default(), 33, 6);
        assert_eq!(fixed, [0, 16, 32]);
    }

    #[test]
    fn transform_domain_distortion_matches_pixel_sse() {
        // The scale rdoq_decide assumes: coefficients are 128/N times orthonormal ones.
        let mut rng = Rng(7);
        for log2n in 2..=5u32 {
            let n = 1usize << log2n;
            let (mut pixel, mut transform) = (0f64, 0f64);
            for _ in 0..50 {
                let (src, pred) = random_block(&mut rng, n);
                let residual: Vec<i32> = src
                    .iter()
                    .zip(&pred)
                    .map(|(&s, &p)| i32::from(s) - i32::from(p))
                    .collect();
                let mut coeffs = vec![0; n * n];
                forward(&residual, &mut coeffs, log2n, TxType::Dct);
                let mut levels = vec![0; n * n];
                quantize(&coeffs, &mut levels, 27, log2n, 0.5);
                let mut back = vec![0; n * n];
                dequantize(&levels, &mut back, 27, log2n, 8);
                let mut rec = vec![0; n * n];
                inverse(&back, &mut rec, log2n, TxType::Dct, 8);
                pixel += residual
                    .iter()
                    .zip(&rec)
                    .map(|(a, b)| f64::from((a - b) * (a - b)))
                    .sum::<f64>();
                transform += coeffs
                    .iter()
                    .zip(&back)
                    .map(|(a, b)| f64::from(a - b).powi(2))
                    .sum::<f64>()
                    * (n * n) as f64
                    / 16384.0;
            }
            let ratio = transform / pixel;
            assert!((0.9..1.1).contains(&ratio), "size {n}: ratio {ratio}");
        }
    }

    #[test]
    fn rdoq_never_raises_the_rd_cost() {
        let mut rng = Rng(2024);
        let (plain_encoder, rdoq_encoder) = (encoder(false), encoder(true));
        let source = Picture::new(64, 64, 8);
        let (mut changed, mut gained, mut raw_worse, mut blocks) = (0, 0, 0, 0);
        for round in 0..60 {
            let qp = [22u8, 27, 32, 37][round % 4];
            let key = round % 3 == 0;
            let contexts = trained_contexts(&mut rng);
            let mut plain = frame_encoder(&plain_encoder, &source, qp, key);
            let mut rdoq = frame_encoder(&rdoq_encoder, &source, qp, key);
            plain.contexts = contexts.clone();
            rdoq.contexts = contexts;
            for _ in 0..20 {
                let log2n = 2 + rng.below(4) as u32;
                let (luma, intra) = (rng.below(3) != 0, rng.below(2) == 0);
                let (src, pred) = random_block(&mut rng, 1 << log2n);
                let (l0, d0, s0) = plain.code_block(&src, &pred, log2n, luma, intra);
                let (l1, d1, s1) = rdoq.code_block(&src, &pred, log2n, luma, intra);
                let j0 = block_cost(&mut plain, (&l0, d0, s0), log2n, luma, intra);
                let j1 = block_cost(&mut rdoq, (&l1, d1, s1), log2n, luma, intra);
                assert!(j1 <= j0, "qp {qp} log2n {log2n}: {j1} > {j0}");
                let Some(levels) = l0 else { continue };
                blocks += 1;
                changed += usize::from(l1.as_ref() != Some(&levels));
                gained += usize::from(j1 < j0);
                // The estimated decision alone, before the exact check that guards it.
                let n = 1usize << log2n;
                let residual: Vec<i32> = src
                    .iter()
                    .zip(&pred)
                    .map(|(&s, &p)| i32::from(s) - i32::from(p))
                    .collect();
                let mut coeffs = vec![0; n * n];
                forward(&residual, &mut coeffs, log2n, TxType::Dct);
                let rounding = if intra {
                    rdoq.genome.deadzone_intra
                } else {
                    rdoq.genome.deadzone_inter
                };
                let block_qp = if luma { rdoq.qp } else { rdoq.chroma_qp };
                let mut raw = vec![0; n * n];
                quantize(&coeffs, &mut raw, block_qp, log2n, rounding);
                let lambda_fixed = rdoq.rd.cost(0, 1 << 16);
                FrameEncoder::<u8>::rdoq_decide(
                    &coeffs,
                    &mut raw,
                    (block_qp, 8),
                    luma,
                    &rdoq.contexts,
                    lambda_fixed,
                    &mut RdoqScratch::default(),
                );
                let mut out = vec![0u8; n * n];
                add_residual(
                    &pred,
                    Some(&raw),
                    block_qp,
                    (log2n, TxType::Dct),
                    8,
                    &mut out,
                );
                let raw_levels = Some(raw).filter(|l| l.iter().any(|&v| v != 0));
                let d_raw = match raw_levels {
                    Some(_) => sse(&src, n, &out, n, n, n),
                    None => sse(&src, n, &pred, n, n, n),
                };
                let j_raw = block_cost(&mut rdoq, (&raw_levels, d_raw, false), log2n, luma, intra);
                raw_worse += usize::from(j_raw > j0);
            }
        }
        // The decision must matter: most coded blocks change and get cheaper, and the estimate
        // alone is rarely worse than the dead-zone levels.
        eprintln!("{blocks} blocks: {changed} changed, {gained} cheaper, {raw_worse} raw worse");
        assert!(blocks > 200, "{blocks} coded blocks");
        assert!(changed * 5 > blocks, "{changed} of {blocks} changed");
        assert!(gained == changed, "{gained} of {changed} changed cheaper");
        assert!(
            raw_worse * 10 < blocks,
            "estimate worse on {raw_worse} of {blocks}"
        );
    }

    #[test]
    fn hidden_signs_have_their_parity_and_decode() {
        use crate::residual::{GROUP, estimate, hides_sign, read_levels};
        let mut rng = Rng(99);
        let mut hidden = 0;
        for rdoq in [false, true] {
            let encoder = encoder_with(Genome {
                rdoq,
                sign_hiding: true,
                ..Genome::default()
            });
            let source = Picture::<u8>::new(64, 64, 8);
            for round in 0..40 {
                let qp = [22u8, 27, 32, 37][round % 4];
                let mut fe = frame_encoder(&encoder, &source, qp, round % 2 == 0);
                fe.contexts = trained_contexts(&mut rng);
                for _ in 0..10 {
                    let log2n = 2 + rng.below(4) as u32;
                    let (luma, intra) = (rng.below(3) != 0, rng.below(2) == 0);
                    let (src, pred) = random_block(&mut rng, 1 << log2n);
                    let (Some(levels), ..) = fe.code_block(&src, &pred, log2n, luma, intra) else {
                        continue;
                    };
                    let order = estimate::scan_order(log2n);
                    let at = |i: usize| levels[usize::from(order[i])];
                    for start in (0..levels.len()).step_by(GROUP) {
                        let range = start..start + GROUP;
                        let (Some(first), Some(last)) = (
                            range.clone().find(|&i| at(i) != 0),
                            range.rev().find(|&i| at(i) != 0),
                        ) else {
                            continue;
                        };
                        if hides_sign(first, last, true) {
                            hidden += 1;
                            let sum: u32 = (first..=last).map(|i| at(i).unsigned_abs()).sum();
                            assert_eq!(sum % 2 == 1, at(first) < 0, "rdoq {rdoq} qp {qp}");
                        }
                    }
                    let mut w = RangeEncoder::new();
                    let mut ctx = Contexts::default();
                    write_levels(&mut w, &mut ctx, &levels, log2n, luma, true);
                    let bytes = w.finish();
                    let mut back = vec![0; levels.len()];
                    let mut r = crate::entropy::RangeDecoder::new(&bytes);
                    let mut ctx = Contexts::default();
                    read_levels(&mut r, &mut ctx, &mut back, log2n, luma, true).unwrap();
                    assert_eq!(back, levels);
                }
            }
        }
        assert!(hidden > 50, "only {hidden} groups hid a sign");
    }

    #[test]
    fn transform_skip_is_chosen_where_it_pays() {
        let mut rng = Rng(5);
        let source = Picture::<u8>::new(64, 64, 8);
        let (mut skipped, mut coded) = (0, 0);
        for transform_skip in [false, true] {
            let encoder = encoder_with(Genome {
                transform_skip,
                ..Genome::default()
            });
            let mut fe = frame_encoder(&encoder, &source, 27, true);
            for round in 0..200 {
                let (src, mut pred) = random_block(&mut rng, 4);
                // Every other block misses its source in one sample only: an impulse that the
                // untransformed residual codes with one level.
                if round % 2 == 0 {
                    pred.copy_from_slice(&src);
                    let i = rng.below(16) as usize;
                    pred[i] = if src[i] > 128 {
                        src[i] - 60
                    } else {
                        src[i] + 60
                    };
                }
                let (luma, intra) = (rng.below(2) == 0, rng.below(2) == 0);
                let (levels, d, skip) = fe.code_block(&src, &pred, 2, luma, intra);
                let Some(levels) = levels else { continue };
                assert!(transform_skip || !skip);
                coded += 1;
                skipped += usize::from(skip);
                // The distortion returned is the reconstruction's through the chosen transform.
                let tx = block_transform(intra, 2, false, skip);
                let qp = if luma { fe.qp } else { fe.chroma_qp };
                let mut out = [0u8; 16];
                add_residual(&pred, Some(&levels), qp, (2, tx), 8, &mut out);
                assert_eq!(sse(&src, 4, &out, 4, 4, 4), d);
            }
        }
        assert!(
            skipped * 10 > coded,
            "{skipped} of {coded} blocks skip the transform"
        );
    }

    #[test]
    fn residual_split_is_chosen_where_one_quadrant_carries_the_error() {
        let mut rng = Rng(9);
        let mut source = Picture::<u8>::new(64, 64, 8);
        for plane in &mut source.planes {
            for v in plane.data.iter_mut() {
                *v = 64 + rng.below(128) as u8;
            }
        }
        for residual_quadtree in [false, true] {
            let encoder = encoder_with(Genome {
                residual_quadtree,
                ..Genome::default()
            });
            let mut fe = frame_encoder(&encoder, &source, 27, false);
            let mut split = 0;
            for _ in 0..40 {
                let block = SourceBlock::new(&source, 16, 16, 16);
                let mut pred = Prediction3 {
                    planes: block.planes.clone(),
                };
                // Sharp errors confined to the top-left 8x8 quadrant.
                for _ in 0..6 {
                    let (x, y) = (rng.below(8) as usize, rng.below(8) as usize);
                    let v = &mut pred.planes[0][y * 16 + x];
                    *v = if *v > 128 { *v - 50 } else { *v + 50 };
                }
                let cu = fe.coded_motion_cu(16, 16, 4, Motion::single(0, Mv::ZERO));
                let candidate = fe.code_inter_residual(&block, cu, &pred);
                split += usize::from(candidate.cu.tx_split);
                assert_eq!(
                    candidate.cu.luma.len(),
                    if candidate.cu.tx_split { 4 } else { 1 }
                );
            }
            if residual_quadtree {
                assert!(split > 20, "{split} of 40 units split their residual");
            } else {
                assert_eq!(split, 0);
            }
        }
    }
}
