//! Latency histograms per scrape window: HDR (high dynamic range) log-linear buckets with two
//! significant digits, over 1 us .. 1 h.
//!
//! The layout is the one of an HDR histogram with 256 sub-buckets (`hdrhistogram` with
//! `sigfig = 2`): values below 256 us are exact, and each octave above is cut into 128 slots,
//! so a reported quantile is at most 1/128 (0.8%) above the true one. What differs is the
//! bookkeeping around it, for the engine's hot path and scrape loop: a count per group of 128
//! slots and a bit per non-empty group, so a quantile walks at most 26 group counts and 128
//! slots (not every slot below the answer), three quantiles take one walk, and resetting or
//! merging a window touches only the groups it used. The mean is exact (a running sum).
//!
//! ```
//! use sim_core::hist::LatencyHist;
//! let mut h = LatencyHist::default();
//! for ms in 1..=100u64 {
//!     h.record_ns(ms * 1_000_000);
//! }
//! let [p50, p90, p99] = h.quantiles_ms([0.5, 0.9, 0.99]);
//! assert!((p50 - 50.0).abs() / 50.0 < 0.01);
//! assert!((p90 - 90.0).abs() / 90.0 < 0.01);
//! assert!((p99 - 99.0).abs() / 99.0 < 0.01);
//! assert_eq!(h.mean_ms(), 50.5);
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Slots per group (one octave above 256 us; the first group pair covers 0..256 exactly).
const GROUP: usize = 128;
/// Slots summed at once when a quantile walk skips through a group.
const CHUNK: usize = 16;
/// Largest recordable value in microseconds (1 hour); larger values are clamped.
const MAX_US: u64 = 3_600_000_000;
/// Number of groups: enough for `MAX_US` (its slot is in group 25).
const GROUPS: usize = 26;
const SLOTS: usize = GROUPS * GROUP;

#[inline]
fn slot_of(us: u64) -> usize {
    if us < 256 {
        us as usize
    } else {
        let shift = 56 - us.leading_zeros(); // bit length - 8 >= 1
        GROUP * shift as usize + (us >> shift) as usize
    }
}

/// The largest value (us) that falls in `slot`.
#[inline]
fn slot_high(slot: usize) -> u64 {
    if slot < 256 {
        slot as u64
    } else {
        let shift = slot / GROUP - 1;
        let sub = (slot - GROUP * shift) as u64;
        ((sub + 1) << shift) - 1
    }
}

/// A latency histogram in microseconds, serialisable (as its recorded `(value, count)` pairs).
#[derive(Clone)]
pub struct LatencyHist {
    counts: Box<[u32]>,
    groups: [u32; GROUPS],
    used: u32,
    total: u64,
    sum_us: u64,
}

impl Default for LatencyHist {
    fn default() -> Self {
        LatencyHist {
            counts: vec![0; SLOTS].into_boxed_slice(),
            groups: [0; GROUPS],
            used: 0,
            total: 0,
            sum_us: 0,
        }
    }
}

impl PartialEq for LatencyHist {
    fn eq(&self, other: &Self) -> bool {
        self.total == other.total && self.sum_us == other.sum_us && self.counts == other.counts
    }
}

impl std::fmt::Debug for LatencyHist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [p50, p99] = self.quantiles_ms([0.5, 0.99]);
        f.debug_struct("LatencyHist")
            .field("len", &self.total)
            .field("p50_ms", &p50)
            .field("p99_ms", &p99)
            .finish()
    }
}

impl LatencyHist {
    /// Records one latency given in nanoseconds (clamped to 1 us .. 1 h).
    #[inline]
    pub fn record_ns(&mut self, ns: u64) {
        self.record_us_n((ns / 1_000).clamp(1, MAX_US), 1);
    }

    /// Records `n` values of `us` microseconds (in 1 us .. 1 h); a full slot saturates.
    #[inline(always)]
    fn record_us_n(&mut self, us: u64, n: u32) {
        let s = slot_of(us);
        let c = &mut self.counts[s];
        let added = n.min(u32::MAX - *c);
        if added == 0 {
            return;
        }
        *c += added;
        let g = s / GROUP;
        // saturating: a forged snapshot can fill several slots of one group to u32::MAX
        self.groups[g] = self.groups[g].saturating_add(added);
        self.used |= 1 << g;
        self.total += added as u64;
        self.sum_us = self.sum_us.saturating_add(us.saturating_mul(added as u64));
    }

    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The value at quantile `q` (clamped to [0, 1]) in milliseconds (0 when empty): the
    /// largest value of the slot holding the `ceil(q * len)`-th smallest value.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.quantiles_ms([q])[0]
    }

    /// Several quantiles in one walk (each as [`LatencyHist::quantile_ms`]).
    pub fn quantiles_ms<const N: usize>(&self, qs: [f64; N]) -> [f64; N] {
        let mut out = [0.0; N];
        if self.total == 0 {
            return out;
        }
        // ranks, visited in increasing order
        let mut order: [(u64, usize); N] = [(0, 0); N];
        for (k, &q) in qs.iter().enumerate() {
            let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
            let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
            order[k] = (rank, k);
        }
        order.sort_unstable();
        let mut next = 0;
        let mut below = 0u64; // values in the groups/slots already passed
        let mut used = self.used;
        while used != 0 && next < N {
            let g = used.trailing_zeros() as usize;
            used &= used - 1;
            let in_group = self.groups[g] as u64;
            if below + in_group < order[next].0 {
                below += in_group;
                continue;
            }
            // skip whole chunks of slots by their (vectorised) sums, then walk one chunk
            for c in (g * GROUP..(g + 1) * GROUP).step_by(CHUNK) {
                let chunk = &self.counts[c..c + CHUNK];
                let in_chunk: u64 = chunk.iter().map(|&x| x as u64).sum();
                if below + in_chunk < order[next].0 {
                    below += in_chunk;
                    continue;
                }
                for (k, &n) in chunk.iter().enumerate() {
                    below += n as u64;
                    while next < N && below >= order[next].0 {
                        out[order[next].1] = slot_high(c + k) as f64 / 1_000.0;
                        next += 1;
                    }
                    if next == N {
                        break;
                    }
                }
                if next == N {
                    break;
                }
            }
        }
        out
    }

    /// Mean in milliseconds (0 when empty); exact, not bucketed.
    pub fn mean_ms(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum_us as f64 / self.total as f64 / 1_000.0
        }
    }

    /// Adds another histogram's counts.
    pub fn add(&mut self, other: &LatencyHist) {
        let mut used = other.used;
        while used != 0 {
            let g = used.trailing_zeros() as usize;
            used &= used - 1;
            let mut added = 0u32;
            for s in g * GROUP..(g + 1) * GROUP {
                let a = other.counts[s].min(u32::MAX - self.counts[s]);
                self.counts[s] += a;
                added += a;
            }
            self.groups[g] = self.groups[g].saturating_add(added);
            self.total += added as u64;
        }
        self.used |= other.used;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }

    /// Forgets every value.
    pub fn reset(&mut self) {
        let mut used = self.used;
        while used != 0 {
            let g = used.trailing_zeros() as usize;
            used &= used - 1;
            self.counts[g * GROUP..(g + 1) * GROUP].fill(0);
            self.groups[g] = 0;
        }
        self.used = 0;
        self.total = 0;
        self.sum_us = 0;
    }

    /// The recorded `(largest value of the slot in us, count)` pairs, in increasing order.
    fn pairs(&self) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        let mut used = self.used;
        while used != 0 {
            let g = used.trailing_zeros() as usize;
            used &= used - 1;
            for s in g * GROUP..(g + 1) * GROUP {
                if self.counts[s] > 0 {
                    out.push((slot_high(s), self.counts[s]));
                }
            }
        }
        out
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    pairs: Vec<(u64, u32)>,
    sum_us: u64,
}

impl Serialize for LatencyHist {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            pairs: self.pairs(),
            sum_us: self.sum_us,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for LatencyHist {
    /// Values outside 1 us .. 1 h are clamped and counts saturate: any input gives a valid histogram.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        let mut h = LatencyHist::default();
        for (v, c) in w.pairs {
            h.record_us_n(v.clamp(1, MAX_US), c);
        }
        h.sum_us = w.sum_us;
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forged_counts_saturate_instead_of_overflowing() {
        // two full slots of one group (as a forged snapshot could carry them)
        let w = Wire {
            pairs: vec![(1_000, u32::MAX), (1_010, u32::MAX), (1_000, 7)],
            sum_us: u64::MAX,
        };
        let h: LatencyHist = postcard::from_bytes(&postcard::to_allocvec(&w).unwrap()).unwrap();
        assert_eq!(h.len(), 2 * u32::MAX as u64);
        let [p50] = h.quantiles_ms([0.5]);
        assert!(p50 > 0.0);
        let mut m = h.clone();
        m.add(&h);
        assert_eq!(m.len(), h.len());
    }

    #[test]
    fn slots_are_contiguous_and_monotone() {
        let mut last = 0;
        for us in 1..200_000u64 {
            let s = slot_of(us);
            assert!(s == last || s == last + 1, "gap at {us}");
            assert!(slot_high(s) >= us && (s == 0 || slot_high(s - 1) < us));
            last = s;
        }
        assert!(slot_of(MAX_US) < SLOTS);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// Against the exact quantile of the sorted values: never below it, at most 1/128 above.
        #[test]
        fn quantiles_within_resolution(
            vals in proptest::collection::vec(1u64..4_000_000_000_000, 1..300),
            q in 0.0f64..=1.0,
        ) {
            let mut h = LatencyHist::default();
            for &v in &vals { h.record_ns(v); }
            let mut us: Vec<u64> = vals.iter().map(|v| (v / 1000).clamp(1, MAX_US)).collect();
            us.sort_unstable();
            let rank = ((q * us.len() as f64).ceil() as usize).clamp(1, us.len());
            let exact = us[rank - 1] as f64 / 1000.0;
            let got = h.quantile_ms(q);
            prop_assert!(got >= exact && got <= exact * (1.0 + 1.0 / 128.0) + 1e-9, "q {q}: {got} vs {exact}");
            let [a, b, c] = h.quantiles_ms([0.99, q, 0.5]);
            prop_assert_eq!(b, got);
            prop_assert_eq!(a, h.quantile_ms(0.99));
            prop_assert_eq!(c, h.quantile_ms(0.5));
        }

        /// add = recording both; reset = empty; serde round trip = identity.
        #[test]
        fn add_reset_and_serde(
            a in proptest::collection::vec(1u64..10_000_000_000, 0..100),
            b in proptest::collection::vec(1u64..10_000_000_000, 0..100),
        ) {
            let (mut ha, mut hb, mut both) = (LatencyHist::default(), LatencyHist::default(), LatencyHist::default());
            for &v in &a { ha.record_ns(v); both.record_ns(v); }
            for &v in &b { hb.record_ns(v); both.record_ns(v); }
            let bytes = postcard::to_allocvec(&ha).unwrap();
            let back: LatencyHist = postcard::from_bytes(&bytes).unwrap();
            prop_assert_eq!(&back, &ha);
            ha.add(&hb);
            prop_assert_eq!(&ha, &both);
            prop_assert_eq!(ha.quantile_ms(0.9), both.quantile_ms(0.9));
            ha.reset();
            prop_assert_eq!(ha, LatencyHist::default());
        }
    }
}
