//! The real backend: a carry-propagating binary range coder.

use super::{PROB_BITS, Prob, Writer};

const TOP: u32 = 1 << 24;

/// Encodes bins into bytes; `finish` returns the bytes of one frame.
pub struct RangeEncoder {
    low: u64,
    range: u32,
    /// The last byte not yet emitted, held back because a carry may still change it.
    cache: u8,
    /// Bytes held back: `cache` followed by this many minus one 0xFF bytes.
    pending: u64,
    first: bool,
    out: Vec<u8>,
}

impl Default for RangeEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl RangeEncoder {
    pub fn new() -> Self {
        RangeEncoder {
            low: 0,
            range: u32::MAX,
            cache: 0,
            pending: 1,
            first: true,
            out: Vec::new(),
        }
    }

    fn shift_low(&mut self) {
        if self.low < 0xFF00_0000 || self.low >= 1 << 32 {
            let carry = (self.low >> 32) as u8;
            let mut byte = self.cache;
            while self.pending > 0 {
                // The very first byte is always 0 (the decoder assumes it), so it is not stored.
                if !self.first {
                    self.out.push(byte.wrapping_add(carry));
                }
                self.first = false;
                byte = 0xFF;
                self.pending -= 1;
            }
            self.cache = ((self.low >> 24) & 0xFF) as u8;
        }
        self.pending += 1;
        self.low = (self.low & 0x00FF_FFFF) << 8;
    }

    #[inline]
    fn encode(&mut self, bit: bool, p0: u32) {
        let bound = (self.range >> PROB_BITS) * p0;
        if bit {
            self.low += u64::from(bound);
            self.range -= bound;
        } else {
            self.range = bound;
        }
        while self.range < TOP {
            self.range <<= 8;
            self.shift_low();
        }
    }

    /// Flushes the coder. The final value is chosen with as many trailing zero bits as the
    /// interval allows, and trailing zero bytes are dropped: the decoder reads zeros past the end.
    pub fn finish(mut self) -> Vec<u8> {
        let high = self.low + u64::from(self.range);
        for shift in (0..=32).rev() {
            let mask = (1u64 << shift) - 1;
            let candidate = (self.low + mask) & !mask;
            if candidate < high {
                self.low = candidate;
                break;
            }
        }
        for _ in 0..5 {
            self.shift_low();
        }
        while self.out.last() == Some(&0) {
            self.out.pop();
        }
        self.out
    }
}

impl Writer for RangeEncoder {
    #[inline]
    fn bit(&mut self, ctx: &mut Prob, bit: bool) {
        self.encode(bit, ctx.p0());
        ctx.update(bit);
    }

    fn bypass(&mut self, value: u32, count: u32) {
        for i in (0..count).rev() {
            self.encode((value >> i) & 1 != 0, 1 << (PROB_BITS - 1));
        }
    }
}
