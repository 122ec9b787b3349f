//! The range decoder matching `RangeEncoder`.

use super::{PROB_BITS, Prob};

const TOP: u32 = 1 << 24;

/// How many bytes past the end a valid stream can make the decoder read (the encoder drops
/// trailing zeros and the decoder looks 4 bytes ahead).
const MAX_OVERRUN: usize = 8;

/// Decodes bins from one frame's bytes. Reading past the end yields zeros; `overrun` tells when
/// that went further than a valid stream can, so truncation is reported instead of decoded.
pub struct RangeDecoder<'a> {
    data: &'a [u8],
    pos: usize,
    code: u32,
    range: u32,
}

impl<'a> RangeDecoder<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        let mut dec = RangeDecoder {
            data,
            pos: 0,
            code: 0,
            range: u32::MAX,
        };
        for _ in 0..4 {
            dec.code = (dec.code << 8) | u32::from(dec.next_byte());
        }
        dec
    }

    #[inline]
    fn next_byte(&mut self) -> u8 {
        let byte = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        byte
    }

    /// True when the decoder has read further past the end than any valid stream needs.
    pub fn overrun(&self) -> bool {
        self.pos > self.data.len() + MAX_OVERRUN
    }

    #[inline]
    fn decode(&mut self, p0: u32) -> bool {
        let bound = (self.range >> PROB_BITS) * p0;
        let bit = if self.code < bound {
            self.range = bound;
            false
        } else {
            self.code -= bound;
            self.range -= bound;
            true
        };
        while self.range < TOP {
            self.range <<= 8;
            self.code = (self.code << 8) | u32::from(self.next_byte());
        }
        bit
    }

    #[inline]
    pub fn bit(&mut self, ctx: &mut Prob) -> bool {
        let bit = self.decode(ctx.p0());
        ctx.update(bit);
        bit
    }

    pub fn bypass(&mut self, count: u32) -> u32 {
        let mut value = 0;
        for _ in 0..count {
            value = (value << 1) | u32::from(self.decode(1 << (PROB_BITS - 1)));
        }
        value
    }
}
