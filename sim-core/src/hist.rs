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
//! A window with few values (up to 256) keeps them as a plain list instead and answers
//! quantiles by sorting it: the `k`-th smallest value lies in the slot where a count walk
//! stops, so both modes report the same quantiles, compare equal and serialise to the same
//! bytes; the list only spares the cache (a pod's window is a few hundred bytes, not 13 KiB).
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

/// Values a window keeps as a plain list before it switches to slot counts.
///
/// A scrape window of a pod usually holds tens of values: appending them to a short list
/// touches one cache line, where counting them touches a 13 KiB slot array per histogram
/// (hundreds of KiB per simulation, more than the core's cache when many run side by side).
/// Past this many values the list is counted into slots and recording goes there directly.
const SMALL: usize = 256;

/// A latency histogram in microseconds, serialisable (as its recorded `(value, count)` pairs).
#[derive(Clone)]
pub struct LatencyHist {
    /// Small mode (`counts_live` false): the values themselves (us, unsorted, at most
    /// `SMALL`). Empty in counts mode.
    small: Vec<u32>,
    /// Counts mode: one count per slot; allocated on the first switch and kept (zeroed)
    /// across resets.
    counts: Option<Box<[u32]>>,
    /// Whether the values live in `counts` (else in `small`).
    counts_live: bool,
    /// Counts mode: the values in each group of slots (64-bit: a group of saturated slots
    /// still sums exactly).
    groups: [u64; GROUPS],
    used: u32,
    total: u64,
    sum_us: u64,
}

impl Default for LatencyHist {
    fn default() -> Self {
        LatencyHist {
            small: Vec::new(),
            counts: None,
            counts_live: false,
            groups: [0; GROUPS],
            used: 0,
            total: 0,
            sum_us: 0,
        }
    }
}

impl PartialEq for LatencyHist {
    /// Equal when they hold the same values up to the slot resolution (whichever mode each is in).
    fn eq(&self, other: &Self) -> bool {
        self.total == other.total && self.sum_us == other.sum_us && self.pairs() == other.pairs()
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
    #[inline(always)]
    pub fn record_ns(&mut self, ns: u64) {
        let us = (ns / 1_000).clamp(1, MAX_US);
        if self.counts_live {
            let added = self.count(us, 1);
            self.total += added as u64;
            self.sum_us = self.sum_us.saturating_add(us * added as u64);
        } else if self.small.len() < SMALL {
            self.small.push(us as u32); // MAX_US < 2^32
            self.total += 1;
            self.sum_us = self.sum_us.saturating_add(us);
        } else {
            self.record_us_n(us, 1);
        }
    }

    /// Records `n` values of `us` microseconds (in 1 us .. 1 h) in counts mode (switching to
    /// it first); a full slot saturates.
    #[inline(never)]
    fn record_us_n(&mut self, us: u64, n: u32) {
        self.switch_to_counts();
        let added = self.count(us, n);
        self.total += added as u64;
        self.sum_us = self.sum_us.saturating_add(us.saturating_mul(added as u64));
    }

    /// Counts `n` values of `us` into their slot (counts mode); returns how many fitted.
    #[inline(always)]
    fn count(&mut self, us: u64, n: u32) -> u32 {
        let s = slot_of(us);
        let Some(counts) = self.counts.as_deref_mut() else {
            return 0; // unreachable: callers switch to counts mode first
        };
        let c = &mut counts[s];
        let added = n.min(u32::MAX - *c);
        *c += added;
        let g = s / GROUP;
        self.groups[g] += added as u64;
        // (when nothing fitted, the slot is full and its group's bit already set)
        self.used |= 1 << g;
        added
    }

    /// Switches to counts mode: the listed values move into their slots.
    fn switch_to_counts(&mut self) {
        if self.counts_live {
            return;
        }
        if self.counts.is_none() {
            self.counts = Some(vec![0; SLOTS].into_boxed_slice());
        }
        self.counts_live = true;
        let small = std::mem::take(&mut self.small);
        for &us in &small {
            self.count(us as u64, 1);
        }
        self.small = small;
        self.small.clear();
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
        let Some(counts) = self.counts.as_deref().filter(|_| self.counts_live) else {
            // small mode: the rank-th smallest value's slot is the slot a count walk ends in
            let mut sorted = [0u32; SMALL];
            let sorted = &mut sorted[..self.small.len()];
            sorted.copy_from_slice(&self.small);
            sorted.sort_unstable();
            for (rank, k) in order {
                // 1 <= rank <= len
                out[k] = slot_high(slot_of(sorted[rank as usize - 1] as u64)) as f64 / 1_000.0;
            }
            return out;
        };
        order.sort_unstable();
        let mut next = 0;
        let mut below = 0u64; // values in the groups/slots already passed
        let mut used = self.used;
        while used != 0 && next < N {
            let g = used.trailing_zeros() as usize;
            used &= used - 1;
            let in_group = self.groups[g];
            if below + in_group < order[next].0 {
                below += in_group;
                continue;
            }
            // skip whole chunks of slots by their (vectorised) sums, then walk one chunk
            for c in (g * GROUP..(g + 1) * GROUP).step_by(CHUNK) {
                let chunk = &counts[c..c + CHUNK];
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

    /// Adds another histogram's values.
    pub fn add(&mut self, other: &LatencyHist) {
        if !other.counts_live {
            if !self.counts_live && self.small.len() + other.small.len() <= SMALL {
                self.small.extend_from_slice(&other.small);
                self.total += other.total;
            } else {
                self.switch_to_counts();
                for &us in &other.small {
                    let added = self.count(us as u64, 1) as u64;
                    self.total += added;
                }
            }
            self.sum_us = self.sum_us.saturating_add(other.sum_us);
            return;
        }
        self.switch_to_counts();
        let (Some(mine), Some(theirs)) = (self.counts.as_deref_mut(), other.counts.as_deref())
        else {
            return; // unreachable: both are in counts mode
        };
        let mut used = other.used;
        while used != 0 {
            let g = used.trailing_zeros() as usize;
            used &= used - 1;
            // 64-bit sum: several slots of one group may each hold up to u32::MAX
            let mut added = 0u64;
            for s in g * GROUP..(g + 1) * GROUP {
                let a = theirs[s].min(u32::MAX - mine[s]);
                mine[s] += a;
                added += a as u64;
            }
            self.groups[g] += added;
            self.total += added;
        }
        self.used |= other.used;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }

    /// Forgets every value. A histogram that had outgrown the list starts the next window
    /// in counts mode (a busy pod's next window is likely busy too); one that had not starts
    /// with the list. Either way it answers the same.
    pub fn reset(&mut self) {
        let stay_counted = self.counts_live && self.total > SMALL as u64;
        self.small.clear();
        if let Some(counts) = self.counts.as_deref_mut() {
            let mut used = self.used;
            while used != 0 {
                let g = used.trailing_zeros() as usize;
                used &= used - 1;
                counts[g * GROUP..(g + 1) * GROUP].fill(0);
                self.groups[g] = 0;
            }
        }
        self.used = 0;
        self.counts_live = stay_counted;
        self.total = 0;
        self.sum_us = 0;
    }

    /// The recorded `(largest value of the slot in us, count)` pairs, in increasing order.
    fn pairs(&self) -> Vec<(u64, u32)> {
        let mut out: Vec<(u64, u32)> = Vec::new();
        let Some(counts) = self.counts.as_deref().filter(|_| self.counts_live) else {
            let mut sorted = self.small.clone();
            sorted.sort_unstable();
            for us in sorted {
                let high = slot_high(slot_of(us as u64));
                match out.last_mut() {
                    Some((h, c)) if *h == high => *c += 1,
                    _ => out.push((high, 1)),
                }
            }
            return out;
        };
        let mut used = self.used;
        while used != 0 {
            let g = used.trailing_zeros() as usize;
            used &= used - 1;
            let first = g * GROUP;
            for (k, &c) in counts[first..first + GROUP].iter().enumerate() {
                if c > 0 {
                    out.push((slot_high(first + k), c));
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
        let listed: u64 = w.pairs.iter().map(|&(_, c)| c as u64).sum();
        for (v, c) in w.pairs {
            let us = v.clamp(1, MAX_US);
            if listed <= SMALL as u64 {
                // small enough to stay a list: the slot's largest value stands for each
                h.small.extend(std::iter::repeat_n(us as u32, c as usize));
                h.total += c as u64;
            } else {
                h.record_us_n(us, c);
            }
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
        // merged into an empty histogram (a scrape merging a restored pod window into its
        // service's): the group's sum exceeds u32 and stays exact
        let mut e = LatencyHist::default();
        e.add(&h);
        assert_eq!(e.len(), h.len());
        assert_eq!(e.quantiles_ms([0.5]), [p50]);
        assert_eq!(e, h);
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

        /// A histogram that counts from its first value and one that lists values until it
        /// has more than `SMALL` agree on everything: quantiles, mean, equality, bytes, merges.
        #[test]
        fn listed_and_counted_values_agree(
            a in proptest::collection::vec(1u64..10_000_000_000, 0..600),
            b in proptest::collection::vec(1u64..10_000_000_000, 0..300),
            qs in proptest::collection::vec(0.0f64..=1.0, 1..4),
        ) {
            let counted = |vals: &[u64]| {
                let mut h = LatencyHist::default();
                h.switch_to_counts();
                for &v in vals { h.record_ns(v); }
                h
            };
            let listed = |vals: &[u64]| {
                let mut h = LatencyHist::default();
                for &v in vals { h.record_ns(v); }
                h
            };
            let (la, ca, lb, cb) = (listed(&a), counted(&a), listed(&b), counted(&b));
            prop_assert_eq!(la.counts_live, a.len() > SMALL);
            for &q in &qs {
                prop_assert_eq!(la.quantile_ms(q), ca.quantile_ms(q));
            }
            prop_assert_eq!(la.quantiles_ms([0.5, 0.9, 0.99]), ca.quantiles_ms([0.5, 0.9, 0.99]));
            prop_assert_eq!(la.mean_ms(), ca.mean_ms());
            prop_assert_eq!(&la, &ca);
            prop_assert_eq!(postcard::to_allocvec(&la).unwrap(), postcard::to_allocvec(&ca).unwrap());
            // every merge order of the two modes gives the same histogram
            let mut merged = Vec::new();
            for (x, y) in [(&la, &lb), (&la, &cb), (&ca, &lb), (&ca, &cb)] {
                let mut m = x.clone();
                m.add(y);
                merged.push(m);
            }
            let all: Vec<u64> = a.iter().chain(&b).copied().collect();
            let reference = counted(&all);
            for m in &merged {
                prop_assert_eq!(m, &reference);
                prop_assert_eq!(m.quantiles_ms([0.5, 0.99]), reference.quantiles_ms([0.5, 0.99]));
            }
            // a restored histogram keeps answering the same after more values
            let mut back: LatencyHist = postcard::from_bytes(&postcard::to_allocvec(&la).unwrap()).unwrap();
            let mut again = la.clone();
            for &v in &b { back.record_ns(v); again.record_ns(v); }
            prop_assert_eq!(&back, &again);
            prop_assert_eq!(back.quantiles_ms([0.5, 0.99]), again.quantiles_ms([0.5, 0.99]));
            // a reset histogram is empty; it keeps counting only after a window too big for
            // the list, and answers like a fresh one for the next window either way
            for h in [&la, &ca] {
                let mut r = h.clone();
                r.reset();
                prop_assert_eq!(r.counts_live, h.counts_live && a.len() > SMALL);
                prop_assert!(r.is_empty());
                prop_assert_eq!(&r, &LatencyHist::default());
                for &v in &b { r.record_ns(v); }
                prop_assert_eq!(&r, &lb);
                prop_assert_eq!(r.quantiles_ms([0.5, 0.9, 0.99]), lb.quantiles_ms([0.5, 0.9, 0.99]));
            }
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
