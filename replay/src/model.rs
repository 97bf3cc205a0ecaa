//! The call-graph data model shared by every reader, writer, generator and metric.
//!
//! A [`CallGraph`] is one request (one trace): a tree of [`Span`]s, each span being one
//! call from a caller service (`um`, "upstream microservice" in Alibaba's naming) to a
//! callee service (`dm`, "downstream microservice"). Names (services, instances,
//! interfaces) are interned into a [`SymbolTable`] owned by the [`TraceSet`] that holds
//! the graphs, so a span is a small plain-data struct and parsing allocates no string
//! per field.
//!
//! Invariants kept by every constructor in this crate (and checked by
//! [`crate::fidelity::check_validity`]):
//! - `spans[0]` is the root, the only span with `parent == None`;
//! - spans are sorted by [`RpcId`] (component-wise), so a parent precedes its children;
//! - a span's parent has an rpc id that is a proper prefix of the span's rpc id.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// An interned name: an index into a [`SymbolTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Sym(pub u32);

impl Sym {
    /// The canonical "unknown" name (`UNKNOWN`). Alibaba's `UNKNOWN`, `UNAVAILABLE`,
    /// `NaN`, `(?)` and empty names all map here.
    pub const UNKNOWN: Sym = Sym(0);
    /// The external user (`USER`), the caller of an entry call.
    pub const USER: Sym = Sym(1);
}

/// An append-only string interner. Ids are dense and assigned in first-seen order, so
/// the table is deterministic for a deterministic input order.
#[derive(Clone, Debug)]
pub struct SymbolTable {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Default for SymbolTable {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for SymbolTable {
    fn eq(&self, other: &Self) -> bool {
        self.names == other.names
    }
}

impl SymbolTable {
    /// A table holding only the predefined names [`Sym::UNKNOWN`] and [`Sym::USER`].
    pub fn new() -> Self {
        let mut t = SymbolTable {
            names: Vec::new(),
            index: HashMap::new(),
        };
        t.intern("UNKNOWN");
        t.intern("USER");
        t
    }

    /// The id of `name`, adding it if new.
    pub fn intern(&mut self, name: &str) -> Sym {
        if let Some(&i) = self.index.get(name) {
            return Sym(i);
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), i);
        Sym(i)
    }

    /// The id of `name` if it is already interned.
    pub fn get(&self, name: &str) -> Option<Sym> {
        self.index.get(name).map(|&i| Sym(i))
    }

    /// The name of `sym`; `"UNKNOWN"` for an id out of range (never panics).
    pub fn resolve(&self, sym: Sym) -> &str {
        self.names
            .get(sym.0 as usize)
            .map(String::as_str)
            .unwrap_or("UNKNOWN")
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when the table has no names (a table from [`SymbolTable::new`] always holds
    /// the predefined ones; [`SymbolTable::from_names`] may build an empty one).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// All names in id order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Rebuilds a table from names in id order (as stored on disk). Duplicate names keep
    /// their first id for lookups.
    pub fn from_names(names: Vec<String>) -> Self {
        let mut index = HashMap::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            index.entry(n.clone()).or_insert(i as u32);
        }
        SymbolTable { names, index }
    }
}

/// The kind of a call, in Alibaba's vocabulary plus the OpenTelemetry-only cases.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub enum CallType {
    /// HTTP call.
    Http,
    /// Remote procedure call.
    Rpc,
    /// Message queue (asynchronous).
    Mq,
    /// Database access.
    Db,
    /// Memcached / cache access.
    Mc,
    /// Alibaba v2021 `userDefined`.
    UserDefined,
    /// In-process work (OpenTelemetry `INTERNAL` spans).
    Internal,
    /// Not known (`UNKNOWN` in v2022, or no hint in an OTLP/Jaeger span).
    #[default]
    Unknown,
}

impl CallType {
    /// All variants, in declaration order.
    pub const ALL: [CallType; 8] = [
        CallType::Http,
        CallType::Rpc,
        CallType::Mq,
        CallType::Db,
        CallType::Mc,
        CallType::UserDefined,
        CallType::Internal,
        CallType::Unknown,
    ];

    /// The Alibaba spelling (`http`, `rpc`, `mq`, `db`, `mc`, `userDefined`, `internal`, `UNKNOWN`).
    pub fn as_str(self) -> &'static str {
        match self {
            CallType::Http => "http",
            CallType::Rpc => "rpc",
            CallType::Mq => "mq",
            CallType::Db => "db",
            CallType::Mc => "mc",
            CallType::UserDefined => "userDefined",
            CallType::Internal => "internal",
            CallType::Unknown => "UNKNOWN",
        }
    }

    /// Parses the Alibaba spelling (case-insensitive; `memcached` and `cache` mean `mc`).
    /// Anything else is [`CallType::Unknown`].
    pub fn parse(s: &[u8]) -> CallType {
        match s.len() {
            2 if s.eq_ignore_ascii_case(b"mc") => CallType::Mc,
            2 if s.eq_ignore_ascii_case(b"db") => CallType::Db,
            2 if s.eq_ignore_ascii_case(b"mq") => CallType::Mq,
            3 if s.eq_ignore_ascii_case(b"rpc") => CallType::Rpc,
            4 if s.eq_ignore_ascii_case(b"http") => CallType::Http,
            _ if s.eq_ignore_ascii_case(b"userdefined") => CallType::UserDefined,
            _ if s.eq_ignore_ascii_case(b"memcached") || s.eq_ignore_ascii_case(b"cache") => {
                CallType::Mc
            }
            _ if s.eq_ignore_ascii_case(b"internal") => CallType::Internal,
            _ => CallType::Unknown,
        }
    }

    /// Whether Alibaba logs this call on both sides (caller and callee rows with the
    /// same rpc id): rpc, http and userDefined calls; mc/db/mq are logged once.
    pub fn is_remote_pair(self) -> bool {
        matches!(
            self,
            CallType::Rpc | CallType::Http | CallType::UserDefined | CallType::Unknown
        )
    }
}

impl fmt::Display for CallType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// OpenTelemetry span kind. Alibaba rows are imported as [`SpanKind::Server`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub enum SpanKind {
    /// `SPAN_KIND_UNSPECIFIED` (0).
    #[default]
    Unspecified,
    /// `SPAN_KIND_INTERNAL` (1).
    Internal,
    /// `SPAN_KIND_SERVER` (2).
    Server,
    /// `SPAN_KIND_CLIENT` (3).
    Client,
    /// `SPAN_KIND_PRODUCER` (4).
    Producer,
    /// `SPAN_KIND_CONSUMER` (5).
    Consumer,
}

impl SpanKind {
    /// The OTLP numeric value.
    pub fn as_number(self) -> u8 {
        self as u8
    }

    /// From the OTLP numeric value (out of range: `Unspecified`).
    pub fn from_number(n: u64) -> SpanKind {
        match n {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// From a name: `SPAN_KIND_SERVER`, `SERVER`, `server` ... (unknown: `Unspecified`).
    pub fn from_name(s: &str) -> SpanKind {
        let u = s.trim().to_ascii_uppercase();
        match u.strip_prefix("SPAN_KIND_").unwrap_or(&u) {
            "INTERNAL" => SpanKind::Internal,
            "SERVER" => SpanKind::Server,
            "CLIENT" => SpanKind::Client,
            "PRODUCER" => SpanKind::Producer,
            "CONSUMER" => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }
}

/// Outcome of a call.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub enum Status {
    /// Not recorded (all Alibaba rows).
    #[default]
    Unset,
    /// Succeeded.
    Ok,
    /// Failed.
    Error,
}

/// A hierarchical (dot-decimal) call id in Alibaba's EagleEye style: `0` is the entry
/// call, `0.1`, `0.2` its children, `0.1.1` a grandchild, and so on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct RpcId(pub Vec<u32>);

impl RpcId {
    /// The root id `0`.
    pub fn root() -> RpcId {
        RpcId(vec![0])
    }

    /// Parses `0.1.2` (components must be decimal `u32`; no empty components).
    pub fn parse(s: &[u8]) -> Option<RpcId> {
        let mut v = Vec::with_capacity(8);
        parse_rpc_components(s, &mut v).then_some(RpcId(v))
    }

    /// Number of components (the root `0` has depth 1).
    pub fn depth(&self) -> usize {
        self.0.len()
    }

    /// The id of the direct parent (`None` for a single component).
    pub fn parent(&self) -> Option<RpcId> {
        (self.0.len() > 1).then(|| RpcId(self.0[..self.0.len() - 1].to_vec()))
    }

    /// The child id `self.k`.
    pub fn child(&self, k: u32) -> RpcId {
        let mut v = self.0.clone();
        v.push(k);
        RpcId(v)
    }

    /// True when `self` is a proper prefix of `other`.
    pub fn is_proper_prefix_of(&self, other: &RpcId) -> bool {
        self.0.len() < other.0.len() && other.0[..self.0.len()] == self.0[..]
    }
}

/// Parses dot-separated `u32` components into `out`; false on an empty component, a
/// non-digit or an overflow.
pub(crate) fn parse_rpc_components(s: &[u8], out: &mut Vec<u32>) -> bool {
    if s.is_empty() {
        return false;
    }
    let mut cur: u64 = 0;
    let mut digits = 0usize;
    for &b in s {
        if b == b'.' {
            if digits == 0 {
                return false;
            }
            out.push(cur as u32);
            cur = 0;
            digits = 0;
        } else if b.is_ascii_digit() {
            cur = cur * 10 + u64::from(b - b'0');
            digits += 1;
            if cur > u64::from(u32::MAX) {
                return false;
            }
        } else {
            return false;
        }
    }
    if digits == 0 {
        return false;
    }
    out.push(cur as u32);
    true
}

impl fmt::Display for RpcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// One call: caller `um` calls callee `dm` (interface `interface`) at `start_ns` for
/// `duration_ns`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// The source span id (OTLP/Jaeger), or 0 when the source has none (Alibaba).
    pub span_id: u64,
    /// Hierarchical call id; the graph's spans are sorted by it.
    pub rpc_id: RpcId,
    /// Index of the parent span in [`CallGraph::spans`]; `None` for the root only.
    pub parent: Option<u32>,
    /// Caller service.
    pub um: Sym,
    /// Caller instance (pod / host).
    pub um_instance: Sym,
    /// Callee service.
    pub dm: Sym,
    /// Callee instance (pod / host).
    pub dm_instance: Sym,
    /// Call type.
    pub call_type: CallType,
    /// Interface / operation name.
    pub interface: Sym,
    /// OpenTelemetry span kind.
    pub kind: SpanKind,
    /// Start timestamp, nanoseconds (Alibaba: ms since the trace epoch x 1e6).
    pub start_ns: u64,
    /// Response time, nanoseconds.
    pub duration_ns: u64,
    /// Outcome.
    pub status: Status,
}

impl Span {
    /// A span with every name `UNKNOWN`, zero times and the given rpc id.
    pub fn new(rpc_id: RpcId) -> Span {
        Span {
            span_id: 0,
            rpc_id,
            parent: None,
            um: Sym::UNKNOWN,
            um_instance: Sym::UNKNOWN,
            dm: Sym::UNKNOWN,
            dm_instance: Sym::UNKNOWN,
            call_type: CallType::Unknown,
            interface: Sym::UNKNOWN,
            kind: SpanKind::Unspecified,
            start_ns: 0,
            duration_ns: 0,
            status: Status::Unset,
        }
    }

    /// `start_ns + duration_ns`, saturating.
    pub fn end_ns(&self) -> u64 {
        self.start_ns.saturating_add(self.duration_ns)
    }
}

/// One request's call graph (a tree of spans).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallGraph {
    /// Trace id as found in the source (lower-case hex for OTLP/Jaeger ids).
    pub trace_id: String,
    /// The online service (Alibaba v2022 `service`, e.g. `S_1234`), else the root's callee.
    pub service: Sym,
    /// Spans sorted by rpc id; `spans[0]` is the root.
    pub spans: Vec<Span>,
}

impl CallGraph {
    /// Number of edges (= spans).
    pub fn num_edges(&self) -> usize {
        self.spans.len()
    }

    /// Longest root-to-leaf path counted in edges (a single span has depth 1; empty: 0).
    pub fn max_depth(&self) -> usize {
        let mut depth = vec![0usize; self.spans.len()];
        let mut best = 0;
        for i in 0..self.spans.len() {
            let d = match self.spans[i].parent {
                Some(p) if (p as usize) < i => depth[p as usize] + 1,
                _ => 1,
            };
            depth[i] = d;
            best = best.max(d);
        }
        best
    }

    /// Children indices of every span (index lists in span order).
    pub fn children(&self) -> Vec<Vec<u32>> {
        let mut ch = vec![Vec::new(); self.spans.len()];
        for (i, s) in self.spans.iter().enumerate() {
            if let Some(p) = s.parent
                && (p as usize) < ch.len()
            {
                ch[p as usize].push(i as u32);
            }
        }
        ch
    }

    /// End-to-end latency: latest end minus earliest start, nanoseconds.
    pub fn latency_ns(&self) -> u64 {
        let start = self.spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
        let end = self.spans.iter().map(Span::end_ns).max().unwrap_or(0);
        end.saturating_sub(start)
    }

    /// Sorts spans by rpc id and rewrites parent indices accordingly.
    pub fn sort_by_rpc_id(&mut self) {
        let n = self.spans.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| self.spans[a].rpc_id.cmp(&self.spans[b].rpc_id));
        let mut new_pos = vec![0u32; n];
        for (new, &old) in order.iter().enumerate() {
            new_pos[old] = new as u32;
        }
        let old = std::mem::take(&mut self.spans);
        let mut slots: Vec<Option<Span>> = old.into_iter().map(Some).collect();
        for &o in &order {
            if let Some(mut s) = slots[o].take() {
                s.parent = s.parent.and_then(|p| new_pos.get(p as usize).copied());
                self.spans.push(s);
            }
        }
    }
}

/// A set of call graphs and the symbol table their names refer to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceSet {
    /// Names referred to by the graphs' [`Sym`]s.
    pub symbols: SymbolTable,
    /// The graphs.
    pub graphs: Vec<CallGraph>,
}

impl TraceSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Name of a symbol.
    pub fn name(&self, s: Sym) -> &str {
        self.symbols.resolve(s)
    }

    /// Appends a graph from another set, re-interning its names into this set's table.
    pub fn push_from(&mut self, other_symbols: &SymbolTable, g: &CallGraph) {
        let mut map = |s: Sym| self.symbols.intern(other_symbols.resolve(s));
        let mut g2 = g.clone();
        g2.service = map(g.service);
        for s in &mut g2.spans {
            s.um = map(s.um);
            s.dm = map(s.dm);
            s.um_instance = map(s.um_instance);
            s.dm_instance = map(s.dm_instance);
            s.interface = map(s.interface);
        }
        self.graphs.push(g2);
    }

    /// Total number of spans.
    pub fn num_spans(&self) -> usize {
        self.graphs.iter().map(|g| g.spans.len()).sum()
    }
}
