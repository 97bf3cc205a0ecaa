//! Property tests of the environment reward, as a pure function of state summaries.

use proptest::prelude::*;
use sim_agents::action::ActionKind;
use sim_agents::rewards::*;

fn unit() -> impl Strategy<Value = f64> {
    0.0f64..=1.0
}

fn state() -> impl Strategy<Value = RewardState> {
    (
        unit(),
        0.0f64..20.0,
        unit(),
        unit(),
        unit(),
        unit(),
        unit(),
        unit(),
        unit(),
        0.0f64..=100.0,
        unit(),
    )
        .prop_map(
            |(
                availability,
                p99_ratio,
                hot_cpu,
                mean_cpu,
                max_mem,
                mean_mem,
                up_fraction,
                warming_fraction,
                admitted,
                error_budget,
                cloud_spend,
            )| {
                RewardState {
                    availability,
                    p99_ratio,
                    hot_cpu,
                    mean_cpu,
                    max_mem,
                    mean_mem,
                    up_fraction,
                    warming_fraction,
                    admitted,
                    error_budget,
                    cloud_spend,
                }
            },
        )
}

/// States with arbitrary (out of range, infinite, NaN) fields.
fn wild_state() -> impl Strategy<Value = RewardState> {
    let f = prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-1.0),
        -10.0f64..10.0
    ];
    proptest::collection::vec(f, 11).prop_map(|v| RewardState {
        availability: v[0],
        p99_ratio: v[1],
        hot_cpu: v[2],
        mean_cpu: v[3],
        max_mem: v[4],
        mean_mem: v[5],
        up_fraction: v[6],
        warming_fraction: v[7],
        admitted: v[8],
        error_budget: v[9],
        cloud_spend: v[10],
    })
}

fn kind() -> impl Strategy<Value = ActionKind> {
    prop_oneof![
        Just(ActionKind::NoOp),
        Just(ActionKind::RestartPod),
        Just(ActionKind::RestartNode),
        Just(ActionKind::RestartDeployment),
        Just(ActionKind::Scale),
        Just(ActionKind::Reroute),
        Just(ActionKind::Throttle),
        Just(ActionKind::Rollback),
        Just(ActionKind::Query),
        Just(ActionKind::Invalid),
    ]
}

fn cost() -> impl Strategy<Value = ActionCost> {
    (kind(), any::<bool>(), 0u32..10).prop_map(|(kind, applied, recent_restarts)| ActionCost {
        kind,
        applied,
        recent_restarts,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn components_and_total_are_bounded(p in wild_state(), a in cost(), s in wild_state()) {
        let r = env_reward(&p, &a, &s);
        prop_assert!(r.total.is_finite() && (-5.0..=5.0).contains(&r.total));
        for (i, k) in COMPONENTS.iter().enumerate() {
            let v = r.components[*k];
            prop_assert!(v.is_finite() && v >= BOUNDS[i].0 - 1e-12 && v <= BOUNDS[i].1 + 1e-12, "{} = {}", k, v);
        }
    }

    #[test]
    fn components_are_monotone(s in state(), d in 0.0f64..0.5) {
        let up = |f: &dyn Fn(&mut RewardState)| { let mut x = s; f(&mut x); x.clamped() };
        // topology: worse with CPU, better with nodes up
        prop_assert!(r_topology(&up(&|x| x.hot_cpu += d)) <= r_topology(&s.clamped()) + 1e-12);
        prop_assert!(r_topology(&up(&|x| x.mean_cpu += d)) <= r_topology(&s.clamped()) + 1e-12);
        prop_assert!(r_topology(&up(&|x| x.up_fraction += d)) >= r_topology(&s.clamped()) - 1e-12);
        // shedding: worse with the share shed, and with less error budget
        prop_assert!(r_shedding(&up(&|x| x.admitted -= d)) <= r_shedding(&s.clamped()) + 1e-12);
        prop_assert!(r_shedding(&up(&|x| x.error_budget -= 100.0 * d)) <= r_shedding(&s.clamped()) + 1e-12);
        // memory
        prop_assert!(r_memory(&up(&|x| x.max_mem += d)) <= r_memory(&s.clamped()) + 1e-12);
        prop_assert!(r_memory(&up(&|x| x.mean_mem += d)) <= r_memory(&s.clamped()) + 1e-12);
        // friction
        prop_assert!(r_friction(&up(&|x| x.warming_fraction += d)) <= r_friction(&s.clamped()) + 1e-12);
        // latency
        prop_assert!(r_latency(&up(&|x| x.p99_ratio += 10.0 * d)) <= r_latency(&s.clamped()) + 1e-12);
        // uptime
        prop_assert!(r_uptime(&up(&|x| x.availability += d)) >= r_uptime(&s.clamped()) - 1e-12);
        // efficiency: worse with cloud spend
        let a = ActionCost::noop();
        prop_assert!(r_efficiency(&s, &a, &up(&|x| x.cloud_spend += d)) <= r_efficiency(&s, &a, &s.clamped()) + 1e-12);
    }

    #[test]
    fn no_cliffs(p in state(), a in cost(), s in state(), i in 0usize..11, d in -1e-3f64..1e-3) {
        // a small change of any measured quantity changes the reward a little (Lipschitz 10)
        let mut t = s;
        let f: [&mut f64; 11] = [&mut t.availability, &mut t.p99_ratio, &mut t.hot_cpu, &mut t.mean_cpu, &mut t.max_mem,
            &mut t.mean_mem, &mut t.up_fraction, &mut t.warming_fraction, &mut t.admitted, &mut t.error_budget, &mut t.cloud_spend];
        *f[i] += d;
        let r0 = env_reward(&p, &a, &s).total;
        let r1 = env_reward(&p, &a, &t).total;
        prop_assert!((r0 - r1).abs() <= 10.0 * d.abs() + 1e-12, "{} vs {}", r0, r1);
    }

    #[test]
    fn shedding_everything_never_beats_serving(s in state()) {
        // a fully throttled system (nothing admitted, nothing answered) against the same system
        // serving everyone at up to its objective, with no other difference
        let mut shed = s;
        shed.admitted = 0.0;
        shed.availability = 0.0;
        shed.p99_ratio = 0.0;
        shed.hot_cpu = 0.0;
        shed.mean_cpu = 0.0;
        let mut serve = s;
        serve.admitted = 1.0;
        serve.availability = 1.0;
        serve.p99_ratio = serve.p99_ratio.min(1.0);
        serve.hot_cpu = serve.hot_cpu.min(0.8);
        serve.mean_cpu = serve.mean_cpu.min(0.8);
        let a = ActionCost::noop();
        prop_assert!(env_reward(&s, &a, &serve).total > env_reward(&s, &a, &shed).total);
    }

    #[test]
    fn restart_spam_is_taxed(p in state(), s in state(), n in 2u32..6) {
        let once = ActionCost { kind: ActionKind::RestartPod, applied: true, recent_restarts: 1 };
        let spam = ActionCost { kind: ActionKind::RestartPod, applied: true, recent_restarts: n };
        prop_assert!(env_reward(&p, &spam, &s).components["efficiency"] < env_reward(&p, &once, &s).components["efficiency"]);
    }

    #[test]
    fn text_rewards_are_bounded(t in ".{0,200}") {
        let f = format_reward(&t);
        prop_assert!((-3.0..=3.0).contains(&f));
        let p = sim_agents::grammar::parse_command(&t);
        for exists in [true, false] {
            let v = validity_reward(&p, exists);
            prop_assert!((-2.0..=2.0).contains(&v));
        }
        let tr = triage_reward(p.as_ref().ok(), &sim_agents::Action::NoOp);
        prop_assert!((-0.5..=1.0).contains(&tr));
    }
}

#[test]
fn positive_rewards_are_reachable_and_a_dead_database_is_not_a_cliff() {
    let h = RewardState::healthy();
    assert!(env_reward(&h, &ActionCost::noop(), &h).total > 2.0);
    // database down: nothing answered, but the reward still tells states apart
    let mut dead = h;
    dead.availability = 0.0;
    dead.up_fraction = 0.75;
    dead.p99_ratio = 3.0;
    let mut recovering = dead;
    recovering.availability = 0.4;
    recovering.warming_fraction = 0.2;
    let a = ActionCost::noop();
    assert!(env_reward(&dead, &a, &recovering).total > env_reward(&dead, &a, &dead).total);
    assert!(env_reward(&dead, &a, &dead).total > -5.0);
}
