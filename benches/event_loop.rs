//! Criterion benchmarks of the engine's hot path: the event queue alone, and the whole event
//! loop on the tandem model (service completions per second).
//!
//! `cargo bench --bench event_loop`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sim_core::prelude::*;
use sim_core::queue::EventQueue;
use std::hint::black_box;

fn tandem(k: usize, lambda: f64, horizon_s: u64) -> Scenario {
    let text = format!(
        r#"
        name = "tandem-bench"
        duration = "{horizon_s}s"
        telemetry = {{ trace_sample_rate = 0.0, retain_scrapes = 1 }}
        {nodes}
        {services}
        [[workload]]
        entry = "s0"
        arrivals = {{ kind = "open", rate = {{ kind = "constant", rps = {lambda} }} }}
        client = {{ timeout = "1000s" }}
        "#,
        nodes = (0..k)
            .map(|i| format!("[[nodes]]\nname = \"n{i}\"\ncpu = \"4\"\nmemory = \"1Ti\"\n"))
            .collect::<String>(),
        services = (0..k)
            .map(|i| {
                let call = if i + 1 < k {
                    format!("[[services.operations.stages]]\ncalls = [{{ service = \"s{}\", mode = \"async\" }}]\n", i + 1)
                } else {
                    String::new()
                };
                format!(
                    "[[services]]\nname = \"s{i}\"\nworkers = 4\nqueue_capacity = 1000000\nwarmup_factor = 1.0\nmemory_per_request = \"0\"\nnode_selector = [\"n{i}\"]\nresources = {{ cpu_request = \"4\", cpu_limit = \"4\", memory_request = \"1Gi\", memory_limit = \"1Ti\" }}\n[[services.operations]]\nname = \"op\"\ncpu = {{ kind = \"exponential\", mean = \"4ms\" }}\n{call}"
                )
            })
            .collect::<String>(),
    );
    let mut sc = Scenario::from_toml_str(&text).expect("bench scenario");
    for i in 0..k.saturating_sub(1) {
        let mut e = EdgeSpec::default_for(
            &format!("s{i}"),
            &format!("s{}", i + 1),
            ServiceKind::Stateless,
        );
        e.latency = DurationDist::constant(SimDuration::ZERO);
        sc.edges.push(e);
    }
    sc
}

fn bench_queue(c: &mut Criterion) {
    let mut g = c.benchmark_group("event_queue");
    for pending in [64usize, 10_000] {
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("pop_push", pending), &pending, |b, &n| {
            let mut q = EventQueue::new();
            let mut x = 0x9E37_79B9u64;
            let next = |x: &mut u64| {
                *x ^= *x << 13;
                *x ^= *x >> 7;
                *x ^= *x << 17;
                *x % 5_000_000
            };
            for i in 0..n {
                q.push(next(&mut x), i as u32);
            }
            b.iter(|| {
                let (t, v) = q.pop().expect("non-empty");
                q.push(t + 1 + next(&mut x), black_box(v));
            });
        });
    }
    g.finish();
}

fn bench_tandem(c: &mut Criterion) {
    let sc = tandem(10, 800.0, 10);
    let mut probe = Simulation::new(&sc, 1).expect("valid");
    probe.run_to_end();
    let visits = probe.counters().visits;
    let mut g = c.benchmark_group("event_loop");
    g.sample_size(10);
    g.throughput(Throughput::Elements(visits));
    g.bench_function("tandem_k10_lambda800_10s", |b| {
        b.iter(|| {
            let mut sim = Simulation::new(&sc, 1).expect("valid");
            sim.run_to_end();
            black_box(sim.counters().visits)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_queue, bench_tandem);
criterion_main!(benches);
