//! The seeded xorshift generator the unit tests draw their inputs from, so that every failure
//! reproduces from its seed.

pub(crate) struct Rng(pub(crate) u32);

impl Rng {
    pub(crate) fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }

    /// A value below `n`.
    pub(crate) fn below(&mut self, n: u32) -> i32 {
        (self.next() % n) as i32
    }
}
