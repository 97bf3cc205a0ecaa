//! `blastradius plot ...`: pictures (SVG or PNG) of one episode (from `blastradius run`
//! output) and of a sweep (from `blastradius sweep` output).
//!
//! ```text
//! blastradius plot timeline runs/ep1 --out ep1.png        # metrics.csv, labels.json, actions.jsonl
//! blastradius plot sweep runs/a --format both              # runs/a/plots/{returns,recovery}.{svg,png}
//! ```

use std::path::PathBuf;

use ::sweep::plot::{self, Format};

/// Picture formats for `plot sweep`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// SVG only.
    Svg,
    /// PNG only.
    Png,
    /// Both.
    Both,
}

/// Sub-commands of `blastradius plot`.
#[derive(Debug, clap::Subcommand)]
pub enum PlotCmd {
    /// An episode timeline: requests/s, errors/s, p50 and p99 per service, fault windows
    /// shaded, agent actions marked.
    Timeline {
        /// Output folder of `blastradius run` (metrics.csv; labels.json and actions.jsonl
        /// when present).
        run_dir: PathBuf,
        /// Picture file, .svg or .png (default RUN_DIR/timeline.svg).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Agent actions as JSON lines {"time_s", "action"} (default RUN_DIR/actions.jsonl).
        #[arg(long)]
        actions: Option<PathBuf>,
        /// Most services drawn (those with the highest peak p99).
        #[arg(long, default_value_t = 10)]
        max_services: usize,
    },
    /// Sweep summaries: return distribution per policy and scenario, recovery rate with 95% CIs.
    Sweep {
        /// Output folder of `blastradius sweep` (or of `sweep merge`).
        sweep_dir: PathBuf,
        /// Folder for the pictures (default SWEEP_DIR/plots).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Picture format.
        #[arg(long, value_enum, default_value_t = FormatArg::Svg)]
        format: FormatArg,
    },
}

/// Runs `blastradius plot ...`.
pub fn run(cmd: PlotCmd) -> anyhow::Result<()> {
    match cmd {
        PlotCmd::Timeline {
            run_dir,
            out,
            actions,
            max_services,
        } => {
            let mut t = plot::load_run(&run_dir)?;
            if let Some(a) = actions {
                let text = std::fs::read_to_string(&a)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", a.display()))?;
                t.actions = plot::parse_actions(&a, &text)?;
            }
            let out = out.unwrap_or_else(|| run_dir.join("timeline.svg"));
            plot::draw_timeline(&t, &out, max_services)?;
            println!("wrote {}", out.display());
        }
        PlotCmd::Sweep {
            sweep_dir,
            out,
            format,
        } => {
            let rows = ::sweep::output::read_episodes_jsonl(&sweep_dir.join("episodes.jsonl"))?;
            let summary = ::sweep::summarize(&rows);
            let formats: &[Format] = match format {
                FormatArg::Svg => &[Format::Svg],
                FormatArg::Png => &[Format::Png],
                FormatArg::Both => &[Format::Svg, Format::Png],
            };
            let out = out.unwrap_or_else(|| sweep_dir.join("plots"));
            for p in plot::draw_sweep(&rows, &summary, &out, formats)? {
                println!("wrote {}", p.display());
            }
        }
    }
    Ok(())
}
