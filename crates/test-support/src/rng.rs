//! A small seedable generator for tests and benchmarks: the same seed gives the same
//! numbers on every machine, so a failing random run can be replayed and a benchmark's
//! data is the same every run. No dependency, and not for anything secret.

/// SplitMix64: small, seedable, good enough to pick delays, amounts and synthetic data.
/// The field is the state; `Rng(seed)` starts a sequence.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next number of the sequence.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n` is `0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items` (not empty), by weight: `(weight, item)` pairs.
    pub fn pick<'a, T>(&mut self, items: &'a [(u64, T)]) -> &'a T {
        let total: u64 = items.iter().map(|(w, _)| w).sum();
        let mut n = self.below(total);
        for (w, t) in items {
            if n < *w {
                return t;
            }
            n -= w;
        }
        &items[items.len() - 1].1
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn a_seed_gives_the_published_splitmix64_sequence() {
        let mut r = Rng(0);
        let first: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(
            first,
            [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F],
            "a recorded seed must replay the same run on every machine"
        );
    }

    #[test]
    fn picks_stay_in_range_and_follow_their_weights() {
        let mut r = Rng(7);
        assert!((0..1000).all(|_| r.below(10) < 10));
        assert_eq!(r.below(0), 0, "an empty range answers 0 rather than dividing by zero");
        assert!((0..100).all(|_| !r.chance(0)) && (0..100).all(|_| r.chance(100)));
        let only = [(0, "never"), (5, "always")];
        assert!((0..100).all(|_| *r.pick(&only) == "always"), "a weight of 0 is never picked");
    }
}
