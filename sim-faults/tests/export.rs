//! RCAEval export windows: one row per second over `[inject - pre, inject + post]`, both ends
//! included, as RCAEval's cases have (1441 rows at 1 s for 720 s each side, the injection
//! exactly centred; /work/shared/reference/rcaeval-format.md).

use sim_faults::export::{RcaEvalOptions, export_rcaeval, short_options};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("blastradius-export-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The `time` column of a metrics CSV.
fn times(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("time,"));
    lines
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}

fn check_window(opts: &RcaEvalOptions) {
    let cases = export_rcaeval(opts).unwrap();
    assert!(!cases.is_empty());
    for c in &cases {
        let inject: u64 = std::fs::read_to_string(c.dir.join("inject_time.txt"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(inject, c.inject_time);
        for f in ["data.csv", "simple_metrics.csv", "metrics.csv"] {
            let t = times(&c.dir.join(f));
            assert_eq!(t.len() as u64, opts.pre_s + opts.post_s + 1, "{f}");
            assert_eq!(t[0], inject - opts.pre_s, "{f}");
            assert_eq!(*t.last().unwrap(), inject + opts.post_s, "{f}");
            assert!(t.windows(2).all(|w| w[1] == w[0] + 1), "{f}: 1 s apart");
        }
        // traces cover the same run: the second before the first row to the last row
        let spans = times(&c.dir.join("traces.csv"));
        assert!(
            spans
                .iter()
                .all(|t| *t + 1 >= inject - opts.pre_s && *t <= inject + opts.post_s)
        );
    }
    let _ = std::fs::remove_dir_all(&opts.out);
}

#[test]
fn short_window_has_pre_plus_post_plus_one_rows_centred_on_the_injection() {
    // pre = post = 5: rows inject-5 ..= inject+5 (it was inject-4 ..= inject+5, 10 rows)
    check_window(&short_options(
        "online-boutique",
        &["cpu", "delay"],
        3,
        &tmp("short"),
        5,
        5,
    ));
    check_window(&short_options(
        "online-boutique",
        &["mem"],
        4,
        &tmp("skew"),
        3,
        8,
    ));
}

#[test]
fn rcaeval_default_window_has_1441_rows() {
    let mut o = RcaEvalOptions::new("online-boutique", &["cpu"], 1, 1, &tmp("full"));
    o.trace_sample_rate = 0.0;
    assert_eq!((o.pre_s, o.post_s), (720, 720));
    check_window(&o);
}

#[test]
fn a_window_too_long_to_add_up_is_a_usage_error() {
    // pre + post overflows u64: refused like any window over 48 h (it once overflowed)
    let mut o = RcaEvalOptions::new("online-boutique", &["cpu"], 1, 1, &tmp("huge"));
    o.pre_s = u64::MAX;
    assert!(matches!(
        export_rcaeval(&o),
        Err(sim_faults::FaultError::Usage(_))
    ));
    assert!(!o.out.exists(), "nothing written");
}
