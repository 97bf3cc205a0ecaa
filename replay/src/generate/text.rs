//! The seed paper's text encoding of call graphs (§4.2.1.1, §4.2.1.2, §4.2.2.1) for
//! training LLM trace generators, and a tolerant parser of LLM output.
//!
//! One graph is written as:
//!
//! ```text
//! <graph>
//! Service ID is S_1, Num Edges is 3, Max Depth is 2, Start Node is USER, Latency is 12 ms
//! <layer> Source is USER, Remaining Edges is 3, Remaining Depth is 2
//! Edge ID is 1, Source is USER, Destination is MS_1, Type is http, Communication starts at 0 ms, Communication finishes at 12 ms
//! <layer> Parent Edge is 1, Source is MS_1, Remaining Edges is 2, Remaining Depth is 1
//! Edge ID is 2, Source is MS_1, Destination is MS_2, Type is rpc, Communication starts at 1 ms, Communication finishes at 5 ms
//! Edge ID is 3, Source is MS_1, Destination is MS_3, Type is mc, Communication starts at 6 ms, Communication finishes at 7 ms
//! </graph>
//! ```
//!
//! - [`TextStyle::Flat`] (pre-training without recursion): the condition line and all
//!   edges, no layer lines;
//! - [`TextStyle::Recursive`]: a `<layer>` line (the layer condition `c^k`: the parent
//!   edge, the source, the edges and depth remaining in that subtree) before the edges
//!   `t^k` of each layer (the calls of one span), breadth first;
//! - [`TextStyle::Instruction`]: as Recursive plus, after each layer, the intermediate
//!   instruction scratchpad (`Thoughts: num generated edges = the last edge id - the
//!   first edge id + 1 = ...; remaining edges = ...; Child's remaining depth = current
//!   remaining depth - 1 = ...`).
//!
//! Edge ids are 1-based in breadth-first layer order; times are ms relative to the
//! root's start. With [`TextOptions::shuffle`] the clauses of each edge and of the
//! condition line are shuffled, and each condition attribute except the service id is
//! dropped with probability [`TextOptions::p_drop`] (the paper's 0.9), seeded.
//!
//! [`parse_graph_text`] reads any of the styles (clauses in any order, unknown clauses
//! ignored); [`parse_many`] splits `<graph>` blocks and counts invalid ones by reason.

use std::collections::BTreeMap;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::model::{CallGraph, CallType, RpcId, Span, SpanKind, Sym, SymbolTable, TraceSet};

/// Which text layout to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TextStyle {
    /// Conditions and all edges.
    Flat,
    /// Layers with layer conditions.
    Recursive,
    /// Layers with conditions and intermediate-instruction scratchpads.
    Instruction,
}

/// Options of the encoder.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextOptions {
    /// Layout.
    pub style: TextStyle,
    /// Shuffle clause order and drop condition attributes (pre-training augmentation).
    pub shuffle: bool,
    /// Drop probability of each condition attribute except the service id.
    pub p_drop: f64,
    /// Seed of the shuffling.
    pub seed: u64,
}

impl Default for TextOptions {
    fn default() -> Self {
        TextOptions {
            style: TextStyle::Instruction,
            shuffle: false,
            p_drop: 0.9,
            seed: 0,
        }
    }
}

fn ms(ns: u64) -> String {
    let v = ns as f64 / 1e6;
    format!("{v}")
}

/// Encodes a set of graphs, one `<graph>` block each, separated by newlines. Graphs that
/// are not trees (see [`crate::fidelity::Validity::dag`]) are skipped.
pub fn encode_set(set: &TraceSet, opts: &TextOptions) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut out = String::new();
    for g in &set.graphs {
        encode_into(&mut out, g, &set.symbols, opts, &mut rng);
    }
    out
}

/// Encodes one graph (empty text if it is not a tree).
pub fn encode_graph(g: &CallGraph, symbols: &SymbolTable, opts: &TextOptions) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut out = String::new();
    encode_into(&mut out, g, symbols, opts, &mut rng);
    out
}

fn shuffle<T>(v: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}

fn encode_into(
    out: &mut String,
    g: &CallGraph,
    sy: &SymbolTable,
    o: &TextOptions,
    rng: &mut ChaCha8Rng,
) {
    if g.spans.is_empty() || !crate::fidelity::check_validity(g, None).dag {
        // only trees (parents before children, one root) can be encoded
        return;
    }
    let ch = g.children();
    // subtree sizes and heights
    let n = g.spans.len();
    let mut size = vec![1u32; n];
    let mut height = vec![1u32; n];
    for i in (0..n).rev() {
        if let Some(p) = g.spans[i].parent.filter(|&p| (p as usize) < i) {
            size[p as usize] += size[i];
            height[p as usize] = height[p as usize].max(height[i] + 1);
        }
    }
    let t0 = g.spans[0].start_ns;
    let mut conds = vec![
        format!("Service ID is {}", sy.resolve(g.service)),
        format!("Num Edges is {n}"),
        format!("Max Depth is {}", height[0]),
        format!("Start Node is {}", sy.resolve(g.spans[0].um)),
        format!("Latency is {} ms", ms(g.latency_ns())),
    ];
    if o.shuffle {
        let svc = conds.remove(0);
        conds.retain(|_| rng.random::<f64>() >= o.p_drop);
        conds.push(svc);
        shuffle(&mut conds, rng);
    }
    out.push_str("<graph>\n");
    out.push_str(&conds.join(", "));
    out.push('\n');
    // layers: the root edge first, then the children of each span in BFS order
    let mut edge_id = vec![0u32; n];
    let mut layers: Vec<(Option<u32>, Vec<u32>)> = vec![(None, vec![0])];
    let mut k = 0;
    while k < layers.len() {
        let spans_of_layer = layers[k].1.clone();
        for s in spans_of_layer {
            if !ch[s as usize].is_empty() {
                layers.push((Some(s), ch[s as usize].clone()));
            }
        }
        k += 1;
    }
    let mut next = 1u32;
    for (parent, edges) in &layers {
        let (src, rem_e, rem_d) = match parent {
            None => (sy.resolve(g.spans[0].um), n as u32, height[0]),
            Some(p) => (
                sy.resolve(g.spans[*p as usize].dm),
                size[*p as usize] - 1,
                height[*p as usize] - 1,
            ),
        };
        if o.style != TextStyle::Flat {
            match parent {
                None => out.push_str(&format!(
                    "<layer> Source is {src}, Remaining Edges is {rem_e}, Remaining Depth is {rem_d}\n"
                )),
                Some(p) => out.push_str(&format!(
                    "<layer> Parent Edge is {}, Source is {src}, Remaining Edges is {rem_e}, Remaining Depth is {rem_d}\n",
                    edge_id[*p as usize]
                )),
            }
        }
        let first = next;
        for &e in edges {
            let s = &g.spans[e as usize];
            edge_id[e as usize] = next;
            let mut cl = vec![
                format!("Edge ID is {next}"),
                format!("Source is {}", sy.resolve(s.um)),
                format!("Destination is {}", sy.resolve(s.dm)),
                format!("Type is {}", s.call_type.as_str()),
                format!(
                    "Communication starts at {} ms",
                    ms(s.start_ns.saturating_sub(t0))
                ),
                format!(
                    "Communication finishes at {} ms",
                    ms(s.end_ns().saturating_sub(t0))
                ),
            ];
            if o.shuffle {
                shuffle(&mut cl, rng);
            }
            out.push_str(&cl.join(", "));
            out.push('\n');
            next += 1;
        }
        if o.style == TextStyle::Instruction {
            let last = next - 1;
            let made = last - first + 1;
            out.push_str(&format!(
                "Thoughts: num generated edges = the last edge id - the first edge id + 1 = {last} - {first} + 1 = {made}. \
                 remaining edges = {rem_e} - {made} = {}. Child's remaining depth = current remaining depth - 1 = {rem_d} - 1 = {}.\n",
                rem_e.saturating_sub(made),
                rem_d.saturating_sub(1)
            ));
        }
    }
    out.push_str("</graph>\n");
}

/// Why an LLM output could not be read as a call graph.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, thiserror::Error, Serialize, Deserialize,
)]
pub enum TextError {
    /// No edge sentence found.
    #[error("no edges")]
    NoEdges,
    /// An edge sentence lacks a required clause.
    #[error("edge on line {line} lacks `{clause}`")]
    MissingClause {
        /// Line (1-based within the block).
        line: usize,
        /// The clause.
        clause: String,
    },
    /// A number could not be read.
    #[error("line {line}: bad number in `{clause}`")]
    BadNumber {
        /// Line.
        line: usize,
        /// The clause.
        clause: String,
    },
    /// Two edges share an id.
    #[error("duplicate edge id {0}")]
    DuplicateEdgeId(u32),
    /// A layer refers to an edge that does not exist (yet).
    #[error("layer refers to unknown parent edge {0}")]
    UnknownParentEdge(u32),
    /// An edge's source is not its parent's destination.
    #[error("edge {0}: source is not the parent's destination")]
    SourceMismatch(u32),
    /// More than one edge without a parent.
    #[error("more than one root edge")]
    MultipleRoots,
    /// A finish time before the start time.
    #[error("edge {0} finishes before it starts")]
    FinishBeforeStart(u32),
}

impl TextError {
    /// A short reason key for counting.
    pub fn key(&self) -> &'static str {
        match self {
            TextError::NoEdges => "no_edges",
            TextError::MissingClause { .. } => "missing_clause",
            TextError::BadNumber { .. } => "bad_number",
            TextError::DuplicateEdgeId(_) => "duplicate_edge_id",
            TextError::UnknownParentEdge(_) => "unknown_parent_edge",
            TextError::SourceMismatch(_) => "source_mismatch",
            TextError::MultipleRoots => "multiple_roots",
            TextError::FinishBeforeStart(_) => "finish_before_start",
        }
    }
}

/// Counts of a [`parse_many`] run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextParseReport {
    /// Blocks read.
    pub blocks: u64,
    /// Blocks that gave a graph.
    pub valid: u64,
    /// Invalid blocks by reason key.
    pub invalid: BTreeMap<String, u64>,
}

fn clause_value<'a>(c: &'a str, key: &str) -> Option<&'a str> {
    let c = c.trim();
    match (c.get(..key.len()), c.get(key.len()..)) {
        (Some(head), Some(rest)) if head.eq_ignore_ascii_case(key) => Some(rest.trim()),
        _ => None,
    }
}

fn parse_ms(v: &str) -> Option<u64> {
    let v = v.trim().trim_end_matches("ms").trim();
    let f: f64 = v.parse().ok()?;
    (0.0..1.8e10).contains(&f).then(|| (f * 1e6).round() as u64)
}

/// The requested `(Num Edges, Max Depth)` of a block's condition line, if present.
pub fn parse_conditions(text: &str) -> (Option<u32>, Option<u32>) {
    let mut e = None;
    let mut d = None;
    for line in text.lines() {
        if line.contains("Edge ID is") || line.trim_start().starts_with("<layer") {
            continue;
        }
        for c in line.split(',') {
            if let Some(v) = clause_value(c, "Num Edges is") {
                e = e.or(v.parse().ok());
            }
            if let Some(v) = clause_value(c, "Max Depth is") {
                d = d.or(v.parse().ok());
            }
        }
    }
    (e, d)
}

struct Edge {
    id: u32,
    parent_edge: Option<u32>,
    src: String,
    dst: String,
    ty: CallType,
    start: u64,
    end: u64,
}

/// Reads one graph from text (any [`TextStyle`]; a `<graph>` wrapper is optional).
/// Names are interned into `symbols`. Without layer lines, an edge's parent is the most
/// recent earlier edge whose destination is this edge's source.
pub fn parse_graph_text(text: &str, symbols: &mut SymbolTable) -> Result<CallGraph, TextError> {
    let mut edges: Vec<Edge> = Vec::new();
    let mut layer_parent: Option<Option<u32>> = None;
    let mut service = None;
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("<layer>") {
            let mut pe = None;
            for c in rest.split(',') {
                if let Some(v) = clause_value(c, "Parent Edge is") {
                    pe = Some(v.parse::<u32>().map_err(|_| TextError::BadNumber {
                        line: ln + 1,
                        clause: "Parent Edge is".into(),
                    })?);
                }
            }
            layer_parent = Some(pe);
            continue;
        }
        if !line.contains("Edge ID is") {
            for c in line.split(',') {
                if let Some(v) = clause_value(c, "Service ID is") {
                    service = Some(v.to_owned());
                }
            }
            continue;
        }
        let (mut id, mut src, mut dst, mut ty, mut st, mut en) =
            (None, None, None, None, None, None);
        for c in line.split(',') {
            let bad = |k: &str| TextError::BadNumber {
                line: ln + 1,
                clause: k.into(),
            };
            if let Some(v) = clause_value(c, "Edge ID is") {
                id = Some(v.parse::<u32>().map_err(|_| bad("Edge ID is"))?);
            } else if let Some(v) = clause_value(c, "Source is") {
                src = Some(v.to_owned());
            } else if let Some(v) = clause_value(c, "Destination is") {
                dst = Some(v.to_owned());
            } else if let Some(v) = clause_value(c, "Type is") {
                ty = Some(CallType::parse(v.as_bytes()));
            } else if let Some(v) = clause_value(c, "Communication starts at") {
                st = Some(parse_ms(v).ok_or_else(|| bad("Communication starts at"))?);
            } else if let Some(v) = clause_value(c, "Communication finishes at") {
                en = Some(parse_ms(v).ok_or_else(|| bad("Communication finishes at"))?);
            }
        }
        let miss = |k: &str| TextError::MissingClause {
            line: ln + 1,
            clause: k.into(),
        };
        let id = id.ok_or_else(|| miss("Edge ID is"))?;
        let src = src.ok_or_else(|| miss("Source is"))?;
        let dst = dst.ok_or_else(|| miss("Destination is"))?;
        let start = st.unwrap_or(0);
        let end = en.unwrap_or(start);
        if end < start {
            return Err(TextError::FinishBeforeStart(id));
        }
        if edges.iter().any(|e| e.id == id) {
            return Err(TextError::DuplicateEdgeId(id));
        }
        let parent_edge = match layer_parent {
            Some(p) => p,
            None => edges.iter().rev().find(|e| e.dst == src).map(|e| e.id),
        };
        edges.push(Edge {
            id,
            parent_edge,
            src,
            dst,
            ty: ty.unwrap_or_default(),
            start,
            end,
        });
    }
    if edges.is_empty() {
        return Err(TextError::NoEdges);
    }
    let mut idx = std::collections::HashMap::new();
    for (i, e) in edges.iter().enumerate() {
        idx.insert(e.id, i);
    }
    let mut parent = vec![None; edges.len()];
    let mut roots = 0;
    for (i, e) in edges.iter().enumerate() {
        match e.parent_edge {
            Some(p) => {
                let &pi = idx.get(&p).ok_or(TextError::UnknownParentEdge(p))?;
                if pi >= i {
                    return Err(TextError::UnknownParentEdge(p));
                }
                if edges[pi].dst != e.src {
                    return Err(TextError::SourceMismatch(e.id));
                }
                parent[i] = Some(pi);
            }
            None => roots += 1,
        }
    }
    if roots != 1 || parent[0].is_some() {
        return Err(TextError::MultipleRoots);
    }
    let mut intern = |s: &str| {
        if s == "UNKNOWN" {
            Sym::UNKNOWN
        } else {
            symbols.intern(s)
        }
    };
    let mut nchild = vec![0u32; edges.len()];
    let mut spans: Vec<Span> = Vec::with_capacity(edges.len());
    for (i, e) in edges.iter().enumerate() {
        let rpc = match parent[i] {
            None => RpcId::root(),
            Some(p) => {
                nchild[p] += 1;
                spans[p].rpc_id.child(nchild[p])
            }
        };
        let mut s = Span::new(rpc);
        s.parent = parent[i].map(|p| p as u32);
        s.um = intern(&e.src);
        s.dm = intern(&e.dst);
        s.call_type = e.ty;
        s.kind = SpanKind::Server;
        s.start_ns = e.start;
        s.duration_ns = e.end - e.start;
        spans.push(s);
    }
    let svc = service.map(|s| intern(&s)).unwrap_or(Sym::UNKNOWN);
    let mut g = CallGraph {
        trace_id: String::new(),
        service: svc,
        spans,
    };
    g.sort_by_rpc_id();
    Ok(g)
}

/// Splits `text` into `<graph> ... </graph>` blocks (the whole text if there is no
/// `<graph>` marker) and parses each; invalid blocks are counted by reason, never a
/// panic. Parsed graphs get trace ids `text-<block number>`.
pub fn parse_many(text: &str) -> (TraceSet, TextParseReport) {
    let mut set = TraceSet::new();
    let mut rep = TextParseReport::default();
    let blocks: Vec<&str> = if text.contains("<graph>") {
        text.split("<graph>")
            .skip(1)
            .map(|b| b.split("</graph>").next().unwrap_or(b))
            .collect()
    } else {
        vec![text]
    };
    for (i, b) in blocks.iter().enumerate() {
        rep.blocks += 1;
        match parse_graph_text(b, &mut set.symbols) {
            Ok(mut g) => {
                g.trace_id = format!("text-{}", i + 1);
                rep.valid += 1;
                set.graphs.push(g);
            }
            Err(e) => *rep.invalid.entry(e.key().to_owned()).or_insert(0) += 1,
        }
    }
    (set, rep)
}
