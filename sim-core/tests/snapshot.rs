//! Snapshots: `snapshot()` -> bytes -> `restore()` gives the same simulation, and damaged
//! bytes (truncated, flipped, random, or re-checksummed garbage) give an error, never a panic.

use proptest::prelude::*;
use sim_core::prelude::*;
use std::sync::OnceLock;

const SCENARIO: &str = r#"
name = "snap"
duration = "20s"
scrape_interval = "1s"
[telemetry]
trace_sample_rate = 0.1
[cluster]
schedule_delay = "500ms"
initial_backoff = "1s"
[[nodes]]
name = "n0"
cpu = "4"
memory = "8Gi"
[[nodes]]
name = "n1"
cpu = "4"
memory = "8Gi"
[[services]]
name = "api"
replicas = 2
workers = 4
boot_time = "1s"
config_versions = [{ label = "bad", crash_on_start = true }]
[[services.operations]]
name = "get"
cpu = { kind = "exponential", mean = "2ms" }
[[services.operations.stages]]
calls = [{ service = "db" }, { service = "audit", mode = "async" }]
[[services]]
name = "db"
kind = "database"
replicas = 2
workers = 2
boot_time = "1s"
[[services.operations]]
name = "q"
cpu = { kind = "lognormal", median = "3ms", sigma = 0.6 }
io = "8Ki"
[[services]]
name = "audit"
[[services.operations]]
name = "log"
cpu = { kind = "constant", value = "1ms" }
[[edges]]
from = "api"
to = "db"
timeout = "25ms"
retry = { attempts = 3, backoff = "3ms", jitter = 1.0 }
pool_size = 3
[[workload]]
entry = "api"
arrivals = { kind = "open", rate = { kind = "constant", rps = 250.0 } }
client = { timeout = "300ms", retry = { attempts = 2 } }
"#;

fn fingerprint(sim: &Simulation) -> Vec<u8> {
    let mut out = serde_json::to_vec(sim.telemetry()).unwrap();
    out.extend_from_slice(serde_json::to_string(&sim.counters()).unwrap().as_bytes());
    out.extend_from_slice(serde_json::to_string(&sim.pods()).unwrap().as_bytes());
    out.extend_from_slice(&sim.now().to_le_bytes());
    out.extend_from_slice(&sim.snapshot());
    out
}

/// A simulation in the middle of trouble: network loss, CPU stress, an IO fault, a pod booting
/// after a kill, retries and timeouts in flight.
fn troubled() -> Simulation {
    let sc = Scenario::from_toml_str(SCENARIO).unwrap();
    let mut sim = Simulation::new(&sc, 3).unwrap();
    sim.record_requests(true);
    sim.run_until(4 * SECONDS);
    let api = sim.service_id("api").unwrap();
    let db = sim.service_id("db").unwrap();
    let e = sim.topology().edge_id(api, db).unwrap();
    sim.set_edge_network(
        e,
        NetFault {
            delay: MILLIS,
            jitter: 4 * MILLIS,
            loss: 0.15,
        },
    )
    .unwrap();
    let dbp = sim.pods_of(db);
    sim.set_pod_cpu_stress(dbp[0].id, 2500).unwrap();
    sim.set_pod_io_fault(
        dbp[1].id,
        IoFault {
            delay: 10 * MILLIS,
            delay_fraction: 0.5,
            error_fraction: 0.1,
        },
    )
    .unwrap();
    sim.set_pod_memory_leak(dbp[1].id, 1e6).unwrap();
    sim.kill_pod(sim.pods_of(api)[0].id).unwrap();
    sim.add_partition(Partition {
        members: vec![dbp[0].id],
        peers: None,
    })
    .unwrap();
    sim.run_until(6_300 * MILLIS);
    sim
}

fn troubled_bytes() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| troubled().snapshot())
}

/// The same control steps applied to any simulation.
fn continue_run(sim: &mut Simulation) {
    let api = sim.service_id("api").unwrap();
    sim.run_until(9 * SECONDS);
    sim.rollout(api, 1).unwrap();
    sim.run_until(13 * SECONDS);
    sim.rollback(api).unwrap();
    sim.remove_partition(0);
    sim.run_to_end();
}

#[test]
fn snapshot_restore_gives_the_same_simulation() {
    let mut sim = troubled();
    let c = sim.counters();
    assert!(c.retries > 0 && c.timeouts > 0, "{c:?}");
    assert!(
        sim.arena_usage().iter().all(|(in_use, _)| *in_use > 0),
        "{:?}",
        sim.arena_usage()
    );
    let bytes = sim.snapshot();
    assert_eq!(
        bytes,
        troubled_bytes(),
        "snapshots of the same state are byte-identical"
    );
    let mut back = Simulation::restore(&bytes).unwrap();
    // the restored state is the same, down to its own snapshot bytes
    assert_eq!(back.snapshot(), bytes);
    assert_eq!(back.now(), sim.now());
    assert_eq!(back.end(), sim.end());
    assert_eq!(back.seed(), sim.seed());
    assert_eq!(back.counters(), sim.counters());
    assert_eq!(back.pods(), sim.pods());
    assert_eq!(back.scenario(), sim.scenario());
    assert_eq!(back.telemetry(), sim.telemetry());
    assert!(fingerprint(&back) == fingerprint(&sim));
    // and so is its future
    continue_run(&mut sim);
    continue_run(&mut back);
    assert!(sim.counters().retries > c.retries);
    assert!(
        fingerprint(&back) == fingerprint(&sim),
        "restored simulation diverged"
    );
    // a snapshot of a finished run restores as well
    let end = Simulation::restore(&sim.snapshot()).unwrap();
    assert!(fingerprint(&end) == fingerprint(&sim));
}

#[test]
fn restore_rejects_obviously_bad_input() {
    let bytes = troubled_bytes();
    assert!(matches!(
        Simulation::restore(&[]),
        Err(SnapshotError::BadHeader)
    ));
    assert!(matches!(
        Simulation::restore(b"BRSNAP"),
        Err(SnapshotError::BadHeader)
    ));
    let mut other_version = bytes.to_vec();
    other_version[7] ^= 0xFF;
    assert!(matches!(
        Simulation::restore(&other_version),
        Err(SnapshotError::BadHeader)
    ));
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(Simulation::restore(&longer).is_err());
    assert!(Simulation::restore(&bytes[..bytes.len() - 1]).is_err());
    // the error message says what is wrong
    let msg = Simulation::restore(&bytes[..100])
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("corrupt") || msg.contains("snapshot"), "{msg}");
}

/// The snapshot checksum (`sim-core/src/snapshot.rs`), re-implemented to forge snapshots
/// whose payload is damaged but whose checksum is right: these reach the decoder and the
/// structural validation, which must reject them (or accept a state that runs) without panic.
fn checksum(bytes: &[u8]) -> u64 {
    let mut h = 0x243F_6A88_85A3_08D3u64;
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h = sim_core::rng::mix64(h ^ u64::from_le_bytes(w)).wrapping_add(chunk.len() as u64);
    }
    h
}

fn forge(payload: &[u8]) -> Vec<u8> {
    let mut out = b"BRSNAP\x00\x04".to_vec();
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&checksum(payload).to_le_bytes());
    out
}

#[test]
fn forging_helper_matches_the_format() {
    let bytes = troubled_bytes();
    let payload = &bytes[16..bytes.len() - 8];
    assert_eq!(
        forge(payload),
        bytes,
        "the test's copy of the checksum is out of date"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every strict prefix of a snapshot is rejected.
    #[test]
    fn truncated_snapshots_are_errors(cut in 0.0f64..1.0) {
        let bytes = troubled_bytes();
        let len = ((bytes.len() as f64) * cut) as usize;
        prop_assert!(Simulation::restore(&bytes[..len.min(bytes.len() - 1)]).is_err());
    }

    /// Any single bit flip anywhere (header, length, payload, checksum) is rejected.
    #[test]
    fn bit_flips_are_errors(pos in 0.0f64..1.0, bit in 0u8..8) {
        let mut bytes = troubled_bytes().to_vec();
        let i = ((bytes.len() as f64) * pos) as usize % bytes.len();
        bytes[i] ^= 1 << bit;
        prop_assert!(Simulation::restore(&bytes).is_err());
    }

    /// A burst of random bytes written over the snapshot is rejected.
    #[test]
    fn overwritten_ranges_are_errors(pos in 0.0f64..1.0, junk in proptest::collection::vec(any::<u8>(), 1..64)) {
        let mut bytes = troubled_bytes().to_vec();
        let i = ((bytes.len() as f64) * pos) as usize % bytes.len();
        let mut changed = false;
        for (k, b) in junk.iter().enumerate() {
            if let Some(x) = bytes.get_mut(i + k) {
                changed |= *x != *b;
                *x = *b;
            }
        }
        prop_assume!(changed);
        prop_assert!(Simulation::restore(&bytes).is_err());
    }

    /// Random garbage, with and without a valid header, is rejected.
    #[test]
    fn garbage_is_an_error(junk in proptest::collection::vec(any::<u8>(), 0..4096)) {
        prop_assert!(Simulation::restore(&junk).is_err());
        let mut with_magic = b"BRSNAP\x00\x04".to_vec();
        with_magic.extend_from_slice(&(junk.len() as u64).to_le_bytes());
        with_magic.extend_from_slice(&junk);
        with_magic.extend_from_slice(&[0u8; 8]);
        prop_assert!(Simulation::restore(&with_magic).is_err());
        // garbage with a correct checksum reaches the decoder
        prop_assert!(Simulation::restore(&forge(&junk)).is_err());
    }

    /// A truncated payload behind a valid checksum reaches the decoder and is rejected.
    #[test]
    fn forged_truncations_are_errors(cut in 0.0f64..1.0) {
        let bytes = troubled_bytes();
        let payload = &bytes[16..bytes.len() - 8];
        let keep = ((payload.len() as f64) * cut) as usize;
        prop_assert!(Simulation::restore(&forge(&payload[..keep.min(payload.len() - 1)])).is_err());
    }

}

/// Payload damage behind a valid checksum (a forged or mis-written snapshot): `restore` must
/// return an error, or a simulation that runs without panicking — `snapshot.rs` promises "a
/// bad snapshot is an error and never a panic later in the event loop". 3,000 deterministic
/// damages of 1-4 bytes each (a fixed xorshift stream, so the test is reproducible); each
/// restored simulation runs 1 simulated second.
#[test]
fn forged_snapshots_with_a_valid_checksum_never_panic() {
    let bytes = troubled_bytes();
    let base = bytes[16..bytes.len() - 8].to_vec();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut restored, mut rejected) = (0, 0);
    let mut panics = Vec::new();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for case in 0..3000 {
        let mut p = base.clone();
        let i = (next() % p.len() as u64) as usize;
        let n = 1 + (next() % 4) as usize;
        for k in 0..n {
            if let Some(b) = p.get_mut(i + k) {
                *b = next() as u8;
            }
        }
        let forged = forge(&p);
        let outcome = std::panic::catch_unwind(|| match Simulation::restore(&forged) {
            Ok(mut sim) => {
                sim.run_for(SECONDS);
                true
            }
            Err(_) => false,
        });
        match outcome {
            Ok(true) => restored += 1,
            Ok(false) => rejected += 1,
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panics.push(format!(
                    "case {case}: {n} bytes at payload offset {i}: {msg}"
                ));
            }
        }
    }
    std::panic::set_hook(hook);
    eprintln!(
        "forged snapshots: {restored} restored and ran, {rejected} rejected, {} panicked",
        panics.len()
    );
    assert!(rejected > 0 && restored > 0);
    assert!(
        panics.is_empty(),
        "{} forged snapshots panicked, e.g.:\n{}",
        panics.len(),
        panics[..panics.len().min(8)].join("\n")
    );
}
