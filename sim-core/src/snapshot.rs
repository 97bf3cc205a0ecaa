//! Snapshot encoding: `MAGIC | version | len | postcard(scenario TOML, runtime) | checksum`.
//!
//! The scenario travels as TOML text (it is re-validated on restore); the runtime as
//! postcard. A 64-bit checksum over the payload catches truncation and bit flips; a
//! structural validation after decoding catches the rest (ids out of range), so a bad
//! snapshot is an error and never a panic later in the event loop.

use crate::engine::{Caller, Ev, NONE, Runtime};
use crate::model::Topology;
use crate::rng::mix64;
use crate::scenario::{MAX_REPLICAS, Scenario};
use crate::sim::SnapshotError;
use crate::telemetry::Phase;

const MAGIC: &[u8; 8] = b"BRSNAP\x00\x04";

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
    let len = u64::from_le_bytes(
        bytes[8..16]
            .try_into()
            .map_err(|_| SnapshotError::BadHeader)?,
    ) as usize;
    if bytes.len() != len.saturating_add(24) {
        return Err(SnapshotError::Corrupt(format!(
            "expected {} bytes, got {}",
            len.saturating_add(24),
            bytes.len()
        )));
    }
    let payload = &bytes[16..16 + len];
    let sum = u64::from_le_bytes(
        bytes[16 + len..]
            .try_into()
            .map_err(|_| SnapshotError::BadHeader)?,
    );
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
    let check = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("inconsistent snapshot: {what}"))
        }
    };
    // bounds that keep every later addition in range (times < 2^62 ns is 146 years)
    const T: u64 = 1 << 62;
    const N: u32 = 1 << 30;
    check(
        rt.now < T && rt.end < T && rt.next_tick < T && rt.tick_index < T && rt.next_tick > rt.now,
        "clock out of range",
    )?;
    check(
        rt.next_trace < T && rt.next_span < T && rt.next_partition < N,
        "id counters out of range",
    )?;
    let c = &rt.counters;
    check(
        [
            c.events,
            c.visits,
            c.arrivals,
            c.responses,
            c.timeouts,
            c.retries,
            c.oom_kills,
            rt.script_calls_without_edge,
        ]
        .iter()
        .all(|&x| x < T),
        "counters out of range",
    )?;
    check(
        rt.queue.iter().all(|(t, _)| t < T),
        "event time out of range",
    )?;
    check(
        rt.nodes.iter().all(|n| {
            [
                n.cpu,
                n.stress_cpu,
                n.on_cpu,
                n.io_active,
                n.weight,
                n.pod_stress,
                n.restarts,
            ]
            .iter()
            .all(|&x| x < N)
                && n.io_bw > 0
                && n.io_bw < T
                && n.win_cpu_ns < T
                && n.win_io_ns < T
        }),
        "node values out of range",
    )?;
    check(
        rt.node_lost_at.iter().all(|&t| t < T || t == u64::MAX),
        "node times out of range",
    )?;
    for p in &rt.pods {
        check(
            [
                p.cpu_limit,
                p.cpu_request,
                p.workers,
                p.busy,
                p.on_cpu,
                p.in_flight,
                p.outstanding,
                p.restarts,
                p.restarts_window,
                p.crashes_in_row,
                p.stress_cpu,
                p.weight,
                p.version,
            ]
            .iter()
            .all(|&x| x < N)
                && p.cpu_limit > 0,
            "pod counts out of range",
        )?;
        check(
            [
                p.mem_limit,
                p.mem_request,
                p.mem_requests,
                p.mem_baseline,
                p.mem_pressure,
                p.ready_at,
                p.warm_until,
                p.started_at,
                p.last_crash,
                p.leak_since,
                p.win.cpu_ns,
                p.io.delay,
                p.net.delay,
                p.net.jitter,
            ]
            .iter()
            .all(|&x| x < T)
                && p.wrr.unsigned_abs() < T
                && p.leak_per_s.is_finite()
                && p.leak_per_s >= 0.0
                && p.leak_per_s < 1e15
                && p.cpu_factor.is_finite()
                && p.cpu_factor > 0.0
                && (0.0..=1.0).contains(&p.net.loss)
                && (0.0..=1.0).contains(&p.io.delay_fraction)
                && (0.0..=1.0).contains(&p.io.error_fraction),
            "pod values out of range",
        )?;
        check(
            [
                p.win.requests,
                p.win.errors,
                p.win.rejected,
                p.win.timeouts,
                p.win.retries,
            ]
            .iter()
            .all(|&x| x < N),
            "pod window out of range",
        )?;
    }
    for s in &rt.svcs {
        check(
            s.desired <= MAX_REPLICAS
                && s.next_name < N
                && s.version < N
                && s.history.iter().all(|&v| v < N),
            "service values out of range",
        )?;
        check(
            s.tokens.is_finite()
                && s.tokens_at < T
                && s.ingress_limit.is_none_or(|l| l.is_finite() && l >= 0.0),
            "service rate limit out of range",
        )?;
        check(
            s.win_requests < N
                && s.win_errors < N
                && (s.hpa_next < T || s.hpa_next == u64::MAX)
                && s.hpa_last <= rt.now
                // replicas strictly decreasing and at most MAX_REPLICAS bound the length too
                && s.hpa_recs
                    .iter()
                    .all(|&(t, r)| t <= rt.now && r <= MAX_REPLICAS)
                && s.hpa_recs
                    .iter()
                    .zip(s.hpa_recs.iter().skip(1))
                    .all(|(a, b)| a.0 <= b.0 && a.1 > b.1),
            "service window out of range",
        )?;
        check(
            s.hpa
                .as_ref()
                .is_none_or(|a| crate::scenario::validate_autoscaler(a).is_ok()),
            "service autoscaler out of range",
        )?;
    }
    for e in &rt.edges {
        check(
            e.net.delay < T
                && e.net.jitter < T
                && (0.0..=1.0).contains(&e.net.loss)
                && e.pool_override.is_none_or(|x| x > 0)
                && e.timeout_override.is_none_or(|x| x > 0 && x < T)
                && e.retry_override
                    .as_ref()
                    .is_none_or(|r| crate::scenario::validate_retry(r).is_ok()),
            "edge values out of range",
        )?;
    }
    for pool in rt.pools.values() {
        check(pool.in_use < N, "pool values out of range")?;
    }
    for i in &rt.invs.items {
        check(
            i.attempts < N && i.refs < N && i.parent_span < T,
            "invocation counts out of range",
        )?;
    }
    for j in &rt.jobs.items {
        check(
            j.pending < N && j.stage < N && j.span < T && j.mem < T,
            "job counts out of range",
        )?;
    }
    for r in &rt.roots.items {
        check(
            r.live < N && r.attempts < N && r.trace < T && r.response < T && r.last_end < T,
            "root values out of range",
        )?;
        check(
            r.script.iter().all(|n| n.cpu_ns < T),
            "root script values out of range",
        )?;
    }
    for inj in &rt.injections.items {
        check(
            inj.nodes.iter().all(|n| n.cpu_ns < T),
            "injection values out of range",
        )?;
    }
    check(
        rt.nodes.len() == nn && rt.node_lost_at.len() == nn,
        "node count",
    )?;
    check(
        rt.svcs.len() == ns
            && rt.rng_service.len() == ns
            && rt.rng_branch.len() == ns
            && rt.rng_faults.len() == ns,
        "service count",
    )?;
    check(
        rt.edges.len() == ne
            && rt.rng_net.len() == ne
            && rt.rng_retry.len() == ne
            && rt.rng_lb.len() == ne,
        "edge count",
    )?;
    check(
        rt.rng_arrivals.len() == nw && rt.clients.len() == nw,
        "workload count",
    )?;
    check(
        rt.clients.iter().all(|c| {
            [c.completed, c.errors, c.timeouts, c.rate_limited]
                .iter()
                .all(|&x| x < N)
                && c.errors <= c.completed
                && c.timeouts.saturating_add(c.rate_limited) <= c.errors
        }),
        "client window out of range",
    )?;
    for (si, s) in rt.svcs.iter().enumerate() {
        check(
            s.pods.iter().chain(&s.ready).all(|&p| (p as usize) < np),
            "service pod ids",
        )?;
        check(s.ready.windows(2).all(|w| w[0] < w[1]), "ready list order")?;
        // a service lists its own pods; a ready one is placed on a node and not gone
        check(
            s.pods
                .iter()
                .chain(&s.ready)
                .all(|&p| rt.pods[p as usize].service as usize == si),
            "service lists another service's pod",
        )?;
        check(
            s.ready.iter().all(|&p| {
                let pod = &rt.pods[p as usize];
                pod.node != NONE && pod.phase != Phase::Terminated
            }),
            "ready pod without a node",
        )?;
    }
    for p in &rt.pods {
        check(
            (p.service as usize) < ns && (p.node == NONE || (p.node as usize) < nn),
            "pod service/node",
        )?;
        // only a pod not yet scheduled (or deleted before it was) has no node
        check(
            p.node != NONE || matches!(p.phase, Phase::Pending | Phase::Terminated),
            "scheduled pod without a node",
        )?;
        check(
            p.broken.iter().all(|&b| (b as usize) < ns),
            "pod broken deps",
        )?;
        check(
            p.queue.iter().all(|&j| (j as usize) < rt.jobs.items.len()),
            "pod queue",
        )?;
        check(p.workers > 0, "pod workers")?;
    }
    check(rt.pod_free.iter().all(|&p| (p as usize) < np), "free pods")?;
    for slab_ok in [
        rt.jobs.items.len() == rt.jobs.gens.len(),
        rt.invs.items.len() == rt.invs.gens.len(),
        rt.roots.items.len() == rt.roots.gens.len(),
    ] {
        check(slab_ok, "arena lengths")?;
    }
    let (nj, ni, nr) = (
        rt.jobs.items.len(),
        rt.invs.items.len(),
        rt.roots.items.len(),
    );
    check(
        rt.jobs
            .free
            .iter()
            .all(|&x| (x as usize) < nj && !rt.jobs.is_live(x)),
        "job free list",
    )?;
    check(
        rt.invs
            .free
            .iter()
            .all(|&x| (x as usize) < ni && !rt.invs.is_live(x)),
        "inv free list",
    )?;
    check(
        rt.roots
            .free
            .iter()
            .all(|&x| (x as usize) < nr && !rt.roots.is_live(x)),
        "root free list",
    )?;
    for (k, j) in rt.jobs.items.iter().enumerate() {
        check(j.arrived <= rt.now, "job arrival after now")?;
        // a live job runs on a pod placed on a node
        check(
            !rt.jobs.is_live(k as u32)
                || rt.pods.get(j.pod as usize).is_some_and(|p| p.node != NONE),
            "job on a pod without a node",
        )?;
        check(
            (j.pod as usize) < np
                && (j.op as usize) < nops
                && (j.inv as usize) < ni
                && (j.root as usize) < nr,
            "job ids",
        )?;
        check(
            j.script == NONE
                || rt
                    .roots
                    .items
                    .get(j.root as usize)
                    .is_some_and(|r| (j.script as usize) < r.script.len()),
            "job script",
        )?;
    }
    for i in &rt.invs.items {
        check(
            (i.edge as usize) < ne && (i.op as usize) < nops && (i.root as usize) < nr,
            "invocation ids",
        )?;
        check(
            i.caller_pod == NONE || (i.caller_pod as usize) < np,
            "invocation caller pod",
        )?;
        check(
            i.caller_service == NONE || (i.caller_service as usize) < ns,
            "invocation caller service",
        )?;
        check(
            i.target == NONE || (i.target as usize) < np,
            "invocation target",
        )?;
        check(
            i.script == NONE
                || rt
                    .roots
                    .items
                    .get(i.root as usize)
                    .is_some_and(|r| (i.script as usize) < r.script.len()),
            "invocation script",
        )?;
        if let Caller::Job(j, _) = i.caller {
            check((j as usize) < nj, "invocation caller job")?;
        }
    }
    for inj in &rt.injections.items {
        check(
            (inj.workload as usize) < nw && inj.nodes.iter().all(|n| (n.op as usize) < nops),
            "injection ids",
        )?;
    }
    check(
        rt.injections.items.len() == rt.injections.gens.len()
            && rt
                .injections
                .free
                .iter()
                .all(|&x| (x as usize) < rt.injections.items.len() && !rt.injections.is_live(x)),
        "injection arena",
    )?;
    for r in &rt.roots.items {
        check(
            (r.workload as usize) < nw && (r.op as usize) < nops,
            "root ids",
        )?;
        check(
            r.script.iter().all(|n| (n.op as usize) < nops),
            "root script ops",
        )?;
        check(
            r.script.iter().enumerate().all(|(k, n)| {
                n.stages
                    .iter()
                    .flatten()
                    .all(|&c| c as usize > k && (c as usize) < r.script.len())
            }),
            "root script children",
        )?;
        check(r.arrival <= rt.now, "root arrival after now")?;
        check(
            r.user == NONE || (r.user as usize) < rt.users.len(),
            "root user",
        )?;
    }
    check(rt.users.iter().all(|u| (u.workload as usize) < nw), "users")?;
    for (&(e, p), pool) in &rt.pools {
        check((e as usize) < ne && (p as usize) < np, "pool key")?;
        check(
            pool.waiters.iter().all(|&(i, _, _)| (i as usize) < ni),
            "pool waiters",
        )?;
    }
    for part in rt.partitions.values() {
        check(
            part.members
                .iter()
                .chain(part.peers.iter().flatten())
                .all(|&p| (p as usize) < np),
            "partition pods",
        )?;
    }
    for (_, ev) in rt.queue.iter() {
        let ok = match *ev {
            Ev::Arrival(w) => (w as usize) < nw,
            Ev::UserWake(u) => (u as usize) < rt.users.len(),
            Ev::Send(i, _) | Ev::Response(i, _, _) | Ev::Timeout(i, _, _) => (i as usize) < ni,
            Ev::EdgeTimeouts(e) => (e as usize) < ne,
            Ev::Deliver(i, _, p) => (i as usize) < ni && (p as usize) < np,
            Ev::CpuDone(j, _) | Ev::IoDone(j, _) => (j as usize) < nj,
            Ev::PodTimer(p, _) => (p as usize) < np,
            Ev::Inject(k) => (k as usize) < rt.injections.items.len(),
        };
        check(ok, "event ids")?;
    }
    let mut heads = vec![0u32; ne];
    for (_, ev) in rt.queue.iter() {
        if let Ev::EdgeTimeouts(e) = *ev {
            heads[e as usize] += 1;
        }
    }
    for (e, h) in rt.edges.iter().zip(heads) {
        check(
            h == u32::from(e.timeouts_armed) && (e.timeouts.is_empty() || e.timeouts_armed),
            "edge timeout head",
        )?;
        check(
            e.timeouts.iter().all(|t| (t.1 as usize) < ni)
                && e.timeouts
                    .iter()
                    .zip(e.timeouts.iter().skip(1))
                    .all(|(a, b)| a.0 <= b.0),
            "edge timeouts",
        )?;
    }
    Ok(())
}
