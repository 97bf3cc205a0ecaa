//! A recursive, layer-by-layer generator fitted to a real sample: the statistical
//! analogue of the seed paper's recursive LLM generation (§4.2.1.2).
//!
//! **Fit.** For every span of the sample, keyed by (callee service, depth) with depth
//! capped at [`RecursiveModel::MAX_DEPTH`]: the observed child counts, child identities
//! (callee, call type, interface), and the span's durations. Also the observed graph
//! conditions (online service, number of edges, maximum depth, the root call).
//!
//! **Generate.** A graph is drawn from conditions `c¹ = (edges E, depth D, root)`
//! (sampled from the sample's conditions, or given). Like the paper's chain
//! `p(t | c) = Π p(c^{k+1}, t^k | c^k)`, graph generation proceeds one layer at a time
//! (a layer = the calls made by one span), breadth first. Each pending span carries its
//! layer condition: remaining edges `e` in its subtree, remaining depth `r`, and whether
//! its subtree must reach depth `r` exactly. For a layer:
//! 1. the child count `k` is drawn from the span's (service, depth) empirical
//!    distribution, conditioned on `1 <= k <= e - (r - 1)` if the depth must be reached,
//!    `1 <= k <= e` otherwise, and `k = e` when `r = 1` (rejection sampling, 16 tries,
//!    then the draw is clamped);
//! 2. each child's identity and call type are drawn from the children observed under
//!    the same (service, depth);
//! 3. the next layer conditions: the remaining `e - k` edges are split among the
//!    children that can have children (their own (service, depth) has a non-zero
//!    probability of children; if none can, all of them), one child ("deep") first
//!    receiving `r - 1` edges and the obligation to reach depth `r - 1`, the rest one
//!    edge at a time to uniformly chosen children;
//! 4. durations are drawn per (service, depth) and made to fit inside the parent
//!    (clamped; start offset uniform in the slack).
//!
//! By construction every generated graph has exactly `E` edges and depth `D`, is a tree
//! with consistent rpc ids (`0`, `0.1`, ...) and parent-child time containment.
//! Fallbacks when a key was never observed: the statistics of the same depth over all
//! services, then of the whole sample.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::contain_times;
use crate::error::{Error, Result};
use crate::model::{CallGraph, CallType, RpcId, Span, SpanKind, Sym, SymbolTable, TraceSet};
use crate::util::FxMap;

/// Statistics of one (service, depth) key.
#[derive(Clone, Debug, Default)]
struct NodeStats {
    child_counts: Vec<u32>,
    children: Vec<(Sym, CallType, Sym)>,
    durations: Vec<u64>,
    has_children: bool,
}

/// Observed conditions of one sample graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conditions {
    /// Online service.
    pub service: Sym,
    /// Number of edges.
    pub num_edges: u32,
    /// Maximum depth (edges on the longest root path).
    pub max_depth: u32,
    /// Root caller.
    pub root_um: Sym,
    /// Root callee.
    pub root_dm: Sym,
    /// Root call type.
    pub root_type: CallType,
    /// Root interface.
    pub root_interface: Sym,
}

/// A fitted recursive model.
#[derive(Clone, Debug)]
pub struct RecursiveModel {
    /// Names of the fitted sample.
    pub symbols: SymbolTable,
    nodes: FxMap<(Sym, u8), NodeStats>,
    by_depth: Vec<NodeStats>,
    global: NodeStats,
    conditions: Vec<Conditions>,
}

impl RecursiveModel {
    /// Depths above this share the statistics of this depth.
    pub const MAX_DEPTH: usize = 12;

    /// Fits the model to a sample. Errors on a sample without graphs.
    pub fn fit(sample: &TraceSet) -> Result<Self> {
        if sample.graphs.iter().all(|g| g.spans.is_empty()) {
            return Err(Error::Invalid(
                "cannot fit a recursive model on an empty sample".into(),
            ));
        }
        let mut m = RecursiveModel {
            symbols: sample.symbols.clone(),
            nodes: FxMap::default(),
            by_depth: vec![NodeStats::default(); Self::MAX_DEPTH + 1],
            global: NodeStats::default(),
            conditions: Vec::new(),
        };
        for g in &sample.graphs {
            if g.spans.is_empty() {
                continue;
            }
            let ch = g.children();
            let mut depth = vec![0usize; g.spans.len()];
            for (i, s) in g.spans.iter().enumerate() {
                let d = s.parent.map(|p| depth[p as usize] + 1).unwrap_or(1);
                depth[i] = d;
                let dk = d.min(Self::MAX_DEPTH);
                let kids: Vec<(Sym, CallType, Sym)> = ch[i]
                    .iter()
                    .map(|&c| {
                        let c = &g.spans[c as usize];
                        (c.dm, c.call_type, c.interface)
                    })
                    .collect();
                let n = kids.len() as u32;
                for st in [
                    m.nodes.entry((s.dm, dk as u8)).or_default(),
                    &mut m.by_depth[dk],
                    &mut m.global,
                ] {
                    st.child_counts.push(n);
                    st.children.extend_from_slice(&kids);
                    st.durations.push(s.duration_ns);
                    st.has_children |= n > 0;
                }
            }
            let r = &g.spans[0];
            m.conditions.push(Conditions {
                service: g.service,
                num_edges: g.spans.len() as u32,
                max_depth: g.max_depth() as u32,
                root_um: r.um,
                root_dm: r.dm,
                root_type: r.call_type,
                root_interface: r.interface,
            });
        }
        Ok(m)
    }

    /// The conditions observed in the sample (one per graph).
    pub fn conditions(&self) -> &[Conditions] {
        &self.conditions
    }

    fn stats(&self, dm: Sym, depth: usize) -> &NodeStats {
        let dk = depth.min(Self::MAX_DEPTH);
        if let Some(s) = self.nodes.get(&(dm, dk as u8)) {
            return s;
        }
        let s = &self.by_depth[dk];
        if !s.child_counts.is_empty() {
            s
        } else {
            &self.global
        }
    }

    fn child_pool(&self, dm: Sym, depth: usize) -> &[(Sym, CallType, Sym)] {
        let dk = depth.min(Self::MAX_DEPTH);
        if let Some(s) = self
            .nodes
            .get(&(dm, dk as u8))
            .filter(|s| !s.children.is_empty())
        {
            return &s.children;
        }
        if !self.by_depth[dk].children.is_empty() {
            return &self.by_depth[dk].children;
        }
        if !self.global.children.is_empty() {
            return &self.global.children;
        }
        &[]
    }
}

/// A seeded generator over a fitted [`RecursiveModel`].
pub struct RecursiveGenerator<'m> {
    model: &'m RecursiveModel,
    rng: ChaCha8Rng,
    next_id: u64,
}

struct Pending {
    span: u32,
    edges: u32,
    depth_left: u32,
    must: bool,
}

impl<'m> RecursiveGenerator<'m> {
    /// A generator with the given seed.
    pub fn new(model: &'m RecursiveModel, seed: u64) -> Self {
        RecursiveGenerator {
            model,
            rng: ChaCha8Rng::seed_from_u64(seed),
            next_id: 0,
        }
    }

    /// One graph under conditions drawn from the sample.
    pub fn generate_one(&mut self) -> CallGraph {
        let c = self.model.conditions[self.rng.random_range(0..self.model.conditions.len())];
        self.generate_with(&c).unwrap_or_else(|_| CallGraph {
            trace_id: String::new(),
            service: c.service,
            spans: Vec::new(),
        })
    }

    /// One graph under the given conditions. Errors if `num_edges` is 0 or smaller than
    /// `max_depth`, if `max_depth` is 0, or if `max_depth` is 1 with more than one edge
    /// (a graph has one root call).
    pub fn generate_with(&mut self, c: &Conditions) -> Result<CallGraph> {
        if c.num_edges == 0
            || c.max_depth == 0
            || c.num_edges < c.max_depth
            || (c.max_depth == 1 && c.num_edges > 1)
        {
            return Err(Error::Invalid(format!(
                "infeasible conditions: {} edges, depth {}",
                c.num_edges, c.max_depth
            )));
        }
        let m = self.model;
        let rng = &mut self.rng;
        let mut spans: Vec<Span> = Vec::with_capacity(c.num_edges as usize);
        let mut depth: Vec<u32> = Vec::with_capacity(c.num_edges as usize);
        let mut root = Span::new(RpcId::root());
        root.um = c.root_um;
        root.um_instance = Sym::UNKNOWN;
        root.dm = c.root_dm;
        root.call_type = c.root_type;
        root.interface = c.root_interface;
        root.kind = SpanKind::Server;
        root.duration_ns = pick(rng, &m.stats(c.root_dm, 1).durations).unwrap_or(0);
        spans.push(root);
        depth.push(1);
        let mut queue = std::collections::VecDeque::new();
        queue.push_back(Pending {
            span: 0,
            edges: c.num_edges - 1,
            depth_left: c.max_depth - 1,
            must: c.max_depth > 1,
        });
        while let Some(p) = queue.pop_front() {
            if p.edges == 0 || p.depth_left == 0 {
                continue;
            }
            let pd = depth[p.span as usize] as usize;
            let pdm = spans[p.span as usize].dm;
            let st = m.stats(pdm, pd);
            let kmax = if p.must {
                p.edges - (p.depth_left - 1)
            } else {
                p.edges
            };
            let k = if p.depth_left == 1 {
                p.edges
            } else {
                let mut k = None;
                for _ in 0..16 {
                    if let Some(x) = pick(rng, &st.child_counts)
                        && x >= 1
                        && x <= kmax
                    {
                        k = Some(x);
                        break;
                    }
                }
                k.unwrap_or_else(|| pick(rng, &st.child_counts).unwrap_or(1).clamp(1, kmax))
            };
            let pool = m.child_pool(pdm, pd);
            let first = spans.len();
            let prpc = spans[p.span as usize].rpc_id.clone();
            for j in 0..k {
                let (dm, ty, iface) = if pool.is_empty() {
                    (Sym::UNKNOWN, CallType::Unknown, Sym::UNKNOWN)
                } else {
                    pool[rng.random_range(0..pool.len())]
                };
                let mut s = Span::new(prpc.child(j + 1));
                s.parent = Some(p.span);
                s.um = pdm;
                s.um_instance = Sym::UNKNOWN;
                s.dm = dm;
                s.call_type = ty;
                s.interface = iface;
                s.kind = SpanKind::Server;
                s.duration_ns = pick(rng, &m.stats(dm, pd + 1).durations).unwrap_or(0);
                spans.push(s);
                depth.push(pd as u32 + 1);
            }
            let mut left = p.edges - k;
            let r = p.depth_left - 1;
            if left > 0 && r > 0 {
                let mut cand: Vec<usize> = (first..spans.len())
                    .filter(|&i| m.stats(spans[i].dm, pd + 1).has_children)
                    .collect();
                if cand.is_empty() {
                    cand = (first..spans.len()).collect();
                }
                let mut budget = vec![0u32; spans.len() - first];
                let mut must = vec![false; spans.len() - first];
                if p.must {
                    let d = cand[rng.random_range(0..cand.len())];
                    budget[d - first] += r;
                    must[d - first] = true;
                    left -= r;
                }
                for _ in 0..left {
                    let d = cand[rng.random_range(0..cand.len())];
                    budget[d - first] += 1;
                }
                for i in 0..budget.len() {
                    if budget[i] > 0 {
                        queue.push_back(Pending {
                            span: (first + i) as u32,
                            edges: budget[i],
                            depth_left: r,
                            must: must[i],
                        });
                    }
                }
            }
        }
        self.next_id += 1;
        let mut g = CallGraph {
            trace_id: format!("rec-{}", self.next_id),
            service: c.service,
            spans,
        };
        g.sort_by_rpc_id();
        contain_times(&mut g, &mut self.rng);
        Ok(g)
    }

    /// Generates `n` graphs into a new set (symbols: the model's table).
    pub fn generate(&mut self, n: usize) -> TraceSet {
        let graphs = (0..n).map(|_| self.generate_one()).collect();
        TraceSet {
            symbols: self.model.symbols.clone(),
            graphs,
        }
    }
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, v: &[T]) -> Option<T> {
    if v.is_empty() {
        None
    } else {
        Some(v[rng.random_range(0..v.len())])
    }
}
