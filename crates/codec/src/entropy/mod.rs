//! Adaptive binary arithmetic coding: context probabilities, the `Writer` trait with a real
//! range-coder backend and a counting backend for rate estimates, and the matching decoder.

mod contexts;
mod decoder;
mod encoder;

pub use contexts::{Contexts, SaoContexts};
pub use decoder::RangeDecoder;
pub use encoder::RangeEncoder;

/// Probabilities are 15-bit fixed point: `PROB_ONE` means certainty.
const PROB_BITS: u32 = 15;
const PROB_ONE: u32 = 1 << PROB_BITS;

/// Rates are counted in 1/256 bit so that fractional costs of skewed bins stay visible.
pub const COST_SHIFT: u32 = 8;

/// An adaptive probability that the next bin is 0, with a learning rate that slows down as the
/// context sees more bins (fast to learn, stable once learned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prob {
    p0: u16,
    seen: u8,
}

impl Default for Prob {
    fn default() -> Self {
        Prob {
            p0: (PROB_ONE / 2) as u16,
            seen: 0,
        }
    }
}

impl Prob {
    #[inline]
    fn p0(self) -> u32 {
        u32::from(self.p0)
    }

    // EVOLVE-BLOCK-START context_adaptation
    /// Moves the probability towards the observed bin.
    #[inline]
    fn update(&mut self, bit: bool) {
        let rate = 4 + u32::from(self.seen >= 12) + u32::from(self.seen >= 40);
        let p = u32::from(self.p0);
        let p = if bit {
            p - (p >> rate)
        } else {
            p + ((PROB_ONE - p) >> rate)
        };
        // Keeps both symbols codable: the coder needs 0 < p0 < PROB_ONE.
        self.p0 = p.clamp(31, PROB_ONE - 31) as u16;
        self.seen = self.seen.saturating_add(1).min(40);
    }
    // EVOLVE-BLOCK-END

    /// Keeps the probability and forgets how many bins it has seen, so it learns fast again.
    fn restart(&mut self) {
        self.seen = 0;
    }

    /// Estimated cost of coding `bit` in this state, in 1/256 bit.
    #[inline]
    pub fn cost(self, bit: bool) -> u32 {
        let p = if bit { PROB_ONE - self.p0() } else { self.p0() };
        COST_TABLE[(p >> (PROB_BITS - COST_TABLE_BITS)) as usize]
    }
}

const COST_TABLE_BITS: u32 = 7;

/// `-log2(p)` in 1/256 bit for p = (i + 0.5) / 128, generated once (integer only, so encoders on
/// every machine make the same decisions).
static COST_TABLE: [u32; 1 << COST_TABLE_BITS] = build_cost_table();

const fn build_cost_table() -> [u32; 1 << COST_TABLE_BITS] {
    let mut table = [0u32; 1 << COST_TABLE_BITS];
    let mut i = 0;
    while i < table.len() {
        // p in 16.16 fixed point, at the centre of the bucket.
        let p = ((2 * i as u64 + 1) << 16) / (2 << COST_TABLE_BITS);
        table[i] = neg_log2_fixed(p as u32);
        i += 1;
    }
    table
}

/// -log2(p / 65536) in 1/256 bit, by normalising and squaring (bit-by-bit logarithm).
const fn neg_log2_fixed(p: u32) -> u32 {
    if p == 0 {
        return 32 << COST_SHIFT;
    }
    // x in [1, 2) as 1.30 fixed point, with p = x * 2^(e - 16).
    let mut e: i32 = 31 - p.leading_zeros() as i32;
    let mut x: u64 = (p as u64) << (30 - e);
    e -= 16;
    let mut frac: u32 = 0;
    let mut bit = 1u32 << (COST_SHIFT - 1);
    while bit > 0 {
        x = (x * x) >> 30;
        if x >= 2 << 30 {
            x >>= 1;
            frac |= bit;
        }
        bit >>= 1;
    }
    let log2 = (e << COST_SHIFT) + frac as i32;
    (-log2) as u32
}

/// Where coded bins go: the real range coder, or a counter that only adds up their cost.
///
/// Both backends take the context mutably; the counter leaves it untouched, so its estimates
/// use the probabilities frozen at the start of a decision (what rate-distortion search needs).
pub trait Writer {
    fn bit(&mut self, ctx: &mut Prob, bit: bool);
    /// `count` (at most 24) raw bits of `value`, most significant first, each costing one bit.
    fn bypass(&mut self, value: u32, count: u32);
}

/// `count` raw bits of `value` (up to 32), most significant first, in pieces of at most 24.
fn bypass_bits<W: Writer>(w: &mut W, value: u32, count: u32) {
    if count > 24 {
        w.bypass(value >> 24, count - 24);
        w.bypass(value & 0xFF_FFFF, 24);
    } else {
        w.bypass(value, count);
    }
}

/// Exp-Golomb code of order `k`: for `q = (value >> k) + 1` of `p + 1` bits, `p` ones and a
/// zero, the low `p` bits of `q`, then the low `k` bits of `value`; all bypass bins. `value`
/// and `k` keep the code within 32 bits: `p + k` below 32.
pub fn write_exp_golomb<W: Writer>(w: &mut W, value: u32, k: u32) {
    let shifted = (value >> k) + 1;
    let prefix = 31 - shifted.leading_zeros();
    bypass_bits(w, (1 << prefix) - 1, prefix);
    w.bypass(0, 1);
    bypass_bits(w, shifted - (1 << prefix), prefix);
    if k > 0 {
        bypass_bits(w, value & ((1 << k) - 1), k);
    }
}

/// Bins of [`write_exp_golomb`]'s code of `value`.
pub fn exp_golomb_bins(value: u32, k: u32) -> u32 {
    let prefix = 31 - ((value >> k) + 1).leading_zeros();
    2 * prefix + 1 + k
}

/// Reads what [`write_exp_golomb`] wrote; `None` when the prefix runs past `max_prefix` ones
/// (`max_prefix + k` below 32), which no valid stream holds.
pub fn read_exp_golomb(r: &mut RangeDecoder, k: u32, max_prefix: u32) -> Option<u32> {
    let mut prefix = 0;
    while r.bypass(1) == 1 {
        prefix += 1;
        if prefix > max_prefix {
            return None;
        }
    }
    let shifted = (1 << prefix) + r.bypass(prefix);
    let low = if k > 0 { r.bypass(k) } else { 0 };
    Some(((shifted - 1) << k) | low)
}

/// The counting backend: sums the estimated cost of every bin in 1/256 bit.
#[derive(Clone, Copy, Debug, Default)]
pub struct CostCounter {
    pub cost: u64,
}

impl Writer for CostCounter {
    #[inline]
    fn bit(&mut self, ctx: &mut Prob, bit: bool) {
        self.cost += u64::from(ctx.cost(bit));
    }

    #[inline]
    fn bypass(&mut self, _value: u32, count: u32) {
        self.cost += u64::from(count) << COST_SHIFT;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_table_matches_log2() {
        for (i, &c) in COST_TABLE.iter().enumerate() {
            let p = (i as f64 + 0.5) / 128.0;
            let exact = -p.log2() * 256.0;
            assert!((c as f64 - exact).abs() < 2.0, "{i}: {c} vs {exact}");
        }
    }

    #[test]
    fn random_bins_round_trip() {
        let mut rng = crate::test_rng::Rng(12345);
        let mut next = || rng.next();
        let bins: Vec<(usize, bool, u32)> = (0..20000)
            .map(|_| {
                let r = next();
                let ctx = (r % 7) as usize;
                // Skewed contexts so adaptation matters.
                let bit = (next() % 100) < (ctx as u32 * 14);
                (ctx, bit, next() & 0x3ff)
            })
            .collect();
        let mut enc = RangeEncoder::new();
        let mut probs = [Prob::default(); 7];
        for &(ctx, bit, raw) in &bins {
            enc.bit(&mut probs[ctx], bit);
            if ctx == 3 {
                enc.bypass(raw, 10);
            }
        }
        let bytes = enc.finish();
        let mut dec = RangeDecoder::new(&bytes);
        let mut probs = [Prob::default(); 7];
        for &(ctx, bit, raw) in &bins {
            assert_eq!(dec.bit(&mut probs[ctx]), bit);
            if ctx == 3 {
                assert_eq!(dec.bypass(10), raw);
            }
        }
        assert!(!dec.overrun());
    }

    #[test]
    fn skewed_bins_compress() {
        let mut enc = RangeEncoder::new();
        let mut p = Prob::default();
        for i in 0..8000 {
            enc.bit(&mut p, i % 50 == 0);
        }
        let bytes = enc.finish();
        // 8000 bins of entropy ~0.14 bit each: about 140 bytes; far below 1000.
        assert!(bytes.len() < 250, "{}", bytes.len());
    }
}
