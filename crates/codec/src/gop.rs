//! Picture structure: frame kinds, the coding order of a hierarchical mini-GOP, and the decoded
//! picture buffer with the rule, shared by encoder and decoder, that says which pictures a frame
//! predicts from and which stay for later frames, and the rule that says which of its reference
//! pictures a frame takes its entropy contexts from.

use crate::entropy::Contexts;
use crate::error::{CodecError, Result};

/// What a frame packet is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// Intra only; empties the picture buffer.
    Key,
    /// An anchor predicted from earlier anchors, in display order as in coding order.
    Predicted,
    /// Between two anchors, predicted from both directions (one vector or two averaged);
    /// `reference`: later B frames of the same mini-GOP predict from it.
    Bi { reference: bool },
}

impl FrameKind {
    pub fn code(self) -> u8 {
        match self {
            FrameKind::Key => 0,
            FrameKind::Predicted => 1,
            FrameKind::Bi { reference: false } => 2,
            FrameKind::Bi { reference: true } => 3,
        }
    }

    pub fn from_code(code: u8) -> Result<FrameKind> {
        Ok(match code {
            0 => FrameKind::Key,
            1 => FrameKind::Predicted,
            2 => FrameKind::Bi { reference: false },
            3 => FrameKind::Bi { reference: true },
            _ => return Err(CodecError::Corrupt("unknown frame type")),
        })
    }

    /// Key and predicted frames: the pictures mini-GOPs are built between.
    pub fn is_anchor(self) -> bool {
        matches!(self, FrameKind::Key | FrameKind::Predicted)
    }

    pub fn is_reference(self) -> bool {
        !matches!(self, FrameKind::Bi { reference: false })
    }

    pub fn bi_predicted(self) -> bool {
        matches!(self, FrameKind::Bi { .. })
    }
}

/// One frame of a mini-GOP in coding order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scheduled {
    /// Display index.
    pub poc: u64,
    /// 0 for the anchor, then the depth of the halving that placed the frame.
    pub layer: u8,
    /// Later frames of the mini-GOP predict from it (always true for the anchor).
    pub reference: bool,
}

/// Coding order of the frames after the anchor at `previous` up to the anchor at `anchor`: the
/// anchor first, then the frame halfway between two coded ones, recursively (hierarchical B).
pub fn mini_gop_order(previous: u64, anchor: u64) -> Vec<Scheduled> {
    fn halve(low: u64, high: u64, layer: u8, order: &mut Vec<Scheduled>) {
        if high - low < 2 {
            return;
        }
        let middle = low + (high - low) / 2;
        order.push(Scheduled {
            poc: middle,
            layer,
            reference: high - low > 2,
        });
        halve(low, middle, layer + 1, order);
        halve(middle, high, layer + 1, order);
    }
    let mut order = vec![Scheduled {
        poc: anchor,
        layer: 0,
        reference: true,
    }];
    halve(previous, anchor, 1, &mut order);
    order
}

/// B pictures a stream may keep for reference at once: those of a mini-GOP of 16 (every B
/// frame with others between it and its neighbours), kept until the next anchor.
const MAX_BI_REFERENCES: usize = 7;

struct Entry<T> {
    poc: u64,
    anchor: bool,
    picture: T,
}

/// Decoded pictures kept for prediction, with their display indices.
pub struct PictureBuffer<T> {
    entries: Vec<Entry<T>>,
    reference_frames: usize,
}

impl<T> PictureBuffer<T> {
    /// `reference_frames`: pictures a frame may predict from in each direction.
    pub fn new(reference_frames: u8) -> Self {
        PictureBuffer {
            entries: Vec::new(),
            reference_frames: usize::from(reference_frames.max(1)),
        }
    }

    /// Drops what the frame about to be coded makes useless: everything before a key frame,
    /// the previous mini-GOP's B pictures before a predicted frame.
    pub fn prepare(&mut self, kind: FrameKind) {
        self.prepare_into(kind, &mut Vec::new());
    }

    /// [`Self::prepare`], handing the dropped pictures to `dropped` so their memory can be
    /// reused.
    pub fn prepare_into(&mut self, kind: FrameKind, dropped: &mut Vec<T>) {
        let keep_anchors = match kind {
            FrameKind::Key => false,
            FrameKind::Predicted => true,
            FrameKind::Bi { .. } => return,
        };
        dropped.extend(
            self.entries
                .extract_if(.., |e| !(keep_anchors && e.anchor))
                .map(|e| e.picture),
        );
    }

    /// The reference list of a frame at `poc`, nearest first: for a predicted frame the
    /// earlier pictures, for a B frame the nearest earlier and the nearest later alternating;
    /// up to `reference_frames` in each direction.
    pub fn references(&self, poc: u64, kind: FrameKind) -> Vec<&T> {
        let mut past: Vec<&Entry<T>> = self.entries.iter().filter(|e| e.poc < poc).collect();
        past.sort_by_key(|e| std::cmp::Reverse(e.poc));
        past.truncate(self.reference_frames);
        if !kind.bi_predicted() {
            return past.into_iter().map(|e| &e.picture).collect();
        }
        let mut future: Vec<&Entry<T>> = self.entries.iter().filter(|e| e.poc > poc).collect();
        future.sort_by_key(|e| e.poc);
        future.truncate(self.reference_frames);
        let mut list = Vec::with_capacity(past.len() + future.len());
        for i in 0..past.len().max(future.len()) {
            list.extend(past.get(i).map(|e| &e.picture));
            list.extend(future.get(i).map(|e| &e.picture));
        }
        list
    }

    /// Keeps the coded picture at `poc` if later frames predict from it; at most
    /// `reference_frames + 1` anchors stay. A stream that would need more pictures, or two at
    /// one display index, is corrupt.
    pub fn insert(&mut self, poc: u64, kind: FrameKind, picture: T) -> Result<()> {
        self.insert_into(poc, kind, picture, &mut Vec::new())
    }

    /// [`Self::insert`], handing a picture that is not kept, and those it evicts, to `dropped`.
    pub fn insert_into(
        &mut self,
        poc: u64,
        kind: FrameKind,
        picture: T,
        dropped: &mut Vec<T>,
    ) -> Result<()> {
        if !kind.is_reference() {
            dropped.push(picture);
            return Ok(());
        }
        if self.entries.iter().any(|e| e.poc == poc) {
            return Err(CodecError::Corrupt("two pictures at one display index"));
        }
        let anchor = kind.is_anchor();
        if !anchor && self.entries.iter().filter(|e| !e.anchor).count() >= MAX_BI_REFERENCES {
            return Err(CodecError::Corrupt(
                "too many B pictures kept for reference",
            ));
        }
        self.entries.push(Entry {
            poc,
            anchor,
            picture,
        });
        if anchor {
            while self.entries.iter().filter(|e| e.anchor).count() > self.reference_frames + 1 {
                let oldest = self
                    .entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.anchor)
                    .min_by_key(|(_, e)| e.poc)
                    .map(|(i, _)| i);
                if let Some(i) = oldest {
                    dropped.push(self.entries.remove(i).picture);
                }
            }
        }
        Ok(())
    }
}

/// What a reference picture leaves to the frames that start from its entropy contexts: the
/// contexts as its last bin left them, and what the choice among references looks at.
#[derive(Clone, Debug)]
pub struct CarriedContexts {
    pub kind: FrameKind,
    pub qp: u8,
    pub contexts: Contexts,
}

/// The contexts a frame of `kind` coded at `qp` starts from when contexts are carried, from its
/// reference list (nearest first). Key frames start from the defaults. Other frames take those of
/// the reference most like them: of the same class (B frame or anchor), then the nearest QP
/// (within a mini-GOP, the nearest level of the hierarchy, whose statistics are closest), then
/// the nearest in the list. Only the frame's own references count, so a frame depends on no
/// picture it does not already wait for (frames may later be decoded in parallel).
pub fn starting_contexts<'a>(
    kind: FrameKind,
    qp: u8,
    references: impl IntoIterator<Item = &'a CarriedContexts>,
) -> Contexts {
    if kind == FrameKind::Key {
        return Contexts::default();
    }
    references
        .into_iter()
        .enumerate()
        .min_by_key(|(i, r)| {
            (
                r.kind.bi_predicted() != kind.bi_predicted(),
                r.qp.abs_diff(qp),
                *i,
            )
        })
        .map_or_else(Contexts::default, |(_, r)| r.contexts.restarted())
}

#[cfg(test)]
thread_local! {
    /// The display index and starting contexts of every frame coded or decoded on this thread.
    pub static STARTED: std::cell::RefCell<Vec<(u64, Contexts)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mini_gop_codes_its_anchor_first_then_halves() {
        let order = mini_gop_order(0, 8);
        let pocs: Vec<u64> = order.iter().map(|s| s.poc).collect();
        assert_eq!(pocs, [8, 4, 2, 1, 3, 6, 5, 7]);
        let layers: Vec<u8> = order.iter().map(|s| s.layer).collect();
        assert_eq!(layers, [0, 1, 2, 3, 3, 2, 3, 3]);
        let references: Vec<bool> = order.iter().map(|s| s.reference).collect();
        assert_eq!(
            references,
            [true, true, true, false, false, true, false, false]
        );
        assert_eq!(
            mini_gop_order(5, 6),
            [Scheduled {
                poc: 6,
                layer: 0,
                reference: true
            }]
        );
        // Every frame of any length appears once, and the buffer can keep what they need.
        for length in 1..=16 {
            let order = mini_gop_order(10, 10 + length);
            let mut buffer = PictureBuffer::new(1);
            buffer.insert(10, FrameKind::Key, ()).unwrap();
            for s in &order {
                let kind = if s.layer == 0 {
                    FrameKind::Predicted
                } else {
                    FrameKind::Bi {
                        reference: s.reference,
                    }
                };
                buffer.prepare(kind);
                buffer.insert(s.poc, kind, ()).unwrap();
            }
            let mut pocs: Vec<u64> = order.iter().map(|s| s.poc).collect();
            pocs.sort_unstable();
            assert_eq!(pocs, (11..=10 + length).collect::<Vec<_>>());
        }
    }

    #[test]
    fn b_frames_predict_from_both_sides_nearest_first() {
        let mut buffer = PictureBuffer::new(2);
        for (poc, kind) in [(0, FrameKind::Key), (8, FrameKind::Predicted)] {
            buffer.prepare(kind);
            buffer.insert(poc, kind, poc).unwrap();
        }
        let bi = FrameKind::Bi { reference: true };
        buffer.insert(4, bi, 4).unwrap();
        assert_eq!(buffer.references(2, bi), [&0, &4, &8]);
        assert_eq!(buffer.references(6, bi), [&4, &8, &0]);
        // The next anchor predicts from anchors only.
        buffer.prepare(FrameKind::Predicted);
        assert_eq!(buffer.references(16, FrameKind::Predicted), [&8, &0]);
        buffer.insert(16, FrameKind::Predicted, 16).unwrap();
        buffer.prepare(FrameKind::Predicted);
        assert_eq!(buffer.references(24, FrameKind::Predicted), [&16, &8]);
        // Non-reference B pictures are not kept; a duplicate display index is corrupt.
        buffer
            .insert(20, FrameKind::Bi { reference: false }, 20)
            .unwrap();
        assert_eq!(buffer.references(18, bi), [&16, &8]);
        assert!(buffer.insert(16, bi, 16).is_err());
        buffer.prepare(FrameKind::Key);
        assert!(buffer.references(30, bi).is_empty());
    }

    #[test]
    fn a_frame_starts_from_the_contexts_of_its_most_alike_reference() {
        use crate::entropy::{RangeEncoder, Writer};
        // Contexts told apart by how many bins went through one of them.
        let carried = |kind, qp, bins: usize| {
            let mut contexts = Contexts::default();
            let mut coder = RangeEncoder::new();
            for _ in 0..bins {
                coder.bit(&mut contexts.skip[0], true);
            }
            CarriedContexts { kind, qp, contexts }
        };
        let (b, p) = (FrameKind::Bi { reference: true }, FrameKind::Predicted);
        let references = [
            carried(FrameKind::Key, 30, 1),
            carried(b, 33, 2),
            carried(b, 35, 3),
            carried(p, 34, 4),
        ];
        let start = |kind, qp| starting_contexts(kind, qp, &references);
        let of = |i: usize| references[i].contexts.restarted();
        // A B frame takes the B reference of the nearest QP, the first on a tie.
        assert_eq!(start(FrameKind::Bi { reference: false }, 36), of(2));
        assert_eq!(start(b, 34), of(1));
        // A predicted frame takes an anchor's.
        assert_eq!(start(p, 34), of(3));
        assert_eq!(start(p, 31), of(0));
        // Key frames, and frames without references, start from the defaults.
        assert_eq!(start(FrameKind::Key, 30), Contexts::default());
        assert_eq!(
            starting_contexts(p, 30, std::iter::empty()),
            Contexts::default()
        );
        // What is carried keeps its probabilities and restarts their adaptation.
        assert_ne!(of(2), Contexts::default());
        assert_ne!(of(2), references[2].contexts);
    }

    #[test]
    fn frame_kinds_round_trip_and_unknown_codes_are_corrupt() {
        for kind in [
            FrameKind::Key,
            FrameKind::Predicted,
            FrameKind::Bi { reference: false },
            FrameKind::Bi { reference: true },
        ] {
            assert_eq!(FrameKind::from_code(kind.code()).unwrap(), kind);
        }
        assert!(FrameKind::from_code(4).is_err());
    }
}
