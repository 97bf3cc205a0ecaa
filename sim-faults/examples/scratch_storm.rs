use sim_faults::{Episode, FaultScenario};
fn main() {
    let name = std::env::args().nth(1).unwrap_or("retry-storm".into());
    let sc = FaultScenario::load(&name).unwrap();
    let mut ep = Episode::new(&sc, 1).unwrap();
    let mut cf = Episode::without_faults(&sc, 1).unwrap();
    ep.run_to_end();
    cf.run_to_end();
    let entry = sc.base.workload[0].entry.clone();
    let sc_list: Vec<_> = ep.sim().telemetry().scrapes.iter().collect();
    let cfl: Vec<_> = cf.sim().telemetry().scrapes.iter().collect();
    for chunk in 0..sc_list.len() / 10 {
        let mut g = 0.0; let mut gc = 0.0; let mut p99: f64 = 0.0; let mut cpu = 0.0;
        for k in chunk * 10..chunk * 10 + 10 {
            let m = sc_list[k].services.iter().find(|m| m.name == entry).unwrap();
            let c = cfl[k].services.iter().find(|m| m.name == entry).unwrap();
            g += m.rps * (1.0 - m.error_rate) / 10.0; gc += c.rps * (1.0 - c.error_rate) / 10.0; p99 = p99.max(m.p99_ms);
            cpu += sc_list[k].services.iter().map(|s| format!("{}", 0)).count() as f64 * 0.0;
        }
        let svc: Vec<String> = sc_list[chunk*10+9].services.iter().map(|s| format!("{} {:.0}rps e{:.2} cpu{:.2} q{}", s.name, s.rps, s.error_rate, s.cpu_utilization, s.queue_depth)).collect();
        println!("t={:>4}s goodput {:>6.1} (healthy {:>6.1}) p99max {:>7.1} | {}", chunk * 10 + 10, g, gc, p99, svc.join(" | "));
        let _ = cpu;
    }
    let gt = ep.ground_truth(&cf);
    println!("{}", serde_json::to_string(&(&gt.root_cause_services, &gt.root_cause_pods, &gt.blast_radius, &gt.first_symptom, &gt.first_symptom_slo, &gt.propagation)).unwrap());
    for f in ep.injected() { println!("{} {} {:?} {:?} {:?}-{:?} {}", f.id, f.fault_type, f.service, f.pods, f.start, f.end, f.note); }
    let v = sim_faults::remediation_verdict(&ep, &cf, sc.faults.iter().map(|f| f.start.0 + f.duration.map(|d| d.0).unwrap_or(0)).max().unwrap_or(0));
    println!("{:?}", v);
}
