//! Confidence intervals in `summary.csv` and the recovery plot: none for groups of one
//! episode, a Wilson score interval for the recovery rate.

use std::path::PathBuf;

use sweep::{
    EpisodeJob, EpisodeRow, EpisodeRunner, FakeRunner, ProgressMode, SeedRange, SweepOptions,
    SweepSpec, run_sweep,
};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sweep-summary-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn opts() -> SweepOptions {
    SweepOptions {
        threads: 2,
        progress: ProgressMode::Off,
        durable: false,
        ..Default::default()
    }
}

fn spec(seeds: &str) -> SweepSpec {
    SweepSpec::new(
        vec!["s".into()],
        vec!["noop".into(), "oracle".into()],
        SeedRange::parse(seeds).unwrap(),
        vec![],
    )
    .unwrap()
}

/// `summary.csv` as (header, rows), each a map from column name to cell.
fn read_summary(dir: &std::path::Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .cloned()
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// Every episode fails to recover, the rest as the fake runner has it.
struct NeverRecovers;

impl EpisodeRunner for NeverRecovers {
    fn run(&self, job: &EpisodeJob) -> Result<EpisodeRow, String> {
        let mut r = FakeRunner::default().run(job)?;
        r.recovered = false;
        r.time_to_recover_s = None;
        Ok(r)
    }
}

#[test]
fn one_episode_groups_have_a_mean_but_no_interval() {
    let dir = tmp("one");
    let out = run_sweep(&spec("5"), &dir, &opts(), &FakeRunner::default()).unwrap();
    for s in &out.summary {
        assert_eq!(s.episodes, 1);
        let r = s.ret.unwrap();
        assert!(r.mean.is_finite());
        assert_eq!(r.interval(), None, "n=1 must not give [mean, mean]");
        assert_eq!(s.recovery.unwrap().interval(), None);
    }
    for row in read_summary(&dir) {
        for m in ["return", "recovery_rate", "p99_ms"] {
            assert!(!row[&format!("{m}_mean")].is_empty(), "{m}: {row:?}");
            assert_eq!(row[&format!("{m}_ci_lo")], "", "{m}: {row:?}");
            assert_eq!(row[&format!("{m}_ci_hi")], "", "{m}: {row:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn recovery_rate_of_none_recovered_has_a_wilson_interval() {
    let dir = tmp("none");
    let out = run_sweep(&spec("0..3"), &dir, &opts(), &NeverRecovers).unwrap();
    for s in &out.summary {
        let r = s.recovery.unwrap();
        assert_eq!((r.n, r.mean, r.lo), (3, 0.0, 0.0));
        assert!((r.hi - 0.561_497).abs() < 1e-6, "{r:?}");
        // Nothing recovered: no time to recover at all.
        assert!(s.ttr_s.is_none());
    }
    for row in read_summary(&dir) {
        assert_eq!(row["recovery_rate_mean"], "0.000000");
        assert_eq!(row["recovery_rate_ci_lo"], "0.000000");
        assert_eq!(row["recovery_rate_ci_hi"], "0.561497");
        assert_eq!(row["ttr_s_mean"], "");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Counts the SVG elements an error bar is drawn with.
fn lines(svg: &str) -> usize {
    svg.matches("<line").count() + svg.matches("<polyline").count()
}

#[test]
fn recovery_plot_draws_no_error_bar_without_an_interval() {
    let dir = tmp("plot");
    let out = run_sweep(&spec("5"), &dir, &opts(), &FakeRunner::default()).unwrap();
    let rows = sweep::output::read_episodes_jsonl(&dir.join("episodes.jsonl")).unwrap();
    let svg = |summary: &[sweep::SummaryRow], name: &str| {
        let d = dir.join(name);
        let files =
            sweep::plot::draw_sweep(&rows, summary, &d, &[sweep::plot::Format::Svg]).unwrap();
        let p = files.iter().find(|p| p.ends_with("recovery.svg")).unwrap();
        std::fs::read_to_string(p).unwrap()
    };
    let with_n1 = svg(&out.summary, "n1");
    assert!(!with_n1.contains("NaN"));
    // The same groups without any recovery value: no bar, no label, no error bar.
    let mut none = out.summary.clone();
    for s in &mut none {
        s.recovery = None;
    }
    let without = svg(&none, "none");
    assert_eq!(
        lines(&with_n1),
        lines(&without),
        "an error bar was drawn for n=1"
    );
    // With an interval, each group has its error bar.
    let mut with_ci = out.summary.clone();
    for s in &mut with_ci {
        s.recovery = sweep::wilson_ci(1, 2);
    }
    assert!(lines(&svg(&with_ci, "ci")) > lines(&without));
    let _ = std::fs::remove_dir_all(&dir);
}
