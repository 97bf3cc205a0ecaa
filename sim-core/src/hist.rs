//! Latency histograms per scrape window (HDR histograms, 2 significant digits, 1 us .. 1 h).

use hdrhistogram::Histogram;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A latency histogram in microseconds, serialisable (as its recorded (value, count) pairs).
#[derive(Clone, Debug)]
pub struct LatencyHist(Histogram<u32>);

impl Default for LatencyHist {
    fn default() -> Self {
        LatencyHist(
            Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("static bounds are valid"),
        )
    }
}

impl PartialEq for LatencyHist {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl LatencyHist {
    /// Records one latency given in nanoseconds (clamped to the range).
    #[inline]
    pub fn record_ns(&mut self, ns: u64) {
        self.0.saturating_record((ns / 1_000).max(1));
    }
    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        self.0.len()
    }
    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The value at quantile `q` in milliseconds (0 when empty).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            0.0
        } else {
            self.0.value_at_quantile(q) as f64 / 1_000.0
        }
    }
    /// Mean in milliseconds (0 when empty).
    pub fn mean_ms(&self) -> f64 {
        if self.0.is_empty() {
            0.0
        } else {
            self.0.mean() / 1_000.0
        }
    }
    /// Adds another histogram's counts.
    pub fn add(&mut self, other: &LatencyHist) {
        let _ = self.0.add(&other.0);
    }
    /// Forgets every value.
    pub fn reset(&mut self) {
        if !self.0.is_empty() {
            self.0.reset();
        }
    }
}

impl Serialize for LatencyHist {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pairs: Vec<(u64, u32)> = self
            .0
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        pairs.serialize(s)
    }
}

impl<'de> Deserialize<'de> for LatencyHist {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(u64, u32)>::deserialize(d)?;
        let mut h = LatencyHist::default();
        for (v, c) in pairs {
            h.0.saturating_record_n(v.clamp(1, 3_600_000_000), c);
        }
        Ok(h)
    }
}
