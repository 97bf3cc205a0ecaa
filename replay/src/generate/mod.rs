//! Synthetic call-graph generators and the seed paper's text encoding.
//!
//! - [`luo`]: the probabilistic generator of Luo et al. (SoCC'21), driven by the
//!   Alibaba-derived distribution tables (embedded; loadable from a directory);
//! - [`recursive`]: a layer-by-layer generator fitted to a real sample, the statistical
//!   analogue of the seed paper's recursive LLM method;
//! - [`text`]: the seed paper's text encoding for LLM training data, and a parser that
//!   reads LLM output back into call graphs.
//!
//! Every generator is seeded ([`rand_chacha::ChaCha8Rng`]) and deterministic: the same
//! seed and inputs give the same graphs, byte for byte.

pub mod luo;
pub mod recursive;
pub mod text;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::model::{CallGraph, CallType, Span, Sym, TraceSet};
use crate::util::FxMap;

/// Empirical (bootstrap) marginals of a real sample, used to give names and latencies
/// to graphs whose structure comes from elsewhere (the Luo generator produces only
/// rpc ids and call types).
///
/// Fitted per span depth (root = 1, capped at [`ServiceMarginals::MAX_DEPTH`]):
/// observed (callee, interface) pairs per depth and call type, and observed durations per
/// call type. Sampling picks a uniformly random observation (a bootstrap of the sample).
///
/// Marginals with no observation ([`ServiceMarginals::default`], or fitted to an empty
/// sample: see [`ServiceMarginals::is_empty`]) sample `UNKNOWN` names, zero durations
/// and an `UNKNOWN` service, and never panic; the Luo generator ignores them
/// ([`luo::LuoGenerator::with_marginals`]).
#[derive(Clone, Debug, Default)]
pub struct ServiceMarginals {
    /// Names of the fitted sample (generated sets use a clone of it).
    pub symbols: crate::model::SymbolTable,
    callees: FxMap<(u8, CallType), Vec<(Sym, Sym)>>,
    callees_by_depth: Vec<Vec<(Sym, Sym)>>,
    durations: FxMap<CallType, Vec<u64>>,
    all_durations: Vec<u64>,
    services: Vec<Sym>,
}

impl ServiceMarginals {
    /// Depths above this share the statistics of this depth.
    pub const MAX_DEPTH: usize = 16;

    /// Fits the marginals to a sample. An empty sample gives marginals that produce
    /// `UNKNOWN` names and zero durations.
    pub fn fit(sample: &TraceSet) -> Self {
        let mut m = ServiceMarginals {
            symbols: sample.symbols.clone(),
            callees_by_depth: vec![Vec::new(); Self::MAX_DEPTH + 1],
            ..Default::default()
        };
        for g in &sample.graphs {
            m.services.push(g.service);
            let mut depth = vec![0usize; g.spans.len()];
            for (i, s) in g.spans.iter().enumerate() {
                let d = s
                    .parent
                    .map(|p| depth[p as usize] + 1)
                    .unwrap_or(1)
                    .min(Self::MAX_DEPTH);
                depth[i] = d;
                m.callees
                    .entry((d as u8, s.call_type))
                    .or_default()
                    .push((s.dm, s.interface));
                m.callees_by_depth[d].push((s.dm, s.interface));
                m.durations
                    .entry(s.call_type)
                    .or_default()
                    .push(s.duration_ns);
                m.all_durations.push(s.duration_ns);
            }
        }
        m
    }

    /// True when the marginals hold no observation (no span was fitted): they would
    /// only produce `UNKNOWN` names and zero durations.
    pub fn is_empty(&self) -> bool {
        self.all_durations.is_empty() && self.services.is_empty()
    }

    /// A (callee, interface) for a span at `depth` with `ty`: an observation at that
    /// depth and type, else at that depth or the nearest shallower one, else
    /// (`UNKNOWN`, `UNKNOWN`).
    pub fn sample_callee(&self, rng: &mut ChaCha8Rng, depth: usize, ty: CallType) -> (Sym, Sym) {
        let d = depth.clamp(1, Self::MAX_DEPTH);
        if let Some(v) = self.callees.get(&(d as u8, ty)).filter(|v| !v.is_empty()) {
            return v[rng.random_range(0..v.len())];
        }
        for dd in (1..=d).rev() {
            // `callees_by_depth` is empty in `Default` marginals
            if let Some(v) = self.callees_by_depth.get(dd).filter(|v| !v.is_empty()) {
                return v[rng.random_range(0..v.len())];
            }
        }
        (Sym::UNKNOWN, Sym::UNKNOWN)
    }

    /// A duration for a call of type `ty` (ns).
    pub fn sample_duration(&self, rng: &mut ChaCha8Rng, ty: CallType) -> u64 {
        let v = match self.durations.get(&ty) {
            Some(v) if !v.is_empty() => v,
            _ => &self.all_durations,
        };
        if v.is_empty() {
            0
        } else {
            v[rng.random_range(0..v.len())]
        }
    }

    /// An online service id.
    pub fn sample_service(&self, rng: &mut ChaCha8Rng) -> Sym {
        if self.services.is_empty() {
            Sym::UNKNOWN
        } else {
            self.services[rng.random_range(0..self.services.len())]
        }
    }
}

/// Assigns start times top-down so that every child lies inside its parent: each
/// span's duration is clamped to its parent's, and its start is drawn uniformly in the
/// parent's slack. Spans must be in parent-before-child order.
pub(crate) fn contain_times(g: &mut CallGraph, rng: &mut ChaCha8Rng) {
    for i in 0..g.spans.len() {
        if let Some(p) = g.spans[i].parent {
            let (ps, pd) = (
                g.spans[p as usize].start_ns,
                g.spans[p as usize].duration_ns,
            );
            let s: &mut Span = &mut g.spans[i];
            s.duration_ns = s.duration_ns.min(pd);
            let slack = pd - s.duration_ns;
            s.start_ns = ps
                + if slack > 0 {
                    rng.random_range(0..=slack)
                } else {
                    0
                };
        }
    }
}
