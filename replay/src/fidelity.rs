//! Fidelity metrics of synthetic traces against real ones (the seed paper's §5.2).
//!
//! - **Structural validity** ([`check_validity`]): the graph is a tree rooted at
//!   `spans[0]` (hence a DAG), every span has `start <= finish` (no overflow), children
//!   lie inside their parent's time window, every parent's rpc id is a proper prefix of
//!   its child's, and, when requested, the graph has exactly the requested number of
//!   edges and depth.
//! - **KL divergence of popular calls**: `D_KL(P || Q)` over (source, destination, type)
//!   calls, P real and Q synthetic, over the real data's [`FidelityOptions::popular`]
//!   most frequent calls plus one "other" bin; counts get add-0.5 (Jeffreys) smoothing
//!   so that the divergence is finite.
//! - **Heavy-hitter accuracy**: `|TopK(synth) ∩ TopK(real)| / K'` over callee services
//!   ranked by call count (ties by name), `K' = min(K, #real services)`, for
//!   K in {10, 50, 100, 500}.
//! - **Normalised EMD** of in-degree, out-degree (per graph and service: calls received
//!   / initiated) and response time (per span, ms): the 1-D Wasserstein distance
//!   `∫|F_P − F_Q|` divided by the range of the pooled values (0 when both are constant),
//!   so in [0, 1], lower is better. **A comparison with an empty side** (no graphs, or
//!   no value to compare, e.g. a synthetic set with no spans) has nothing to match and
//!   scores the worst value, **1.0**, so that ranking by EMD (lower is better) never
//!   puts an empty set ahead of a non-empty one.
//!
//! **Placeholder names** are not services: `UNKNOWN` (every spelling of a missing name)
//! and `USER` (the external client: the caller of entry calls, also logged as a callee
//! in v2022) are left out of the heavy hitters' service ranking and get no in/out-degree
//! value of their own. A call between a placeholder and a service still counts for the
//! service (a call to `UNKNOWN` is one of its caller's initiated calls).
//! - **Memorisation rate**: share of synthetic graphs whose canonical form — the tree
//!   shape with (caller, callee, type) labels, children in sorted order, without times,
//!   interfaces or instances — occurs in the training set.
//!
//! Names are compared as strings, so the sets may have different symbol tables.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::model::{CallGraph, SymbolTable, TraceSet};

/// Result of [`check_validity`] for one graph.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validity {
    /// A tree rooted at `spans[0]` (parents precede children, one root).
    pub dag: bool,
    /// Every span has start <= finish.
    pub times: bool,
    /// Children inside parents' windows.
    pub containment: bool,
    /// Parent rpc ids are proper prefixes of children's.
    pub rpc_hierarchy: bool,
    /// Edges and depth match the request (true when nothing was requested).
    pub request: bool,
}

impl Validity {
    /// All checks pass.
    pub fn is_valid(&self) -> bool {
        self.dag && self.times && self.containment && self.rpc_hierarchy && self.request
    }
}

/// Checks one graph. `request` = (number of edges, depth) asked for, if any.
pub fn check_validity(g: &CallGraph, request: Option<(usize, usize)>) -> Validity {
    let n = g.spans.len();
    let mut v = Validity {
        dag: n > 0,
        times: true,
        containment: true,
        rpc_hierarchy: true,
        request: true,
    };
    for (i, s) in g.spans.iter().enumerate() {
        if s.start_ns.checked_add(s.duration_ns).is_none() {
            v.times = false;
        }
        match s.parent {
            None => {
                if i != 0 {
                    v.dag = false;
                }
            }
            Some(p) => {
                let p = p as usize;
                if p >= i {
                    v.dag = false;
                    continue;
                }
                let ps = &g.spans[p];
                if s.start_ns < ps.start_ns || s.end_ns() > ps.end_ns() {
                    v.containment = false;
                }
                if !ps.rpc_id.is_proper_prefix_of(&s.rpc_id) {
                    v.rpc_hierarchy = false;
                }
            }
        }
    }
    if let Some((e, d)) = request {
        v.request = v.dag && n == e && g.max_depth() == d;
    }
    v
}

/// Options of [`compare`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FidelityOptions {
    /// Number of popular real calls forming the KL support (plus an "other" bin).
    pub popular: usize,
    /// K values of the heavy-hitter accuracy.
    pub top_k: Vec<usize>,
}

impl Default for FidelityOptions {
    fn default() -> Self {
        FidelityOptions {
            popular: 100,
            top_k: vec![10, 50, 100, 500],
        }
    }
}

/// Heavy-hitter accuracy at one K.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeavyHitter {
    /// Requested K.
    pub k: usize,
    /// Effective K (min of K and the number of real services).
    pub k_effective: usize,
    /// Accuracy in [0, 1].
    pub accuracy: f64,
}

/// All metrics of one synthetic set against one real set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FidelityReport {
    /// Real graphs.
    pub real_graphs: usize,
    /// Synthetic graphs.
    pub synth_graphs: usize,
    /// Share of structurally valid synthetic graphs.
    pub validity_rate: f64,
    /// KL divergence of popular calls (nats).
    pub kl_popular_calls: f64,
    /// Heavy-hitter accuracies.
    pub heavy_hitters: Vec<HeavyHitter>,
    /// Normalised EMD of in-degree, in [0, 1] (lower is better; 1.0 when a side has no
    /// service, e.g. an empty synthetic set).
    pub emd_in_degree: f64,
    /// Normalised EMD of out-degree, in [0, 1] (lower is better; 1.0 when a side has no
    /// service).
    pub emd_out_degree: f64,
    /// Normalised EMD of response time, in [0, 1] (lower is better; 1.0 when a side has
    /// no span).
    pub emd_response_time: f64,
    /// Share of synthetic graphs found verbatim (canonical form) in `training`.
    pub memorisation_rate: f64,
}

type Call = (String, String, &'static str);

fn calls(set: &TraceSet) -> BTreeMap<Call, u64> {
    let mut m = BTreeMap::new();
    for g in &set.graphs {
        for s in &g.spans {
            let k = (
                set.name(s.um).to_owned(),
                set.name(s.dm).to_owned(),
                s.call_type.as_str(),
            );
            *m.entry(k).or_insert(0) += 1;
        }
    }
    m
}

fn ranked<K: Ord + Clone>(m: &BTreeMap<K, u64>) -> Vec<K> {
    let mut v: Vec<(&K, &u64)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.into_iter().map(|(k, _)| k.clone()).collect()
}

/// KL divergence of the popular-call distributions (see the module docs).
pub fn kl_popular_calls(real: &TraceSet, synth: &TraceSet, popular: usize) -> f64 {
    let r = calls(real);
    let s = calls(synth);
    let top: Vec<Call> = ranked(&r).into_iter().take(popular).collect();
    let bins = |m: &BTreeMap<Call, u64>| {
        let mut v: Vec<f64> = top.iter().map(|k| *m.get(k).unwrap_or(&0) as f64).collect();
        let total: f64 = m.values().map(|&x| x as f64).sum();
        let other = total - v.iter().sum::<f64>();
        v.push(other.max(0.0));
        let z: f64 = v.iter().map(|x| x + 0.5).sum();
        v.iter().map(|x| (x + 0.5) / z).collect::<Vec<f64>>()
    };
    let p = bins(&r);
    let q = bins(&s);
    p.iter()
        .zip(&q)
        .map(|(p, q)| p * (p / q).ln())
        .sum::<f64>()
        .max(0.0)
}

/// The placeholder names, which are not services (see the module docs).
pub const PLACEHOLDER_NAMES: [&str; 2] = ["UNKNOWN", "USER"];

fn callee_counts(set: &TraceSet) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for g in &set.graphs {
        for s in &g.spans {
            *m.entry(set.name(s.dm).to_owned()).or_insert(0) += 1;
        }
    }
    for p in PLACEHOLDER_NAMES {
        m.remove(p);
    }
    m
}

/// Heavy-hitter top-K accuracy for each K (see the module docs; placeholder names are
/// not ranked).
pub fn heavy_hitters(real: &TraceSet, synth: &TraceSet, ks: &[usize]) -> Vec<HeavyHitter> {
    let r = ranked(&callee_counts(real));
    let s = ranked(&callee_counts(synth));
    ks.iter()
        .map(|&k| {
            let ke = k.min(r.len());
            let rs: HashSet<&String> = r.iter().take(ke).collect();
            let hit = s.iter().take(ke).filter(|x| rs.contains(x)).count();
            HeavyHitter {
                k,
                k_effective: ke,
                accuracy: if ke == 0 { 0.0 } else { hit as f64 / ke as f64 },
            }
        })
        .collect()
}

/// Per (graph, service): (in-degree, out-degree) values; placeholders get none.
fn degrees(set: &TraceSet) -> (Vec<f64>, Vec<f64>) {
    let mut ins = Vec::new();
    let mut outs = Vec::new();
    // the ids of the placeholder names in this set's table (by name: tables differ)
    let placeholders: Vec<u32> = PLACEHOLDER_NAMES
        .iter()
        .filter_map(|n| set.symbols.get(n))
        .map(|s| s.0)
        .collect();
    for g in &set.graphs {
        let mut m: BTreeMap<u32, (u32, u32)> = BTreeMap::new();
        for s in &g.spans {
            m.entry(s.dm.0).or_default().0 += 1;
            m.entry(s.um.0).or_default().1 += 1;
        }
        for p in &placeholders {
            m.remove(p);
        }
        for (_, (i, o)) in m {
            ins.push(f64::from(i));
            outs.push(f64::from(o));
        }
    }
    (ins, outs)
}

fn response_times(set: &TraceSet) -> Vec<f64> {
    set.graphs
        .iter()
        .flat_map(|g| g.spans.iter().map(|s| s.duration_ns as f64 / 1e6))
        .collect()
}

/// The score of [`normalised_emd`] when a side is empty: the worst value.
pub const EMD_EMPTY_SIDE: f64 = 1.0;

/// 1-D Wasserstein-1 distance between two samples divided by the pooled range, in
/// [0, 1] (lower is more similar): 0 when the pooled values are constant, and
/// [`EMD_EMPTY_SIDE`] (1.0, the worst score) when either sample is empty after
/// non-finite values are left out — an empty sample matches nothing, so it must not
/// look identical to the other one.
pub fn normalised_emd(a: &[f64], b: &[f64]) -> f64 {
    let mut a: Vec<f64> = a.iter().copied().filter(|x| x.is_finite()).collect();
    let mut b: Vec<f64> = b.iter().copied().filter(|x| x.is_finite()).collect();
    if a.is_empty() || b.is_empty() {
        return EMD_EMPTY_SIDE;
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let lo = a[0].min(b[0]);
    let hi = a[a.len() - 1].max(b[b.len() - 1]);
    if hi <= lo {
        return 0.0;
    }
    // integrate |F_a - F_b| over the merged breakpoints
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut x = lo;
    let mut w = 0.0;
    while i < a.len() || j < b.len() {
        let nx = match (a.get(i), b.get(j)) {
            (Some(&p), Some(&q)) => p.min(q),
            (Some(&p), None) => p,
            (None, Some(&q)) => q,
            (None, None) => break,
        };
        w += (i as f64 / na - j as f64 / nb).abs() * (nx - x);
        x = nx;
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
    }
    w / (hi - lo)
}

/// The canonical form used by the memorisation rate.
pub fn canonical_form(g: &CallGraph, symbols: &SymbolTable) -> String {
    let ch = g.children();
    fn rec(g: &CallGraph, sy: &SymbolTable, ch: &[Vec<u32>], i: usize, depth: usize) -> String {
        let s = &g.spans[i];
        let mut kids: Vec<String> = if depth > 256 {
            Vec::new()
        } else {
            ch[i]
                .iter()
                .map(|&c| rec(g, sy, ch, c as usize, depth + 1))
                .collect()
        };
        kids.sort();
        format!(
            "({}>{}:{}[{}])",
            sy.resolve(s.um),
            sy.resolve(s.dm),
            s.call_type.as_str(),
            kids.join(",")
        )
    }
    if g.spans.is_empty() {
        return String::new();
    }
    if !check_validity(g, None).dag {
        // not a tree: never equal to another graph's form
        return format!("<invalid {}>", g.trace_id);
    }
    rec(g, symbols, &ch, 0, 0)
}

/// Share of `synth` graphs whose canonical form occurs in `training`.
pub fn memorisation_rate(training: &TraceSet, synth: &TraceSet) -> f64 {
    if synth.graphs.is_empty() {
        return 0.0;
    }
    let seen: HashSet<String> = training
        .graphs
        .iter()
        .map(|g| canonical_form(g, &training.symbols))
        .collect();
    let hits = synth
        .graphs
        .iter()
        .filter(|g| seen.contains(&canonical_form(g, &synth.symbols)))
        .count();
    hits as f64 / synth.graphs.len() as f64
}

/// Share of valid graphs (no request).
pub fn validity_rate(set: &TraceSet) -> f64 {
    if set.graphs.is_empty() {
        return 0.0;
    }
    let ok = set
        .graphs
        .iter()
        .filter(|g| check_validity(g, None).is_valid())
        .count();
    ok as f64 / set.graphs.len() as f64
}

/// Every metric of `synth` against `real`; memorisation is measured against `training`.
/// When either set is empty the EMDs are 1.0, the worst score (see the module docs).
pub fn compare(
    real: &TraceSet,
    synth: &TraceSet,
    training: &TraceSet,
    o: &FidelityOptions,
) -> FidelityReport {
    let (ri, ro) = degrees(real);
    let (si, so) = degrees(synth);
    FidelityReport {
        real_graphs: real.graphs.len(),
        synth_graphs: synth.graphs.len(),
        validity_rate: validity_rate(synth),
        kl_popular_calls: kl_popular_calls(real, synth, o.popular),
        heavy_hitters: heavy_hitters(real, synth, &o.top_k),
        emd_in_degree: normalised_emd(&ri, &si),
        emd_out_degree: normalised_emd(&ro, &so),
        emd_response_time: normalised_emd(&response_times(real), &response_times(synth)),
        memorisation_rate: memorisation_rate(training, synth),
    }
}

/// A text table with one column per named report.
pub fn to_table(rows: &[(&str, &FidelityReport)]) -> String {
    let mut lines: Vec<(String, Vec<String>)> = vec![
        (
            "graphs (synthetic)".into(),
            rows.iter().map(|r| r.1.synth_graphs.to_string()).collect(),
        ),
        (
            "validity rate".into(),
            rows.iter()
                .map(|r| format!("{:.3}", r.1.validity_rate))
                .collect(),
        ),
        (
            "KL popular calls".into(),
            rows.iter()
                .map(|r| format!("{:.3}", r.1.kl_popular_calls))
                .collect(),
        ),
    ];
    let ks: Vec<usize> = rows
        .first()
        .map(|r| r.1.heavy_hitters.iter().map(|h| h.k).collect())
        .unwrap_or_default();
    for (i, k) in ks.iter().enumerate() {
        let ke = rows
            .first()
            .and_then(|r| r.1.heavy_hitters.get(i))
            .map(|h| h.k_effective)
            .unwrap_or(0);
        lines.push((
            format!("heavy hitters K={k} (K'={ke})"),
            rows.iter()
                .map(|r| {
                    r.1.heavy_hitters
                        .get(i)
                        .map(|h| format!("{:.3}", h.accuracy))
                        .unwrap_or_default()
                })
                .collect(),
        ));
    }
    lines.push((
        "EMD in-degree".into(),
        rows.iter()
            .map(|r| format!("{:.4}", r.1.emd_in_degree))
            .collect(),
    ));
    lines.push((
        "EMD out-degree".into(),
        rows.iter()
            .map(|r| format!("{:.4}", r.1.emd_out_degree))
            .collect(),
    ));
    lines.push((
        "EMD response time".into(),
        rows.iter()
            .map(|r| format!("{:.4}", r.1.emd_response_time))
            .collect(),
    ));
    lines.push((
        "memorisation rate".into(),
        rows.iter()
            .map(|r| format!("{:.3}", r.1.memorisation_rate))
            .collect(),
    ));
    let w0 = lines.iter().map(|l| l.0.len()).max().unwrap_or(0).max(6);
    let wc: Vec<usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            lines
                .iter()
                .map(|l| l.1[i].len())
                .max()
                .unwrap_or(0)
                .max(r.0.len())
        })
        .collect();
    let mut out = format!("{:w0$}", "metric");
    for (i, r) in rows.iter().enumerate() {
        out += &format!(" | {:>w$}", r.0, w = wc[i]);
    }
    out.push('\n');
    out += &"-".repeat(out.len().saturating_sub(1));
    out.push('\n');
    for (name, vals) in &lines {
        out += &format!("{name:w0$}");
        for (i, v) in vals.iter().enumerate() {
            out += &format!(" | {v:>w$}", w = wc[i]);
        }
        out.push('\n');
    }
    out
}

/// Splits a set into two halves (even / odd positions), e.g. for the "real vs real"
/// ceiling of the fidelity table.
pub fn split_halves(set: &TraceSet) -> (TraceSet, TraceSet) {
    let mut a = TraceSet {
        symbols: set.symbols.clone(),
        graphs: Vec::new(),
    };
    let mut b = TraceSet {
        symbols: set.symbols.clone(),
        graphs: Vec::new(),
    };
    for (i, g) in set.graphs.iter().enumerate() {
        if i % 2 == 0 {
            a.graphs.push(g.clone())
        } else {
            b.graphs.push(g.clone())
        }
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(csv_rows: &str) -> TraceSet {
        let csv = format!(
            "timestamp,traceid,service,rpc_id,rpctype,um,uminstanceid,interface,dm,dminstanceid,rt\n{csv_rows}"
        );
        crate::read_bytes(
            "t.csv",
            csv.as_bytes(),
            crate::Format::AlibabaV2022,
            Default::default(),
        )
        .unwrap()
        .0
    }

    #[test]
    fn placeholders_get_no_degree_and_are_not_heavy_hitters() {
        // USER -> A, A -> B, A -> (unknown), UNKNOWN -> USER
        let s = set("0,T,S,0,http,USER,USER,i,A,a,5\n\
                     1,T,S,0.1,rpc,A,a,i,B,b,1\n\
                     1,T,S,0.2,mc,A,a,i,UNKNOWN,UNKNOWN,1\n\
                     1,T,S,0.3,rpc,UNKNOWN,UNKNOWN,i,USER,USER,1\n");
        let (mut ins, mut outs) = degrees(&s);
        ins.sort_by(f64::total_cmp);
        outs.sort_by(f64::total_cmp);
        // A: in 1 (from USER), out 2 (B and the unknown callee); B: in 1, out 0
        assert_eq!(ins, [1.0, 1.0]);
        assert_eq!(outs, [0.0, 2.0]);
        let hh = heavy_hitters(&s, &s, &[10]);
        assert_eq!(hh[0].k_effective, 2, "A and B only");
        // the same services with other placeholder calls: identical degrees
        let t = set("0,T,S,0,http,UNKNOWN,UNKNOWN,i,A,a,5\n\
                     1,T,S,0.1,rpc,A,a,i,B,b,1\n\
                     1,T,S,0.2,mc,A,a,i,USER,USER,1\n");
        let r = compare(&s, &t, &s, &FidelityOptions::default());
        assert_eq!((r.emd_in_degree, r.emd_out_degree), (0.0, 0.0));
    }
}
