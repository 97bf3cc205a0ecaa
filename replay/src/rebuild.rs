//! Rebuilding call graphs from rows (Alibaba rpc ids) and from parent pointers
//! (OTLP / Jaeger), with the documented repairs.
//!
//! # Alibaba rows (rpc ids)
//!
//! For one trace (all its rows, from every file), in this order:
//! 1. **Exact duplicates**: a row equal in every field to an earlier row with the same
//!    rpc id is dropped ([`DropReason::ExactDuplicate`]). Names are compared after
//!    normalisation (`NaN`, `(?)`, empty, `UNAVAILABLE` and `UNKNOWN` are the same name).
//! 2. **Caller/callee pairs**: rpc, http and userDefined calls are logged by both sides
//!    with the same rpc id. Two rows with the same id, the same call type and compatible
//!    names (equal, or one side unknown) are merged into one span ("rows merged"). The
//!    row with the larger |rt| is the primary (ties: the earlier row); unknown names are
//!    filled from the other row. v2021 callee rows carry negative rt: |rt| is used.
//! 3. **Duplicate rpc ids**: any further call with an already-used id is, per the
//!    maintainers (clusterdata issue #124: "the right id is a different sibling; rt, um
//!    and dm are correct"), given a fresh sibling id `parent.(k + 1)`, where `k` is the
//!    largest component directly under `parent` in **any** id of the trace at any depth
//!    (so a missing `parent.2` whose child `parent.2.1` is present counts as used, and the
//!    fresh id never adopts an unrelated subtree) or already given to an earlier
//!    duplicate ([`RepairKind::DuplicateRpcIdRenumbered`]). Descendants stay with the
//!    first call. When `k` is `u32::MAX` no fresh id exists: the row is dropped as
//!    [`DropReason::BadRpcId`] (column `rpcid`; an error in strict mode).
//! 4. **Orphans**: a span whose parent id is absent is attached to its nearest present
//!    ancestor ([`RepairKind::OrphanAttached`]); its rpc id is kept.
//! 5. **Roots**: spans with no present ancestor are roots. One root: the trace is
//!    rebuilt (exactly, or repaired if 3 or 4 applied). Several roots: the trace is
//!    discarded ([`DiscardReason::Disconnected`]), as the seed paper's preprocessing does.
//!
//! Zero components (`0.1.0`) and huge components (`...1113852171`) are ordinary
//! numbers; a component above `u32::MAX` makes the row a [`DropReason::BadRpcId`].
//! A trace whose smallest id is not `0` (e.g. starts at `0.1.1`) is fine as long as it
//! has one root. Times: `start_ns = timestamp_ms * 1e6`, `duration_ns = |rt_ms| * 1e6`.
//!
//! # Parent pointers (OTLP, Jaeger)
//!
//! See [`build_from_parents`]: duplicate span ids dropped, cycles broken, orphans and
//! extra roots attached under the main root, missing start times filled, rpc ids
//! assigned by depth-first order of start times.

use std::collections::HashMap;

use crate::error::{DiscardReason, DropReason, RepairKind};
use crate::model::{CallGraph, CallType, RpcId, Span, SpanKind, Status, Sym};

/// One parsed Alibaba call-graph row, before rebuilding. Its rpc id components are
/// `arena[rpc_start..rpc_start + rpc_len]` of the arena passed to [`rebuild_alibaba`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RawRow {
    /// Timestamp, ns.
    pub start_ns: u64,
    /// Response time as logged, ns (negative on v2021 callee rows).
    pub rt_ns: i64,
    /// Start of the rpc id components in the arena.
    pub rpc_start: usize,
    /// Number of rpc id components.
    pub rpc_len: u32,
    /// Index of the trace (reader-internal grouping key).
    pub trace: u32,
    /// Caller.
    pub um: Sym,
    /// Caller instance.
    pub um_instance: Sym,
    /// Callee.
    pub dm: Sym,
    /// Callee instance.
    pub dm_instance: Sym,
    /// Interface.
    pub interface: Sym,
    /// Online service (v2022), else UNKNOWN.
    pub service: Sym,
    /// Call type.
    pub call_type: CallType,
    /// Index of the file the row came from.
    pub file: u32,
    /// Line of the row in its file (1-based; 0 when unknown), for error messages.
    pub line: u64,
}

impl RawRow {
    /// The rpc id components of this row.
    pub fn rpc<'a>(&self, arena: &'a [u32]) -> &'a [u32] {
        arena
            .get(self.rpc_start..self.rpc_start + self.rpc_len as usize)
            .unwrap_or(&[])
    }

    fn same_content(&self, o: &RawRow, arena: &[u32]) -> bool {
        self.start_ns == o.start_ns
            && self.rt_ns == o.rt_ns
            && self.rpc(arena) == o.rpc(arena)
            && self.um == o.um
            && self.um_instance == o.um_instance
            && self.dm == o.dm
            && self.dm_instance == o.dm_instance
            && self.interface == o.interface
            && self.service == o.service
            && self.call_type == o.call_type
    }
}

/// A row dropped while rebuilding, with where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DroppedRow {
    /// Why it was dropped.
    pub reason: DropReason,
    /// Index of the file the row came from ([`RawRow::file`]).
    pub file: u32,
    /// Line of the row in that file ([`RawRow::line`]).
    pub line: u64,
    /// The column at fault (`-` for whole-row problems such as exact duplicates).
    pub column: &'static str,
}

/// What rebuilding one trace did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RebuildOutcome {
    /// The graph, or `None` when discarded.
    pub graph: Option<CallGraph>,
    /// Repairs applied.
    pub repairs: Vec<RepairKind>,
    /// Discard reason, when discarded.
    pub discarded: Option<DiscardReason>,
    /// Rows dropped, in the order they were found.
    pub dropped: Vec<DroppedRow>,
    /// Callee rows merged (file index per merged row).
    pub merged: Vec<u32>,
}

fn compat(a: Sym, b: Sym) -> bool {
    a == b || a == Sym::UNKNOWN || b == Sym::UNKNOWN
}

fn fill(a: Sym, b: Sym) -> Sym {
    if a == Sym::UNKNOWN { b } else { a }
}

/// Rebuilds one Alibaba trace from its rows (in file order; rpc ids in `arena`); see
/// the module docs for the rules.
pub fn rebuild_alibaba(trace_id: &str, rows: &[RawRow], arena: &[u32]) -> RebuildOutcome {
    let mut out = RebuildOutcome::default();
    if let [r] = rows {
        // fast path: a single-row trace is a single-span graph
        let sp = span_of(r, arena);
        let service = if r.service != Sym::UNKNOWN {
            r.service
        } else {
            sp.dm
        };
        out.graph = Some(CallGraph {
            trace_id: trace_id.to_owned(),
            service,
            spans: vec![sp],
        });
        return out;
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| rows[a].rpc(arena).cmp(rows[b].rpc(arena)).then(a.cmp(&b)));
    // (id, span) for spans keeping their id; pending for renumbering
    let mut spans: Vec<Span> = Vec::with_capacity(rows.len());
    let mut services: Vec<Sym> = Vec::with_capacity(rows.len());
    // (span, service, the row it came from)
    let mut pending: Vec<(Span, Sym, &RawRow)> = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && rows[order[j]].rpc(arena) == rows[order[i]].rpc(arena) {
            j += 1;
        }
        let group = &order[i..j];
        if group.len() == 1 {
            // the common case: a unique rpc id
            let r = &rows[group[0]];
            spans.push(span_of(r, arena));
            services.push(r.service);
            i = j;
            continue;
        }
        // 1. exact duplicates
        let mut uniq: Vec<usize> = Vec::with_capacity(group.len());
        for &r in group {
            if uniq.iter().any(|&u| rows[u].same_content(&rows[r], arena)) {
                out.dropped.push(DroppedRow {
                    reason: DropReason::ExactDuplicate,
                    file: rows[r].file,
                    line: rows[r].line,
                    column: "-",
                });
            } else {
                uniq.push(r);
            }
        }
        // 2. pairs
        let mut used = vec![false; uniq.len()];
        let mut first = true;
        for a in 0..uniq.len() {
            if used[a] {
                continue;
            }
            used[a] = true;
            let ra = &rows[uniq[a]];
            let mut partner = None;
            if ra.call_type.is_remote_pair() {
                for b in a + 1..uniq.len() {
                    let rb = &rows[uniq[b]];
                    if !used[b]
                        && rb.call_type == ra.call_type
                        && compat(ra.um, rb.um)
                        && compat(ra.dm, rb.dm)
                    {
                        partner = Some(b);
                        break;
                    }
                }
            }
            let span = match partner {
                Some(b) => {
                    used[b] = true;
                    let rb = &rows[uniq[b]];
                    out.merged.push(rb.file);
                    let (p, s) = if rb.rt_ns.unsigned_abs() > ra.rt_ns.unsigned_abs() {
                        (rb, ra)
                    } else {
                        (ra, rb)
                    };
                    let mut sp = span_of(p, arena);
                    sp.um = fill(p.um, s.um);
                    sp.dm = fill(p.dm, s.dm);
                    sp.um_instance = fill(p.um_instance, s.um_instance);
                    sp.dm_instance = fill(p.dm_instance, s.dm_instance);
                    sp.interface = fill(p.interface, s.interface);
                    (sp, fill(p.service, s.service))
                }
                None => (span_of(ra, arena), ra.service),
            };
            if first {
                spans.push(span.0);
                services.push(span.1);
                first = false;
            } else {
                pending.push((span.0, span.1, ra));
            }
        }
        i = j;
    }
    // 3. renumber duplicates
    if !pending.is_empty() {
        let mut given: HashMap<Vec<u32>, u32> = HashMap::new();
        let mut fresh: Vec<(Span, Sym)> = Vec::with_capacity(pending.len());
        for (mut s, svc, row) in pending {
            // no fresh sibling id: the sibling numbers reach `u32::MAX`, or the id is
            // empty (a row not from a reader: the readers drop empty ids)
            let fresh_id = s.rpc_id.0.split_last().and_then(|(_, p)| {
                let used = match given.get(p) {
                    Some(&k) => k,
                    None => largest_child_in_use(&spans, p),
                };
                Some((p.to_vec(), used.checked_add(1)?))
            });
            let Some((p, k)) = fresh_id else {
                out.dropped.push(DroppedRow {
                    reason: DropReason::BadRpcId,
                    file: row.file,
                    line: row.line,
                    column: "rpcid",
                });
                continue;
            };
            given.insert(p.clone(), k);
            let mut id = p;
            id.push(k);
            s.rpc_id = RpcId(id);
            out.repairs.push(RepairKind::DuplicateRpcIdRenumbered);
            fresh.push((s, svc));
        }
        // the fresh ids are new: sort them in (stable; ids are now unique)
        let mut all: Vec<(Span, Sym)> = spans.into_iter().zip(services).chain(fresh).collect();
        all.sort_by(|a, b| a.0.rpc_id.cmp(&b.0.rpc_id));
        (spans, services) = all.into_iter().unzip();
    }
    // 4. parents
    let mut roots = 0usize;
    for k in 0..spans.len() {
        let (before, rest) = spans.split_at_mut(k);
        let id = &rest[0].rpc_id.0;
        let mut parent = None;
        for l in (1..id.len()).rev() {
            let prefix = &id[..l];
            // the direct parent, when present, is usually the nearest earlier span
            // with a shorter id; a binary search finds it in general
            if let Ok(p) = before.binary_search_by(|s| s.rpc_id.0.as_slice().cmp(prefix)) {
                parent = Some(p as u32);
                if l != id.len() - 1 {
                    out.repairs.push(RepairKind::OrphanAttached);
                }
                break;
            }
        }
        if parent.is_none() {
            roots += 1;
        }
        rest[0].parent = parent;
    }
    if roots != 1 {
        out.discarded = Some(DiscardReason::Disconnected);
        return out;
    }
    let service = if services[0] != Sym::UNKNOWN {
        services[0]
    } else {
        spans[0].dm
    };
    out.graph = Some(CallGraph {
        trace_id: trace_id.to_owned(),
        service,
        spans,
    });
    out
}

/// The largest component `k` such that `prefix.k` is a prefix of (or equal to) some id
/// in `spans` (0 when there is none). `spans` must be sorted by rpc id: the ids starting
/// with `prefix` are then one contiguous run beginning at `prefix`, along which the
/// component after `prefix` is non-decreasing, so the last id of the run holds the
/// answer.
fn largest_child_in_use(spans: &[Span], prefix: &[u32]) -> u32 {
    let end = spans.partition_point(|x| {
        let c = x.rpc_id.0.as_slice();
        c < prefix || c.starts_with(prefix)
    });
    match end.checked_sub(1).map(|i| spans[i].rpc_id.0.as_slice()) {
        Some(c) if c.len() > prefix.len() && c.starts_with(prefix) => c[prefix.len()],
        _ => 0,
    }
}

fn span_of(r: &RawRow, arena: &[u32]) -> Span {
    Span {
        span_id: 0,
        rpc_id: RpcId(r.rpc(arena).to_vec()),
        parent: None,
        um: r.um,
        um_instance: r.um_instance,
        dm: r.dm,
        dm_instance: r.dm_instance,
        call_type: r.call_type,
        interface: r.interface,
        kind: SpanKind::Server,
        start_ns: r.start_ns,
        duration_ns: r.rt_ns.unsigned_abs(),
        status: Status::Unset,
    }
}

/// One span from a parent-pointer format (OTLP, Jaeger), before rebuilding.
#[derive(Clone, Debug, PartialEq)]
pub struct ProtoSpan {
    /// Span id (non-zero).
    pub span_id: u64,
    /// Parent span id, if any.
    pub parent_id: Option<u64>,
    /// The span's own service (becomes `dm`).
    pub service: Sym,
    /// The service's instance (becomes `dm_instance`).
    pub instance: Sym,
    /// Operation name (becomes `interface`).
    pub name: Sym,
    /// Span kind.
    pub kind: SpanKind,
    /// Call type (inferred from attributes by the reader).
    pub call_type: CallType,
    /// Start, ns; `None` when missing.
    pub start_ns: Option<u64>,
    /// Duration, ns.
    pub duration_ns: u64,
    /// Status.
    pub status: Status,
    /// Explicit caller (attribute `alibaba.um`), overriding the parent's service.
    pub um: Option<Sym>,
    /// Explicit caller instance (attribute `alibaba.um_instance`).
    pub um_instance: Option<Sym>,
    /// Explicit rpc id (attribute `alibaba.rpc_id`).
    pub rpc_id: Option<RpcId>,
}

/// Builds one call graph from spans linked by parent ids. Rules:
/// - a span id seen twice: the later span is dropped ([`DropReason::DuplicateSpanId`]);
/// - a span whose parent is itself, or a cycle of parent references: the cycle is broken
///   at its span with the smallest (start, span id), which becomes a root candidate
///   ([`RepairKind::CycleBroken`]);
/// - a span whose parent id is absent (orphan) is a root candidate;
/// - the main root is the earliest (start, span id) span that had no parent reference,
///   else the earliest candidate (an orphan as root: [`RepairKind::OrphanPromotedToRoot`]);
///   every other candidate is attached under it
///   ([`RepairKind::OrphanAttached`] for orphans and broken cycles,
///   [`RepairKind::ExtraRootAttached`] for extra true roots);
/// - a missing start time is set to the parent's start ([`RepairKind::MissingStartFilled`];
///   start time 0 is a valid value and kept);
/// - `um` is the parent's service (`USER` for the root) unless `alibaba.um` is given;
/// - rpc ids are taken from `alibaba.rpc_id` when every span has one, they are unique
///   and consistent with the tree; otherwise assigned: root `0`, children `p.1`, `p.2`, ...
///   in (start, span id) order.
///
/// Returns `None` for an empty input.
pub fn build_from_parents(
    trace_id: &str,
    service_hint: Option<Sym>,
    input: Vec<ProtoSpan>,
) -> (Option<CallGraph>, Vec<RepairKind>, Vec<DropReason>) {
    let mut repairs = Vec::new();
    let mut dropped = Vec::new();
    let mut spans: Vec<ProtoSpan> = Vec::with_capacity(input.len());
    let mut pos: HashMap<u64, usize> = HashMap::new();
    for s in input {
        if pos.contains_key(&s.span_id) {
            dropped.push(DropReason::DuplicateSpanId);
            continue;
        }
        pos.insert(s.span_id, spans.len());
        spans.push(s);
    }
    let n = spans.len();
    if n == 0 {
        return (None, repairs, dropped);
    }
    let key = |s: &ProtoSpan| (s.start_ns.unwrap_or(0), s.span_id);
    // parent index; None = root candidate
    let mut parent: Vec<Option<usize>> = vec![None; n];
    let mut true_root = vec![false; n];
    let mut missing_parent = vec![false; n];
    for (i, s) in spans.iter().enumerate() {
        match s.parent_id {
            None | Some(0) => true_root[i] = true,
            Some(p) => {
                parent[i] = pos.get(&p).copied().filter(|&q| q != i);
                missing_parent[i] = !pos.contains_key(&p);
            }
        }
    }
    // cycles: colour walk
    let mut state = vec![0u8; n]; // 0 new, 1 on stack, 2 done
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut path = Vec::new();
        let mut cur = start;
        loop {
            if state[cur] == 2 {
                break;
            }
            if state[cur] == 1 {
                // cycle: from cur along path
                let at = path.iter().position(|&x| x == cur).unwrap_or(0);
                let cyc = &path[at..];
                if let Some(&b) = cyc.iter().min_by_key(|&&x| key(&spans[x])) {
                    parent[b] = None;
                    repairs.push(RepairKind::CycleBroken);
                }
                break;
            }
            state[cur] = 1;
            path.push(cur);
            match parent[cur] {
                Some(p) => cur = p,
                None => break,
            }
        }
        for &p in &path {
            state[p] = 2;
        }
    }
    let candidates: Vec<usize> = (0..n).filter(|&i| parent[i].is_none()).collect();
    let main = candidates
        .iter()
        .copied()
        .filter(|&i| true_root[i])
        .min_by_key(|&i| key(&spans[i]))
        .or_else(|| candidates.iter().copied().min_by_key(|&i| key(&spans[i])))
        .unwrap_or(0);
    if missing_parent[main] {
        repairs.push(RepairKind::OrphanPromotedToRoot);
    }
    for &c in &candidates {
        if c != main {
            parent[c] = Some(main);
            repairs.push(if true_root[c] {
                RepairKind::ExtraRootAttached
            } else {
                RepairKind::OrphanAttached
            });
        }
    }
    // children lists in (start, id) order; BFS order from main
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, p) in parent.iter().enumerate() {
        if let Some(p) = *p {
            children[p].push(i);
        }
    }
    for c in &mut children {
        c.sort_by_key(|&x| key(&spans[x]));
    }
    let mut order = vec![main];
    let mut k = 0;
    while k < order.len() {
        let x = order[k];
        order.extend(children[x].iter().copied());
        k += 1;
    }
    // fill missing starts top-down
    let mut start = vec![0u64; n];
    for &x in &order {
        start[x] = match spans[x].start_ns {
            Some(v) => v,
            None => {
                repairs.push(RepairKind::MissingStartFilled);
                parent[x].map(|p| start[p]).unwrap_or(0)
            }
        };
    }
    // rpc ids
    let explicit_ok = {
        let all = spans.iter().all(|s| s.rpc_id.is_some());
        let mut seen = std::collections::HashSet::new();
        all && spans.iter().all(|s| seen.insert(s.rpc_id.clone()))
            && (0..n).all(|i| match parent[i] {
                Some(p) => spans[p]
                    .rpc_id
                    .as_ref()
                    .zip(spans[i].rpc_id.as_ref())
                    .is_some_and(|(a, b)| a.is_proper_prefix_of(b)),
                None => true,
            })
    };
    let mut rpc: Vec<RpcId> = vec![RpcId::default(); n];
    for &x in &order {
        if explicit_ok {
            rpc[x] = spans[x].rpc_id.clone().unwrap_or_default();
        } else if x == main {
            rpc[x] = RpcId::root();
        }
        if !explicit_ok {
            for (j, &c) in children[x].iter().enumerate() {
                rpc[c] = rpc[x].child(j as u32 + 1);
            }
        }
    }
    let mut out: Vec<Span> = Vec::with_capacity(n);
    let mut newpos = vec![0u32; n];
    for (k, &x) in order.iter().enumerate() {
        newpos[x] = k as u32;
    }
    for &x in &order {
        let s = &spans[x];
        let (um, umi) = match parent[x] {
            Some(p) => (spans[p].service, spans[p].instance),
            None => (Sym::USER, Sym::USER),
        };
        out.push(Span {
            span_id: s.span_id,
            rpc_id: rpc[x].clone(),
            parent: parent[x].map(|p| newpos[p]),
            um: s.um.unwrap_or(um),
            um_instance: s.um_instance.unwrap_or(umi),
            dm: s.service,
            dm_instance: s.instance,
            call_type: s.call_type,
            interface: s.name,
            kind: s.kind,
            start_ns: start[x],
            duration_ns: s.duration_ns,
            status: s.status,
        });
    }
    let root_service = out[0].dm;
    let mut g = CallGraph {
        trace_id: trace_id.to_owned(),
        service: service_hint.unwrap_or(root_service),
        spans: out,
    };
    g.sort_by_rpc_id();
    (Some(g), repairs, dropped)
}
