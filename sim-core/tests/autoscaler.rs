//! The horizontal pod autoscaler: what CPU it reads (a restarted pod, capped stress) and
//! Kubernetes' scale-down stabilisation (the highest recommendation of the window).

use sim_core::prelude::*;

/// One service `api` on a 64-core node: `replicas` pods requesting `request` millicores,
/// 10 ms of CPU per request, no cold start, 1 s boot; open-loop traffic at `rate`.
fn scenario(
    replicas: u32,
    request: u32,
    limit: u32,
    rate: RateSpec,
    hpa: AutoscalerSpec,
) -> Scenario {
    let mut api = ServiceSpec::simple("api", DurationDist::constant(SimDuration::from_millis(10)));
    api.replicas = replicas;
    api.workers = 64;
    api.resources = Resources {
        cpu_request: Cpu(request),
        cpu_limit: Cpu(limit),
        memory_request: Memory(64 << 20),
        memory_limit: Memory(2 << 30),
    };
    api.warmup_factor = 1.0;
    api.warmup = SimDuration::ZERO;
    api.boot_time = SimDuration::from_secs(1);
    api.autoscaler = Some(hpa);
    // a version that changes nothing but the label: rolling it out restarts every pod
    api.config_versions = vec![ConfigVersion {
        label: "same".into(),
        ..ConfigVersion::default()
    }];
    Scenario {
        name: "hpa".into(),
        description: String::new(),
        duration: SimDuration::from_secs(600),
        scrape_interval: SimDuration::from_secs(1),
        telemetry: TelemetrySpec {
            trace_sample_rate: 0.0,
            ..TelemetrySpec::default()
        },
        cluster: ClusterSpec::default(),
        nodes: vec![NodeSpec {
            name: "n0".into(),
            cpu: Cpu(64_000),
            memory: Memory(256 << 30),
            zone: "a".into(),
            io_bandwidth: Memory(200_000_000),
        }],
        services: vec![api],
        edges: vec![],
        workload: vec![WorkloadSpec {
            entry: "api".into(),
            arrivals: ArrivalSpec::Open { rate },
            mix: vec![],
            client: ClientSpec::default(),
        }],
        slos: vec![],
    }
}

fn hpa(min: u32, max: u32, window_s: u64) -> AutoscalerSpec {
    AutoscalerSpec {
        min_replicas: min,
        max_replicas: max,
        target_cpu: 0.5,
        period: SimDuration::from_secs(15),
        scale_down_stabilization: SimDuration::from_secs(window_s),
    }
}

/// The autoscaler's log lines ("scaled api from X to Y replicas (cpu Z%)").
fn hpa_logs(sim: &Simulation) -> Vec<String> {
    sim.telemetry()
        .logs
        .iter()
        .filter(|l| l.message.contains("horizontal-pod-autoscaler: scaled"))
        .map(|l| l.message.clone())
        .collect()
}

/// A pod that restarts (operator restart, or every pod in a rollout) is averaged over the
/// time since it came back, and so is its CPU: the CPU it used before the restart is not
/// divided by the few seconds since. 2 pods x 50 rps x 10 ms = 50% of a 1-core request, on
/// the 0.5 target: the evaluation at 30 s keeps 2 replicas. (It read 146% and scaled to 6
/// after the restart of one pod at 26 s, and to the maximum after a rollout.)
#[test]
fn a_restarted_pod_is_averaged_over_the_cpu_it_used_since_it_came_back() {
    for rollout in [false, true] {
        let sc = scenario(
            2,
            1000,
            1000,
            RateSpec::Constant { rps: 100.0 },
            hpa(1, 10, 300),
        );
        let mut sim = Simulation::new(&sc, 21).unwrap();
        let api = sim.service_id("api").unwrap();
        sim.run_until(26 * SECONDS);
        assert_eq!(sim.deployment(api).unwrap().0, 2);
        if rollout {
            sim.rollout(api, 1).unwrap();
        } else {
            let pod = sim.pods_of(api)[0].id;
            sim.restart_pod(pod).unwrap();
        }
        sim.run_until(30 * SECONDS + 1);
        assert_eq!(
            sim.pods_of(api).iter().filter(|p| p.ready).count(),
            2,
            "both pods are back"
        );
        assert_eq!(
            sim.deployment(api).unwrap().0,
            2,
            "rollout {rollout}: {:?}",
            hpa_logs(&sim)
        );
    }
}

/// Stress inside a pod counts for the autoscaler only as far as the pod's CPU limit lets it
/// through, as in the scrape: 2000m of stress in a pod limited to 200m, requesting 100m, is
/// 200% of the request (ceil(1 x 2 / 0.5) = 4 replicas), not 2000% (40).
#[test]
fn pod_cpu_stress_counts_for_the_autoscaler_up_to_the_cpu_limit() {
    let sc = scenario(
        1,
        100,
        200,
        RateSpec::Constant { rps: 0.0 },
        hpa(1, 100, 300),
    );
    let mut sim = Simulation::new(&sc, 3).unwrap();
    let api = sim.service_id("api").unwrap();
    let pod = sim.pods_of(api)[0].id;
    sim.set_pod_cpu_stress(pod, 2000).unwrap();
    sim.run_until(15 * SECONDS + 1);
    assert_eq!(sim.deployment(api).unwrap().0, 4, "{:?}", hpa_logs(&sim));
    // the scrape reads the same capped stress: the pod is at its limit
    let scrape = sim.last_scrape().unwrap();
    assert_eq!(scrape.pods[0].cpu_utilization, 1.0);
}

/// Kubernetes' scale-down stabilisation: the autoscaler scales down to the highest
/// recommendation of the last `scale_down_stabilization`, never further.
///
/// 10 pods, 380 rps x 10 ms = 3.8 cores = 38% each against a 50% target: every evaluation
/// up to 150 s recommends ceil(10 x 0.76) = 8. From 150 s, 90 rps recommend 2. The window
/// (300 s) starts at the first evaluation (15 s) with the 10 replicas there were: at 315 s
/// the highest recommendation of the window is 8 (the rule this replaced waited until
/// utilisation had been low for the whole window, then jumped to the latest: 2); the last 8
/// (at 150 s) leaves the window at 450 s, and the autoscaler scales to 2 then.
#[test]
fn scale_down_goes_to_the_highest_recommendation_of_the_window() {
    let rate = RateSpec::Step {
        before: 380.0,
        after: 90.0,
        at: SimDuration::from_secs(150),
    };
    let sc = scenario(10, 1000, 1000, rate, hpa(1, 10, 300));
    let mut sim = Simulation::new(&sc, 8).unwrap();
    let api = sim.service_id("api").unwrap();
    sim.run_until(315 * SECONDS - 1);
    assert_eq!(sim.deployment(api).unwrap().0, 10, "{:?}", hpa_logs(&sim));
    sim.run_until(315 * SECONDS + 1);
    assert_eq!(sim.deployment(api).unwrap().0, 8, "{:?}", hpa_logs(&sim));
    // a copy restored from a snapshot taken inside the window runs on identically
    let mut back = Simulation::restore(&sim.snapshot()).unwrap();
    sim.run_until(450 * SECONDS - 1);
    assert_eq!(sim.deployment(api).unwrap().0, 8, "{:?}", hpa_logs(&sim));
    sim.run_until(450 * SECONDS + 1);
    assert_eq!(sim.deployment(api).unwrap().0, 2, "{:?}", hpa_logs(&sim));
    assert_eq!(
        hpa_logs(&sim)
            .iter()
            .map(|m| m.split(" (cpu").next().unwrap().to_string())
            .collect::<Vec<_>>(),
        [
            "horizontal-pod-autoscaler: scaled api from 10 to 8 replicas",
            "horizontal-pod-autoscaler: scaled api from 8 to 2 replicas"
        ]
    );
    back.run_until(450 * SECONDS + 1);
    assert_eq!(back.snapshot(), sim.snapshot());
}

/// A recommendation higher than the current count inside the window holds a scale-down at
/// the current count, never above it; scale-ups are not held. Without a window, the
/// autoscaler follows the latest recommendation at once.
#[test]
fn the_window_never_scales_up_and_a_zero_window_follows_the_latest() {
    // 10 pods at 380 rps recommend 8; hand-scaled to 5 at 100 s, the window's 8s would be a
    // scale-up: at 105 s (averaging 50.7% since 90 s: tolerated, a recommendation of 5) the
    // autoscaler keeps 5; at 120 s the load says more (5 pods at 76% want ceil(7.6) = 8, a
    // scale-up, which is immediate)
    let sc = scenario(
        10,
        1000,
        1000,
        RateSpec::Constant { rps: 380.0 },
        hpa(1, 10, 300),
    );
    let mut sim = Simulation::new(&sc, 5).unwrap();
    let api = sim.service_id("api").unwrap();
    sim.run_until(100 * SECONDS);
    assert_eq!(sim.deployment(api).unwrap().0, 10);
    sim.scale(api, 5).unwrap();
    sim.run_until(105 * SECONDS + 1);
    assert_eq!(sim.deployment(api).unwrap().0, 5, "{:?}", hpa_logs(&sim));
    sim.run_until(120 * SECONDS + 1);
    assert_eq!(sim.deployment(api).unwrap().0, 8, "{:?}", hpa_logs(&sim));
    // no window: 10 pods at 90 rps go to 2 at the first evaluation
    let sc = scenario(
        10,
        1000,
        1000,
        RateSpec::Constant { rps: 90.0 },
        hpa(1, 10, 0),
    );
    let mut sim = Simulation::new(&sc, 5).unwrap();
    sim.run_until(15 * SECONDS + 1);
    assert_eq!(sim.deployment(api).unwrap().0, 2, "{:?}", hpa_logs(&sim));
}
