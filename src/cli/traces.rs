//! `blastradius traces ...`: convert, inspect, generate and compare call-graph traces
//! (the command-line face of the `replay` crate), and replay them into the simulator.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use replay::fidelity::{FidelityOptions, compare, split_halves, to_table};
use replay::generate::ServiceMarginals;
use replay::generate::luo::{LuoGenerator, LuoTables};
use replay::generate::recursive::{RecursiveGenerator, RecursiveModel};
use replay::generate::text::{TextOptions, encode_set};
use replay::store::StoreWriter;
use replay::{Format, ReadOptions, TraceSet};

/// Input formats on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InFormat {
    /// Alibaba v2022 `CallGraph` CSV.
    AlibabaV2022,
    /// Alibaba v2021 `MSCallGraph` CSV.
    AlibabaV2021,
    /// OTLP JSON.
    Otlp,
    /// Jaeger JSON.
    Jaeger,
    /// The binary trace store.
    Store,
}

impl From<InFormat> for Format {
    fn from(f: InFormat) -> Format {
        match f {
            InFormat::AlibabaV2022 => Format::AlibabaV2022,
            InFormat::AlibabaV2021 => Format::AlibabaV2021,
            InFormat::Otlp => Format::Otlp,
            InFormat::Jaeger => Format::Jaeger,
            InFormat::Store => Format::Store,
        }
    }
}

/// Output formats of `generate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutFormat {
    /// The binary trace store.
    Store,
    /// Alibaba v2022 `CallGraph` CSV.
    AlibabaV2022,
    /// OTLP JSON.
    Otlp,
    /// The seed paper's text encoding (instruction style, with scratchpads).
    Text,
}

/// Generator methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// Luo et al. (SoCC'21) probabilistic generator (embedded tables).
    Luo,
    /// Recursive layer-by-layer generator fitted to `--fit`.
    Recursive,
}

/// `traces` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TracesCmd {
    /// Convert traces into the binary trace store.
    Convert {
        /// Input files (Alibaba: traces split across files are joined).
        #[arg(required = true)]
        input: Vec<PathBuf>,
        /// Input format (guessed from the content when absent).
        #[arg(long, value_enum)]
        format: Option<InFormat>,
        /// Output store file.
        #[arg(long)]
        out: PathBuf,
        /// Make row-level problems errors.
        #[arg(long)]
        strict: bool,
    },
    /// Print the quality report of input files.
    Stats {
        /// Input files.
        #[arg(required = true)]
        input: Vec<PathBuf>,
        /// Input format (guessed when absent).
        #[arg(long, value_enum)]
        format: Option<InFormat>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Generate synthetic call graphs.
    Generate {
        /// Generator.
        #[arg(long, value_enum)]
        method: Method,
        /// Real sample to fit (required for `recursive`; for `luo`, gives names and latencies).
        #[arg(long)]
        fit: Option<PathBuf>,
        /// Format of the sample (guessed when absent).
        #[arg(long, value_enum)]
        fit_format: Option<InFormat>,
        /// Number of graphs.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutFormat::Store)]
        format: OutFormat,
    },
    /// Compare synthetic traces with real ones (the seed paper's fidelity metrics).
    Compare {
        /// Real traces.
        real: PathBuf,
        /// Synthetic traces.
        synth: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Replay traces into the simulator: infer a scenario from them (or take one), drive
    /// every call graph through it as a scripted request, and write the scenario, the
    /// simulated spans (Alibaba v2022 CSV and OTLP JSON), the service metrics and stats.
    Replay {
        /// Input traces (a trace store, or any input format).
        input: PathBuf,
        /// Input format (guessed from the content when absent).
        #[arg(long, value_enum)]
        format: Option<InFormat>,
        /// Arrivals this many times faster than in the traces.
        #[arg(long, default_value_t = 1.0)]
        speedup: f64,
        /// Output directory (created): scenario.toml, spans.csv, spans.otlp.json,
        /// metrics.csv, stats.json.
        #[arg(long)]
        out: PathBuf,
        /// Simulation seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Share of replayed traces whose simulated spans are kept (inferred scenarios).
        #[arg(long, default_value_t = 1.0)]
        sample_rate: f64,
        /// Replay into this scenario (TOML) instead of an inferred one; its workloads'
        /// own arrivals are switched off.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Serve calls to unknown services by a placeholder service `unknown` instead of
        /// dropping them.
        #[arg(long)]
        keep_unknown: bool,
        /// Do not write the simulated spans.
        #[arg(long)]
        no_export: bool,
    },
}

fn read(
    path: &Path,
    format: Option<InFormat>,
    strict: bool,
) -> anyhow::Result<(TraceSet, Vec<replay::QualityReport>)> {
    read_many(&[path.to_path_buf()], format, strict)
}

fn read_many(
    paths: &[PathBuf],
    format: Option<InFormat>,
    strict: bool,
) -> anyhow::Result<(TraceSet, Vec<replay::QualityReport>)> {
    let fmt = match format {
        Some(f) => f.into(),
        None => Format::detect(paths.first().context("no input file")?)?,
    };
    Ok(replay::read_files(paths, fmt, ReadOptions { strict })?)
}

fn create(path: &Path) -> anyhow::Result<BufWriter<File>> {
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(BufWriter::new(f))
}

fn write_set(set: &TraceSet, out: &Path, format: OutFormat) -> anyhow::Result<()> {
    match format {
        OutFormat::Store => replay::store::write_store(out, set)?,
        OutFormat::AlibabaV2022 => replay::export::write_alibaba_v2022(create(out)?, set)?,
        OutFormat::Otlp => replay::export::write_otlp_json(create(out)?, set)?,
        OutFormat::Text => {
            let mut w = create(out)?;
            w.write_all(encode_set(set, &TextOptions::default()).as_bytes())?;
            w.flush()?;
        }
    }
    Ok(())
}

/// Runs a `traces` subcommand.
pub fn run(cmd: TracesCmd) -> anyhow::Result<()> {
    match cmd {
        TracesCmd::Convert {
            input,
            format,
            out,
            strict,
        } => {
            let (set, reports) = read_many(&input, format, strict)?;
            let mut w = StoreWriter::create(&out)?;
            for g in &set.graphs {
                w.write_graph(g, &set.symbols)?;
            }
            w.finish()?;
            for r in &reports {
                eprint!("{}", r.to_text());
            }
            println!(
                "wrote {} graphs ({} spans) to {}",
                set.graphs.len(),
                set.num_spans(),
                out.display()
            );
        }
        TracesCmd::Stats {
            input,
            format,
            json,
        } => {
            let (set, reports) = read_many(&input, format, false)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                for r in &reports {
                    print!("{}", r.to_text());
                }
                let depth_max = set.graphs.iter().map(|g| g.max_depth()).max().unwrap_or(0);
                println!(
                    "graphs: {}, spans: {}, max depth: {}",
                    set.graphs.len(),
                    set.num_spans(),
                    depth_max
                );
            }
        }
        TracesCmd::Generate {
            method,
            fit,
            fit_format,
            count,
            seed,
            out,
            format,
        } => {
            let sample = match &fit {
                Some(p) => Some(read(p, fit_format, false)?.0),
                None => None,
            };
            let set = match method {
                Method::Luo => {
                    let mut g = LuoGenerator::new(LuoTables::embedded(), seed);
                    if let Some(s) = &sample {
                        g = g.with_marginals(ServiceMarginals::fit(s));
                    }
                    g.generate(count)
                }
                Method::Recursive => {
                    let Some(s) = &sample else {
                        bail!("--method recursive needs --fit SAMPLE");
                    };
                    let model = RecursiveModel::fit(s)?;
                    RecursiveGenerator::new(&model, seed).generate(count)
                }
            };
            write_set(&set, &out, format)?;
            println!(
                "wrote {} graphs ({} spans) to {}",
                set.graphs.len(),
                set.num_spans(),
                out.display()
            );
        }
        TracesCmd::Compare { real, synth, json } => {
            let (r, _) = read(&real, None, false)?;
            let (s, _) = read(&synth, None, false)?;
            let opts = FidelityOptions::default();
            let rep = compare(&r, &s, &r, &opts);
            let (a, b) = split_halves(&r);
            let ceiling = compare(&a, &b, &a, &opts);
            if json {
                let v = serde_json::json!({ "synthetic": rep, "real_half_vs_half": ceiling });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!(
                    "{}",
                    to_table(&[("synthetic", &rep), ("real half vs half", &ceiling)])
                );
            }
        }
        TracesCmd::Replay {
            input,
            format,
            speedup,
            out,
            seed,
            sample_rate,
            scenario,
            keep_unknown,
            no_export,
        } => replay_cmd(ReplayArgs {
            input,
            format,
            speedup,
            out,
            seed,
            sample_rate,
            scenario,
            keep_unknown,
            no_export,
        })?,
    }
    Ok(())
}

struct ReplayArgs {
    input: PathBuf,
    format: Option<InFormat>,
    speedup: f64,
    out: PathBuf,
    seed: u64,
    sample_rate: f64,
    scenario: Option<PathBuf>,
    keep_unknown: bool,
    no_export: bool,
}

fn replay_cmd(a: ReplayArgs) -> anyhow::Result<()> {
    use replay::sim::{
        InferOptions, ReplayOptions, UnknownPolicy, infer_scenario_with_report, replay_into,
        replay_scenario, sim_spans_to_traceset,
    };
    if !(a.speedup.is_finite() && a.speedup > 0.0) {
        bail!("--speedup must be a positive number, got {}", a.speedup);
    }
    if !(0.0..=1.0).contains(&a.sample_rate) {
        bail!("--sample-rate must be in [0, 1], got {}", a.sample_rate);
    }
    let (set, _) = read(&a.input, a.format, false)?;
    let unknown = if a.keep_unknown {
        UnknownPolicy::Placeholder
    } else {
        UnknownPolicy::Drop
    };
    let (sc, report) = match &a.scenario {
        Some(p) => (
            sim_core::scenario::Scenario::from_file(p)?,
            serde_json::Value::Null,
        ),
        None => {
            let opts = InferOptions {
                speedup: a.speedup,
                unknown,
                trace_sample_rate: a.sample_rate,
                ..InferOptions::default()
            };
            let (sc, rep) = infer_scenario_with_report(&set, &opts)?;
            (sc, serde_json::to_value(&rep)?)
        }
    };
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    std::fs::write(a.out.join("scenario.toml"), sc.to_toml_string())
        .with_context(|| format!("cannot write {}", a.out.join("scenario.toml").display()))?;
    let mut sim = sim_core::Simulation::new(&replay_scenario(&sc), a.seed)?;
    let ropts = ReplayOptions {
        speedup: a.speedup,
        unknown,
        ..ReplayOptions::default()
    };
    let stats = replay_into(&mut sim, &set, &ropts)?;
    std::fs::write(
        a.out.join("metrics.csv"),
        sim.telemetry().service_metrics_csv(),
    )
    .with_context(|| format!("cannot write {}", a.out.join("metrics.csv").display()))?;
    if !a.no_export {
        let sim_set = sim_spans_to_traceset(&sim);
        replay::export::write_alibaba_v2022(create(&a.out.join("spans.csv"))?, &sim_set)?;
        replay::export::write_otlp_json(create(&a.out.join("spans.otlp.json"))?, &sim_set)?;
    }
    let v = serde_json::json!({ "infer": report, "replay": stats });
    std::fs::write(a.out.join("stats.json"), serde_json::to_string_pretty(&v)?)
        .with_context(|| format!("cannot write {}", a.out.join("stats.json").display()))?;
    println!(
        "replayed {} of {} graphs ({} spans; {} dropped as unknown, {} unmapped, {} calls without edge) \
         in {:.3} s ({:.0} spans/s); simulated {:.1} s; wrote {}",
        stats.graphs_replayed,
        stats.graphs_read,
        stats.spans_replayed,
        stats.spans_dropped_unknown,
        stats.spans_unmapped,
        stats.calls_without_edge,
        stats.wall_s,
        stats.spans_per_s,
        stats.sim_end_ns as f64 / 1e9,
        a.out.display()
    );
    Ok(())
}
