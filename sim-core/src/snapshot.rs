//! Snapshot encoding: `MAGIC | version | len | postcard(scenario TOML, runtime) | checksum`.
//!
//! The scenario travels as TOML text (it is re-validated on restore); the runtime as
//! postcard. A 64-bit checksum over the payload catches truncation and bit flips; a
//! structural validation after decoding catches the rest (ids out of range), so a bad
//! snapshot is an error and never a panic later in the event loop.

use crate::engine::{Caller, Ev, NONE, Runtime};
use crate::model::Topology;
use crate::rng::mix64;
use crate::scenario::Scenario;
use crate::sim::SnapshotError;

const MAGIC: &[u8; 8] = b"BRSNAP\x00\x01";

fn checksum(bytes: &[u8]) -> u64 {
    let mut h = 0x243F_6A88_85A3_08D3u64;
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h = mix64(h ^ u64::from_le_bytes(w)).wrapping_add(chunk.len() as u64);
    }
    h
}

pub(crate) fn encode(scenario: &Scenario, rt: &Runtime) -> Vec<u8> {
    let payload = postcard::to_stdvec(&(scenario.to_toml_string(), rt)).unwrap_or_default();
    let mut out = Vec::with_capacity(payload.len() + 24);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&checksum(&payload).to_le_bytes());
    out
}

pub(crate) fn decode(bytes: &[u8]) -> Result<(Scenario, Runtime), SnapshotError> {
    if bytes.len() < 24 || &bytes[..8] != MAGIC {
        return Err(SnapshotError::BadHeader);
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().map_err(|_| SnapshotError::BadHeader)?) as usize;
    if bytes.len() != len.saturating_add(24) {
        return Err(SnapshotError::Corrupt(format!("expected {} bytes, got {}", len.saturating_add(24), bytes.len())));
    }
    let payload = &bytes[16..16 + len];
    let sum = u64::from_le_bytes(bytes[16 + len..].try_into().map_err(|_| SnapshotError::BadHeader)?);
    if sum != checksum(payload) {
        return Err(SnapshotError::Corrupt("checksum mismatch".into()));
    }
    let (toml_text, rt): (String, Runtime) =
        postcard::from_bytes(payload).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
    let scenario = Scenario::from_toml_str(&toml_text)?;
    Ok((scenario, rt))
}

/// Checks every id the event loop will index with.
pub(crate) fn validate(topo: &Topology, rt: &Runtime) -> Result<(), String> {
    let ns = topo.num_services();
    let nn = topo.num_nodes();
    let ne = topo.edges.len();
    let nw = topo.scenario.workload.len();
    let np = rt.pods.len();
    let nops = topo.ops.len();
    let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(format!("inconsistent snapshot: {what}")) };
    check(rt.nodes.len() == nn && rt.node_lost_at.len() == nn, "node count")?;
    check(rt.svcs.len() == ns && rt.rng_service.len() == ns && rt.rng_branch.len() == ns && rt.rng_faults.len() == ns, "service count")?;
    check(rt.edges.len() == ne && rt.rng_net.len() == ne && rt.rng_retry.len() == ne && rt.rng_lb.len() == ne, "edge count")?;
    check(rt.rng_arrivals.len() == nw, "workload count")?;
    for s in &rt.svcs {
        check(s.pods.iter().chain(&s.ready).all(|&p| (p as usize) < np), "service pod ids")?;
        check(s.ready.windows(2).all(|w| w[0] < w[1]), "ready list order")?;
    }
    for p in &rt.pods {
        check((p.service as usize) < ns && (p.node == NONE || (p.node as usize) < nn), "pod service/node")?;
        check(p.broken.iter().all(|&b| (b as usize) < ns), "pod broken deps")?;
        check(p.queue.iter().all(|&j| (j as usize) < rt.jobs.items.len()), "pod queue")?;
        check(p.workers > 0, "pod workers")?;
    }
    check(rt.pod_free.iter().all(|&p| (p as usize) < np), "free pods")?;
    for slab_ok in [
        rt.jobs.items.len() == rt.jobs.gens.len() && rt.jobs.items.len() == rt.jobs.live.len(),
        rt.invs.items.len() == rt.invs.gens.len() && rt.invs.items.len() == rt.invs.live.len(),
        rt.roots.items.len() == rt.roots.gens.len() && rt.roots.items.len() == rt.roots.live.len(),
    ] {
        check(slab_ok, "arena lengths")?;
    }
    let (nj, ni, nr) = (rt.jobs.items.len(), rt.invs.items.len(), rt.roots.items.len());
    check(rt.jobs.free.iter().all(|&x| (x as usize) < nj), "job free list")?;
    check(rt.invs.free.iter().all(|&x| (x as usize) < ni), "inv free list")?;
    check(rt.roots.free.iter().all(|&x| (x as usize) < nr), "root free list")?;
    for j in &rt.jobs.items {
        check((j.pod as usize) < np && (j.op as usize) < nops && (j.inv as usize) < ni && (j.root as usize) < nr, "job ids")?;
        check(j.script == NONE || rt.roots.items.get(j.root as usize).is_some_and(|r| (j.script as usize) < r.script.len()), "job script")?;
    }
    for i in &rt.invs.items {
        check((i.edge as usize) < ne && (i.op as usize) < nops && (i.root as usize) < nr, "invocation ids")?;
        check(i.caller_pod == NONE || (i.caller_pod as usize) < np, "invocation caller pod")?;
        check(i.target == NONE || (i.target as usize) < np, "invocation target")?;
        if let Caller::Job(j, _) = i.caller {
            check((j as usize) < nj, "invocation caller job")?;
        }
    }
    for inj in &rt.injections.items {
        check((inj.workload as usize) < nw && inj.nodes.iter().all(|n| (n.op as usize) < nops), "injection ids")?;
    }
    check(rt.injections.items.len() == rt.injections.gens.len() && rt.injections.items.len() == rt.injections.live.len(), "injection arena")?;
    for r in &rt.roots.items {
        check((r.workload as usize) < nw && (r.op as usize) < nops, "root ids")?;
        check(r.script.iter().all(|n| (n.op as usize) < nops), "root script ops")?;
        check(r.user == NONE || (r.user as usize) < rt.users.len(), "root user")?;
    }
    check(rt.users.iter().all(|u| (u.workload as usize) < nw), "users")?;
    for (&(e, p), pool) in &rt.pools {
        check((e as usize) < ne && (p as usize) < np, "pool key")?;
        check(pool.waiters.iter().all(|&(i, _)| (i as usize) < ni), "pool waiters")?;
    }
    for part in rt.partitions.values() {
        check(part.members.iter().chain(part.peers.iter().flatten()).all(|&p| (p as usize) < np), "partition pods")?;
    }
    for (_, ev) in rt.queue.iter() {
        let ok = match *ev {
            Ev::Arrival(w) => (w as usize) < nw,
            Ev::UserWake(u) => (u as usize) < rt.users.len(),
            Ev::Send(i, _) | Ev::Response(i, _, _) | Ev::Timeout(i, _) => (i as usize) < ni,
            Ev::Deliver(i, _, p) => (i as usize) < ni && (p as usize) < np,
            Ev::CpuDone(j, _) | Ev::IoDone(j, _) => (j as usize) < nj,
            Ev::PodTimer(p, _) => (p as usize) < np,
            Ev::Inject(k) => (k as usize) < rt.injections.items.len(),
        };
        check(ok, "event ids")?;
    }
    Ok(())
}
