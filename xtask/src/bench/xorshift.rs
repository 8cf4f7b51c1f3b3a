//! A tiny deterministic generator, for the benchmarks' inputs (the backup benchmark's tree,
//! the fleet's job durations): the same on every machine, without a random-number crate.

/// xorshift64: a tiny deterministic generator, so every machine benchmarks
/// the same tree without a dependency on a random-number crate.
pub(super) struct XorShift(u64);

impl XorShift {
    pub(super) fn new(seed: u64) -> Self {
        // Any non-zero state works; mix the seed so small seeds differ a lot.
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(super) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
