//! Progress reporting: an indicatif bar on a terminal, plain periodic lines otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How to report progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, plain lines otherwise (batch jobs, CI logs).
    #[default]
    Auto,
    /// Always the bar.
    Bar,
    /// Always plain lines (every 10 s and at the end).
    Plain,
    /// Nothing.
    Off,
}

/// Seconds between plain progress lines.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    plain: Option<Mutex<(Instant, u64)>>,
    total: u64,
    skipped: u64,
    start: Instant,
    label: String,
}

impl Progress {
    pub(crate) fn new(mode: ProgressMode, total: u64, skipped: u64, label: String) -> Progress {
        let mode = match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bar,
            ProgressMode::Auto => ProgressMode::Plain,
            m => m,
        };
        let bar = (mode == ProgressMode::Bar).then(|| {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} episodes  {per_sec}  ETA {eta}",
            ) {
                b.set_style(style);
            }
            b.set_prefix(label.clone());
            b.set_position(skipped);
            b.reset_eta();
            b
        });
        let now = Instant::now();
        Progress {
            bar,
            plain: (mode == ProgressMode::Plain).then(|| Mutex::new((now, skipped))),
            total,
            skipped,
            start: now,
            label,
        }
    }

    pub(crate) fn inc(&self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
        if let Some(p) = &self.plain {
            let mut g = p.lock().unwrap_or_else(|e| e.into_inner());
            g.1 += 1;
            if g.0.elapsed() >= PLAIN_EVERY {
                g.0 = Instant::now();
                self.line(g.1);
            }
        }
    }

    fn line(&self, done: u64) {
        let el = self.start.elapsed().as_secs_f64();
        let ran = done.saturating_sub(self.skipped);
        let rate = if el > 0.0 { ran as f64 / el } else { 0.0 };
        let left = self.total.saturating_sub(done);
        let eta = if rate > 0.0 {
            format!("{:.0}s", left as f64 / rate)
        } else {
            "?".into()
        };
        eprintln!(
            "{}: {done}/{} episodes ({:.1}%), {rate:.2} episodes/s, elapsed {el:.0}s, ETA {eta}",
            self.label,
            self.total,
            100.0 * done as f64 / self.total.max(1) as f64
        );
    }

    pub(crate) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
        if let Some(p) = &self.plain {
            let g = p.lock().unwrap_or_else(|e| e.into_inner());
            self.line(g.1);
        }
    }
}
