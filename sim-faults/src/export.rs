//! Episode outputs (`labels.json`, metrics CSV, logs JSON lines, OTLP spans) and datasets in
//! RCAEval's layout for root-cause-analysis methods.
//!
//! RCAEval layout: `<out>/<service>_<fault>/<run>/` with
//! - `data.csv` (RE1): `time` (Unix seconds) and `<service>_<metric>` columns, metrics `cpu`,
//!   `mem`, `latency-50`, `latency-90`, `workload`, `error`;
//! - `simple_metrics.csv` (RE2, the same columns), `metrics.csv` (RE2, wider: also per-pod
//!   `<pod>_container-cpu` / `_container-mem` and per-node `<node>_node-cpu` / `_node-mem`);
//! - `logs.csv` (`time,timestamp,container_name,message,level,req_path,error`, `timestamp` in ns),
//! - `traces.csv` (`time,traceID,spanID,serviceName,methodName,operationName,startTimeMillis,startTime,duration,statusCode,parentSpanID`, `startTime` and `duration` in us),
//! - `inject_time.txt` (one integer Unix timestamp: the fault start),
//!
//! at 1 s resolution over the window `[inject - pre, inject + post]`, both ends included:
//! `pre + post + 1` metric rows (RCAEval: 720 s each side, 1441 rows, the injection exactly
//! centred). The simulation runs from 0 to the window's end, one scrape interval longer than the
//! window (scrapes come at the end of each interval, so the first is at 1 s: the window's first
//! row); logs and traces cover the same run. Simulated time 0 is [`crate::otlp::EPOCH_UNIX_S`].

use crate::episode::{Episode, meaningful_services};
use crate::error::FaultError;
use crate::fault::FaultSpec;
use crate::otlp::{EPOCH_UNIX_S, spans_to_otlp};
use crate::scenario::{AgentSettings, FaultScenario, RemediationSpec};
use sim_core::rng::{StreamKind, below, stream};
use sim_core::time::{SECONDS, SimDuration};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn write(path: &Path, text: &str) -> Result<(), FaultError> {
    std::fs::write(path, text).map_err(|source| FaultError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn mkdir(path: &Path) -> Result<(), FaultError> {
    std::fs::create_dir_all(path).map_err(|source| FaultError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Writes the outputs of a finished episode to `dir`: `labels.json` (the ground truth against
/// `counterfactual`), `metrics.csv` (service metrics), `client_metrics.csv` (per workload, as the
/// clients saw it: `Telemetry::client_metrics_csv`), `pod_metrics.csv`, `logs.jsonl` and
/// `spans.otlp.json`.
pub fn write_episode(ep: &Episode, counterfactual: &Episode, dir: &Path) -> Result<(), FaultError> {
    mkdir(dir)?;
    let gt = ep.ground_truth(counterfactual);
    let t = ep.sim().telemetry();
    write(
        &dir.join("labels.json"),
        &serde_json::to_string_pretty(&gt).unwrap_or_default(),
    )?;
    write(&dir.join("metrics.csv"), &t.service_metrics_csv())?;
    write(&dir.join("client_metrics.csv"), &t.client_metrics_csv())?;
    write(&dir.join("pod_metrics.csv"), &t.pod_metrics_csv())?;
    write(&dir.join("logs.jsonl"), &t.logs_jsonl())?;
    write(
        &dir.join("spans.otlp.json"),
        &serde_json::to_string(&spans_to_otlp(ep.sim())).unwrap_or_default(),
    )?;
    Ok(())
}

/// RCAEval's fault names and the fault types they stand for.
pub const RCAEVAL_FAULTS: [(&str, &str); 5] = [
    ("cpu", "cpu-stress"),
    ("mem", "memory-stress"),
    ("disk", "disk-io"),
    ("delay", "network-delay"),
    ("loss", "network-loss"),
];

/// Options of an RCAEval export.
#[derive(Clone, Debug, PartialEq)]
pub struct RcaEvalOptions {
    /// A built-in topology name (`online-boutique`, ...).
    pub system: String,
    /// RCAEval fault names (`cpu`, `mem`, `disk`, `delay`, `loss`).
    pub faults: Vec<String>,
    /// Runs per fault.
    pub runs: u32,
    /// Seed; each case derives its own.
    pub seed: u64,
    /// Output directory.
    pub out: PathBuf,
    /// Seconds before the injection (RCAEval: 720): the first metric row is at
    /// `inject_time - pre_s`.
    pub pre_s: u64,
    /// Seconds after the injection (RCAEval: 720): the last metric row is at
    /// `inject_time + post_s`.
    pub post_s: u64,
    /// Span sampling rate of the exported runs.
    pub trace_sample_rate: f64,
}

impl RcaEvalOptions {
    /// RCAEval's defaults: 720 s each side of the injection, 5% of traces.
    pub fn new(system: &str, faults: &[&str], runs: u32, seed: u64, out: &Path) -> RcaEvalOptions {
        RcaEvalOptions {
            system: system.to_string(),
            faults: faults.iter().map(|s| s.to_string()).collect(),
            runs,
            seed,
            out: out.to_path_buf(),
            pre_s: 720,
            post_s: 720,
            trace_sample_rate: 0.05,
        }
    }
}

/// One exported case.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ExportedCase {
    /// Directory of the case.
    pub dir: PathBuf,
    /// Root-cause service.
    pub service: String,
    /// RCAEval fault name.
    pub fault: String,
    /// Run number (1-based, per `<service>_<fault>`).
    pub run: u32,
    /// Unix time of the injection.
    pub inject_time: u64,
}

/// The simulated time (s) of an RCAEval export's first metric row: the first scrape, one
/// interval (1 s) after the start. The fault starts `pre_s` later.
pub const RCAEVAL_WINDOW_START_S: u64 = 1;

/// Simulates and writes a suite of cases in RCAEval's layout. The root-cause service of each
/// case is drawn from the seed among the services where the fault is meaningful. Each case's
/// metrics have one row per second over `[inject_time - pre_s, inject_time + post_s]`, both
/// ends included (`pre_s + post_s + 1` rows).
pub fn export_rcaeval(opts: &RcaEvalOptions) -> Result<Vec<ExportedCase>, FaultError> {
    if opts.runs == 0 || opts.faults.is_empty() {
        return Err(FaultError::Usage(
            "nothing to export: need --runs >= 1 and at least one fault".into(),
        ));
    }
    if opts.pre_s == 0 || opts.post_s == 0 || opts.pre_s.saturating_add(opts.post_s) > 48 * 3600 {
        return Err(FaultError::Usage(
            "the window must be positive on both sides and at most 48 h".into(),
        ));
    }
    let origin = format!("rcaeval export of {}", opts.system);
    let mut base =
        sim_core::topologies::load(&opts.system).map_err(|source| FaultError::Scenario {
            origin: origin.clone(),
            source,
        })?;
    // scrapes at 1 s, 2 s, ...: the window [t0 - pre, t0 + post] starts at the first one
    let inject_s = RCAEVAL_WINDOW_START_S + opts.pre_s;
    base.duration = SimDuration::from_secs(inject_s + opts.post_s);
    base.scrape_interval = SimDuration::from_secs(1);
    base.telemetry.trace_sample_rate = opts.trace_sample_rate.clamp(0.0, 1.0);
    // every row of the window stays in memory
    base.telemetry.retain_scrapes = 0;
    mkdir(&opts.out)?;
    let mut cases = Vec::new();
    let mut counts: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
    for (fi, f) in opts.faults.iter().enumerate() {
        let Some((_, ftype)) = RCAEVAL_FAULTS.iter().find(|(n, _)| n == f) else {
            return Err(FaultError::Usage(format!(
                "unknown RCAEval fault {f:?}; known: {}",
                RCAEVAL_FAULTS
                    .iter()
                    .map(|x| x.0)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        for run in 0..opts.runs {
            let case_seed = sim_core::rng::mix64(opts.seed ^ ((fi as u64) << 32) ^ run as u64);
            let mut spec =
                FaultSpec::microremed(ftype, None, SimDuration::from_secs(inject_s), None)
                    .ok_or_else(|| FaultError::Usage(format!("no fault type {ftype}")))?;
            let cands = meaningful_services(&base, &spec.chaos);
            if cands.is_empty() {
                return Err(FaultError::Usage(format!(
                    "{}: no service where a {ftype} fault is meaningful (IO faults need a service with a volume)",
                    opts.system
                )));
            }
            let mut r = stream(case_seed, StreamKind::External, 0x4CAE_0000);
            let svc = cands[below(&mut r, cands.len() as u32) as usize].clone();
            spec.selector.service = Some(svc.clone());
            let sc = FaultScenario {
                name: format!("rcaeval-{}-{svc}-{f}", opts.system),
                description: format!("RCAEval-style case: {ftype} on {svc}"),
                base: base.clone(),
                faults: vec![spec],
                agent: AgentSettings::default(),
                remediation: RemediationSpec::default(),
                dime_task: None,
            };
            let mut ep = Episode::new(&sc, case_seed)?;
            ep.run_to_end();
            let key = format!("{svc}_{f}");
            let n = counts.entry(key.clone()).or_insert(0);
            *n += 1;
            let dir = opts.out.join(&key).join(n.to_string());
            mkdir(&dir)?;
            let inject_time = EPOCH_UNIX_S + inject_s;
            write_rcaeval_case(&ep, &dir, inject_time)?;
            cases.push(ExportedCase {
                dir,
                service: svc,
                fault: f.clone(),
                run: *n,
                inject_time,
            });
        }
    }
    Ok(cases)
}

/// Writes one episode's telemetry as an RCAEval case directory (RE1 `data.csv` and RE2 files):
/// one metric row per scrape of the episode (its `time`: the scrape's end, in Unix seconds), its
/// logs and sampled spans, and `inject_time`. [`export_rcaeval`] runs episodes whose scrapes
/// are exactly the window around the injection.
pub fn write_rcaeval_case(ep: &Episode, dir: &Path, inject_time: u64) -> Result<(), FaultError> {
    let sim = ep.sim();
    let t = sim.telemetry();
    let sc = sim.scenario();
    let services: Vec<String> = sc.services.iter().map(|s| s.name.clone()).collect();
    let nodes: Vec<String> = sc.nodes.iter().map(|n| n.name.clone()).collect();
    let metrics = [
        "cpu",
        "mem",
        "latency-50",
        "latency-90",
        "workload",
        "error",
    ];
    // simple (RE1 data.csv, RE2 simple_metrics.csv)
    let mut simple = String::from("time");
    for s in &services {
        for m in metrics {
            let _ = write!(simple, ",{s}_{m}");
        }
    }
    simple.push('\n');
    // wide (RE2 metrics.csv): service metrics + pods (by stable name prefix slot) + nodes
    let mut pod_cols: Vec<String> = Vec::new();
    for s in &t.scrapes {
        for p in &s.pods {
            if !pod_cols.contains(&p.name) {
                pod_cols.push(p.name.clone());
            }
        }
    }
    let mut wide = String::from("time");
    for s in &services {
        for m in metrics {
            let _ = write!(wide, ",{s}_{m}");
        }
    }
    for p in &pod_cols {
        let _ = write!(wide, ",{p}_container-cpu,{p}_container-mem");
    }
    for n in &nodes {
        let _ = write!(wide, ",{n}_node-cpu,{n}_node-mem,{n}_node-io");
    }
    wide.push('\n');
    for s in &t.scrapes {
        let time = EPOCH_UNIX_S + s.time / SECONDS;
        let mut row = format!("{time}");
        for name in &services {
            let m = s.services.iter().find(|m| &m.name == name);
            let mem: u64 = s
                .pods
                .iter()
                .filter(|p| m.is_some_and(|m| p.service == m.service))
                .map(|p| p.memory_bytes)
                .sum();
            match m {
                Some(m) => {
                    let _ = write!(
                        row,
                        ",{:.4},{},{:.3},{:.3},{:.3},{:.3}",
                        m.cpu_utilization, mem, m.p50_ms, m.p90_ms, m.rps, m.errors_per_s
                    );
                }
                None => row.push_str(",0,0,0,0,0,0"),
            }
        }
        simple.push_str(&row);
        simple.push('\n');
        let mut wrow = row;
        for pn in &pod_cols {
            match s.pods.iter().find(|p| &p.name == pn) {
                Some(p) => {
                    let _ = write!(wrow, ",{:.4},{}", p.cpu_utilization, p.memory_bytes);
                }
                None => wrow.push_str(",,"),
            }
        }
        for nn in &nodes {
            match s.nodes.iter().find(|n| &n.name == nn) {
                Some(n) => {
                    let _ = write!(
                        wrow,
                        ",{:.4},{:.4},{:.4}",
                        n.cpu_utilization, n.memory_utilization, n.io_utilization
                    );
                }
                None => wrow.push_str(",,,"),
            }
        }
        wide.push_str(&wrow);
        wide.push('\n');
    }
    write(&dir.join("data.csv"), &simple)?;
    write(&dir.join("simple_metrics.csv"), &simple)?;
    write(&dir.join("metrics.csv"), &wide)?;
    // logs
    let mut logs = String::from("time,timestamp,container_name,message,level,req_path,error\n");
    let pods = sim.pods();
    for l in &t.logs {
        let container = if (l.service as usize) < services.len() {
            services[l.service as usize].as_str()
        } else {
            "kubernetes"
        };
        let _ = pods;
        let ts = (EPOCH_UNIX_S as u128) * 1_000_000_000 + l.time as u128;
        let secs = EPOCH_UNIX_S + l.time / SECONDS;
        let hhmm = format!("{:02}:{:02}", (secs / 3600) % 24, (secs / 60) % 60);
        let level = format!("{:?}", l.severity).to_lowercase();
        let err = matches!(l.severity, sim_core::telemetry::Severity::Error);
        let _ = writeln!(
            logs,
            "{hhmm},{ts},{container},{},{level},,{}",
            csv_field(&l.message),
            err as u8
        );
    }
    write(&dir.join("logs.csv"), &logs)?;
    // traces
    let topo = sim.topology();
    let mut traces = String::from(
        "time,traceID,spanID,serviceName,methodName,operationName,startTimeMillis,startTime,duration,statusCode,parentSpanID\n",
    );
    for s in &t.spans {
        let svc = &services[(s.service as usize).min(services.len() - 1)];
        let op = topo
            .ops
            .get(s.operation as usize)
            .map(|o| o.name.as_str())
            .unwrap_or("unknown");
        let start_us = EPOCH_UNIX_S as u128 * 1_000_000 + (s.start / 1000) as u128;
        let secs = EPOCH_UNIX_S + s.start / SECONDS;
        let _ = writeln!(
            traces,
            "{secs},{},{:016x},{svc},{op},{svc}/{op},{},{start_us},{},{},{}",
            crate::otlp::trace_id_hex(sim.seed(), s.trace_id),
            s.span_id,
            start_us / 1000,
            s.duration / 1000,
            s.status.code(),
            if s.parent_span_id == 0 {
                String::new()
            } else {
                format!("{:016x}", s.parent_span_id)
            }
        );
    }
    write(&dir.join("traces.csv"), &traces)?;
    write(&dir.join("inject_time.txt"), &format!("{inject_time}\n"))?;
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The window and fault start a quick export uses in tests (short windows are allowed).
pub fn short_options(
    system: &str,
    faults: &[&str],
    seed: u64,
    out: &Path,
    pre_s: u64,
    post_s: u64,
) -> RcaEvalOptions {
    let mut o = RcaEvalOptions::new(system, faults, 1, seed, out);
    o.pre_s = pre_s;
    o.post_s = post_s;
    o
}
