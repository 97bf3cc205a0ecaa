//! The control and fault surfaces take arbitrary input without panicking: random sequences of
//! calls with arbitrary ids and values (out of range, NaN, infinite, huge durations) on a
//! running simulation are either applied or refused with a typed error, the simulation keeps
//! running, and the same sequence gives the same bytes (determinism through every surface).

use proptest::prelude::*;
use sim_core::prelude::*;

/// One control call with raw arguments (ids are taken modulo nothing: out-of-range ids must be
/// refused, not panic).
#[derive(Clone, Debug)]
enum Op {
    KillPod(u32),
    RestartPod(u32),
    KillNode(u32),
    RestoreNode(u32),
    RestartNode(u32),
    Scale(u32, u32),
    PodWeight(u32, u32),
    NodeWeight(u32, u32),
    RateLimit(u32, Option<f64>),
    Rollout(u32, u32),
    Rollback(u32),
    PodStress(u32, u32),
    NodeStress(u32, u32),
    MemPressure(u32, u64),
    MemLeak(u32, f64),
    Io(u32, u64, f64, f64),
    PodNet(u32, u64, u64, f64),
    EdgeNet(u32, u64, u64, f64),
    Pool(u32, Option<u32>),
    Partition(Vec<u32>, Option<Vec<u32>>),
    Heal(u32),
    Timeout(u32, Option<u64>),
    Retry(u32, u32, u64, f64, f64),
    Autoscaler(u32, u32, u32, f64, u64),
    NoAutoscaler(u32),
}

fn id() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..12, any::<u32>()]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        -10.0f64..1e4,
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-0.0),
        any::<f64>()
    ]
}

fn dur() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..5_000_000_000, any::<u64>()]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        id().prop_map(Op::KillPod),
        id().prop_map(Op::RestartPod),
        id().prop_map(Op::KillNode),
        id().prop_map(Op::RestoreNode),
        id().prop_map(Op::RestartNode),
        (id(), prop_oneof![0u32..8, any::<u32>()]).prop_map(|(s, n)| Op::Scale(s, n)),
        (id(), any::<u32>()).prop_map(|(p, w)| Op::PodWeight(p, w)),
        (id(), any::<u32>()).prop_map(|(p, w)| Op::NodeWeight(p, w)),
        (id(), proptest::option::of(float())).prop_map(|(s, r)| Op::RateLimit(s, r)),
        (id(), id()).prop_map(|(s, v)| Op::Rollout(s, v)),
        id().prop_map(Op::Rollback),
        (id(), any::<u32>()).prop_map(|(p, m)| Op::PodStress(p, m)),
        (id(), any::<u32>()).prop_map(|(p, m)| Op::NodeStress(p, m)),
        (id(), any::<u64>()).prop_map(|(p, b)| Op::MemPressure(p, b)),
        (id(), float()).prop_map(|(p, r)| Op::MemLeak(p, r)),
        (id(), dur(), float(), float()).prop_map(|(p, d, a, b)| Op::Io(p, d, a, b)),
        (id(), dur(), dur(), float()).prop_map(|(p, d, j, l)| Op::PodNet(p, d, j, l)),
        (id(), dur(), dur(), float()).prop_map(|(e, d, j, l)| Op::EdgeNet(e, d, j, l)),
        (id(), proptest::option::of(any::<u32>())).prop_map(|(e, s)| Op::Pool(e, s)),
        (
            proptest::collection::vec(id(), 0..4),
            proptest::option::of(proptest::collection::vec(id(), 0..4))
        )
            .prop_map(|(m, p)| Op::Partition(m, p)),
        id().prop_map(Op::Heal),
        (id(), proptest::option::of(dur())).prop_map(|(e, t)| Op::Timeout(e, t)),
        (id(), any::<u32>(), dur(), float(), float())
            .prop_map(|(e, a, b, m, j)| Op::Retry(e, a, b, m, j)),
        (id(), any::<u32>(), any::<u32>(), float(), dur())
            .prop_map(|(s, lo, hi, t, p)| Op::Autoscaler(s, lo, hi, t, p)),
        id().prop_map(Op::NoAutoscaler),
    ]
}

/// Applies one call; the result is ignored (refusals are fine), panics are not.
fn apply(sim: &mut Simulation, op: &Op) {
    let _ = match op.clone() {
        Op::KillPod(p) => sim.kill_pod(p),
        Op::RestartPod(p) => sim.restart_pod(p),
        Op::KillNode(n) => sim.kill_node(n),
        Op::RestoreNode(n) => sim.restore_node(n),
        Op::RestartNode(n) => sim.restart_node(n),
        Op::Scale(s, n) => sim.scale(s, n),
        // accepted settings read back (weights are capped at 10,000)
        Op::PodWeight(p, w) => sim
            .set_pod_weight(p, w)
            .map(|()| assert_eq!(sim.pod_weight(p), Ok(w.min(10_000)))),
        Op::NodeWeight(n, w) => sim
            .set_node_weight(n, w)
            .map(|()| assert_eq!(sim.node_weight(n), Ok(w.min(10_000)))),
        Op::RateLimit(s, r) => sim.set_ingress_rate_limit(s, r),
        Op::Rollout(s, v) => sim.rollout(s, v),
        Op::Rollback(s) => sim.rollback(s).map(|_| ()),
        Op::PodStress(p, m) => sim.set_pod_cpu_stress(p, m),
        Op::NodeStress(n, m) => sim.set_node_cpu_stress(n, m),
        Op::MemPressure(p, b) => sim.set_pod_memory_pressure(p, b),
        Op::MemLeak(p, r) => sim.set_pod_memory_leak(p, r),
        Op::Io(p, delay, delay_fraction, error_fraction) => sim.set_pod_io_fault(
            p,
            IoFault {
                delay,
                delay_fraction,
                error_fraction,
            },
        ),
        Op::PodNet(p, delay, jitter, loss) => sim.set_pod_network(
            p,
            NetFault {
                delay,
                jitter,
                loss,
            },
        ),
        Op::EdgeNet(e, delay, jitter, loss) => sim.set_edge_network(
            e,
            NetFault {
                delay,
                jitter,
                loss,
            },
        ),
        Op::Pool(e, s) => sim.set_pool_size(e, s).map(|()| {
            if s.is_some() {
                assert_eq!(sim.pool_size(e), Ok(s));
            }
        }),
        Op::Partition(members, peers) => {
            sim.add_partition(Partition { members, peers }).map(|_| ())
        }
        Op::Heal(k) => {
            sim.remove_partition(k);
            Ok(())
        }
        Op::Timeout(e, t) => sim.set_edge_timeout(e, t.map(SimDuration)),
        Op::Retry(e, attempts, backoff, multiplier, jitter) => sim.set_edge_retry(
            e,
            Some(RetrySpec {
                attempts,
                backoff: SimDuration(backoff),
                multiplier,
                max_backoff: SimDuration(backoff.saturating_mul(4)),
                jitter,
            }),
        ),
        Op::Autoscaler(s, min_replicas, max_replicas, target_cpu, period) => sim.set_autoscaler(
            s,
            Some(AutoscalerSpec {
                min_replicas,
                max_replicas,
                target_cpu,
                period: SimDuration(period),
                scale_down_stabilization: SimDuration(period),
            }),
        ),
        Op::NoAutoscaler(s) => sim.set_autoscaler(s, None),
    };
}

fn run(ops: &[(Op, u64)]) -> Vec<u8> {
    let sc = sim_core::topologies::load("simple-micro").unwrap();
    let mut sim = Simulation::new(&sc, 11).unwrap();
    sim.run_until(2 * SECONDS);
    for (op, gap_ms) in ops {
        apply(&mut sim, op);
        sim.run_for(gap_ms * MILLIS);
    }
    sim.run_for(3 * SECONDS);
    let snap = sim.snapshot();
    // a snapshot of whatever state the calls produced restores
    let back = Simulation::restore(&snap).expect("a snapshot restores");
    assert_eq!(back.snapshot(), snap);
    snap
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn arbitrary_control_calls_never_panic_and_are_deterministic(
        ops in proptest::collection::vec((op(), 0u64..400), 1..14)
    ) {
        let a = run(&ops);
        let b = run(&ops);
        prop_assert!(a == b, "the same calls gave different snapshots");
    }
}

#[test]
fn weights_and_pool_sizes_read_back() {
    let sc = sim_core::topologies::load("simple-micro").unwrap();
    let mut sim = Simulation::new(&sc, 3).unwrap();
    let pod = sim.pods()[0].id;
    assert_eq!(sim.pod_weight(pod), Ok(100));
    assert_eq!(sim.node_weight(0), Ok(100));
    sim.set_pod_weight(pod, 0).unwrap();
    sim.set_node_weight(0, 250).unwrap();
    assert_eq!(sim.pod_weight(pod), Ok(0));
    assert_eq!(sim.node_weight(0), Ok(250));
    assert!(sim.pod_weight(u32::MAX).is_err());
    assert!(sim.node_weight(u32::MAX).is_err());
    let scenario_pool = sim.pool_size(0).unwrap();
    sim.set_pool_size(0, Some(3)).unwrap();
    assert_eq!(sim.pool_size(0), Ok(Some(3)));
    sim.set_pool_size(0, None).unwrap();
    assert_eq!(sim.pool_size(0), Ok(scenario_pool));
    assert!(sim.pool_size(u32::MAX).is_err());
}
