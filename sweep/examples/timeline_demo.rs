//! Produces a `blastradius run`-style folder straight from sim-core (metrics.csv, labels.json
//! with one CPU-stress window, actions.jsonl with a restart) and draws its timeline:
//! `cargo run -p sweep --example timeline_demo -- /tmp/run-demo` writes
//! `/tmp/run-demo/timeline.{svg,png}`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/tmp/run-demo".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let scenario = sim_core::topologies::load("online-boutique")?;
    let mut sim = sim_core::Simulation::new(&scenario, 7)?;
    let svc = sim.service_id("cartservice")?;
    let pod = sim.pods_of(svc)[0].id;
    sim.run_until(30_000_000_000);
    sim.set_pod_cpu_stress(pod, 4000)?;
    sim.run_until(75_000_000_000);
    let restarted = sim.pods_of(svc)[0].name.clone();
    sim.restart_pod(pod)?;
    sim.run_until(90_000_000_000);
    sim.set_pod_cpu_stress(pod, 0)?;
    sim.run_until(150_000_000_000);
    std::fs::write(
        dir.join("metrics.csv"),
        sim.telemetry().service_metrics_csv(),
    )?;
    std::fs::write(
        dir.join("labels.json"),
        r#"{"scenario":"online-boutique (demo: cpu-stress on cartservice)","faults":[{"id":"f1","fault_type":"cpu-stress","service":"cartservice","start":30000000000,"end":90000000000}]}"#,
    )?;
    std::fs::write(
        dir.join("actions.jsonl"),
        format!("{{\"time_s\":75.0,\"action\":\"restart_pod {restarted}\"}}\n"),
    )?;
    let t = sweep::plot::load_run(&dir)?;
    for ext in ["svg", "png"] {
        let p = dir.join(format!("timeline.{ext}"));
        sweep::plot::draw_timeline(&t, &p, 10)?;
        println!("wrote {}", p.display());
    }
    Ok(())
}
