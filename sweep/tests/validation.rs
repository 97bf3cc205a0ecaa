//! Sweeps that cannot run are refused up front, with one error naming the argument at fault,
//! and leave nothing behind in the output folder.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use sweep::{
    EpisodeJob, EpisodeRow, EpisodeRunner, FakeRunner, MAX_EPISODES, MAX_THREADS, ParamAxis,
    ProgressMode, SeedRange, Shard, SimRunner, SweepError, SweepOptions, SweepSpec,
    apply_overrides, merge, run_sweep,
};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sweep-valid-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn opts(threads: usize) -> SweepOptions {
    SweepOptions {
        threads,
        progress: ProgressMode::Off,
        durable: false,
        ..Default::default()
    }
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn axis(text: &str) -> ParamAxis {
    ParamAxis::parse(text).unwrap()
}

/// The spec of `--seeds 0..18446744073709551615`, built field by field (bypassing `new`).
fn huge_spec() -> SweepSpec {
    SweepSpec {
        scenarios: names(&["a", "b"]),
        policies: names(&["p"]),
        seeds: SeedRange {
            start: 0,
            end: u64::MAX,
        },
        params: vec![],
    }
}

#[test]
fn huge_grids_are_refused_naming_the_field_and_size() {
    // One scenario: u64::MAX episodes, far above the limit.
    let err = SweepSpec::new(
        names(&["a"]),
        names(&["p"]),
        SeedRange::parse("0..18446744073709551615").unwrap(),
        vec![],
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            SweepError::InvalidArg {
                field: "--seeds",
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("18446744073709551615") && msg.contains("100000000"),
        "{msg}"
    );
    // Two scenarios: the product overflows u64 (a debug panic, a wrap to 0 in release before).
    let err = SweepSpec::new(
        names(&["a", "b"]),
        names(&["p", "q"]),
        SeedRange::parse("0..18446744073709551615").unwrap(),
        vec![],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("73786976294838206460 episodes"),
        "{err}"
    );
    // Parameter axes whose product overflows even u128 name --param.
    let big = (0..1000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let params: Vec<ParamAxis> = (0..20).map(|k| axis(&format!("k{k:02}={big}"))).collect();
    let err = SweepSpec::new(
        names(&["a"]),
        names(&["p"]),
        SeedRange::parse("0").unwrap(),
        params,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            SweepError::InvalidArg {
                field: "--param",
                ..
            }
        ),
        "{err}"
    );
    // The limit itself is allowed, one more is not.
    let at = |n: u64| {
        SweepSpec::new(
            names(&["a"]),
            names(&["p"]),
            SeedRange { start: 0, end: n },
            vec![],
        )
    };
    assert_eq!(at(MAX_EPISODES).unwrap().len(), MAX_EPISODES);
    assert!(at(MAX_EPISODES + 1).is_err());
}

#[test]
fn len_of_an_overflowing_grid_saturates_instead_of_wrapping() {
    let s = huge_spec();
    assert_eq!(s.checked_len(), None);
    assert_eq!(s.len(), u64::MAX);
    assert!(!s.is_empty());
    assert!(s.validate().is_err());
}

#[test]
fn huge_grid_writes_nothing_and_does_not_allocate() {
    let dir = tmp("huge");
    let err = run_sweep(&huge_spec(), &dir, &opts(1), &FakeRunner::default()).unwrap_err();
    assert!(matches!(err, SweepError::InvalidArg { .. }), "{err}");
    assert!(!dir.exists(), "nothing may be written for a refused sweep");
    // The same through a shard.
    let o = SweepOptions {
        shard: Some(Shard::new(1, 4).unwrap()),
        ..opts(1)
    };
    assert!(run_sweep(&huge_spec(), &dir, &o, &FakeRunner::default()).is_err());
    assert!(!dir.exists());
}

#[test]
fn merge_refuses_a_recorded_grid_above_the_limit() {
    let dir = tmp("merge-huge");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = sweep::Manifest {
        format: 1,
        spec: huge_spec(),
        shard: None,
    };
    std::fs::write(
        dir.join(sweep::MANIFEST),
        serde_json::to_string(&manifest).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("episodes.jsonl"), "").unwrap();
    let err = merge(std::slice::from_ref(&dir), &tmp("merge-huge-out")).unwrap_err();
    assert!(matches!(err, SweepError::BadFile { .. }), "{err}");
    assert!(err.to_string().contains("100000000"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn job_at_and_strided_jobs_agree_with_the_whole_grid() {
    let s = SweepSpec::new(
        names(&["s1", "s0"]),
        names(&["p", "o", "n"]),
        SeedRange::parse("3..8").unwrap(),
        vec![axis("b=x,y,z"), axis("a=1,2")],
    )
    .unwrap();
    let all = s.jobs();
    assert_eq!(all.len() as u64, s.len());
    for j in &all {
        assert_eq!(s.job_at(j.index).as_ref(), Some(j));
    }
    assert!(s.job_at(s.len()).is_none());
    for count in 1..7u32 {
        for index in 0..count {
            let sh = Shard::new(index, count).unwrap();
            let want: Vec<EpisodeJob> = all.iter().filter(|j| sh.owns(j)).cloned().collect();
            assert_eq!(s.jobs_strided(index as u64, count as u64), want);
        }
    }
}

#[test]
fn repeated_param_values_are_refused() {
    let err = ParamAxis::parse("max_steps=5,5").unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
    // Built by hand, the spec refuses it too.
    let dup = ParamAxis {
        key: "max_steps".into(),
        values: names(&["5", "10", "5"]),
    };
    let err = SweepSpec::new(
        names(&["a"]),
        names(&["p"]),
        SeedRange::parse("0..2").unwrap(),
        vec![dup],
    )
    .unwrap_err();
    assert!(
        matches!(&err, SweepError::InvalidArg { field: "--param", value, .. } if value == "max_steps=5,10,5"),
        "{err}"
    );
    assert!(ParamAxis::parse("max_steps=5,10").is_ok());
}

#[test]
fn too_many_threads_is_an_error_not_a_silent_cap() {
    let dir = tmp("threads");
    let spec = SweepSpec::new(
        names(&["a"]),
        names(&["p"]),
        SeedRange::parse("0..2").unwrap(),
        vec![],
    )
    .unwrap();
    let err = run_sweep(&spec, &dir, &opts(MAX_THREADS + 1), &FakeRunner::default()).unwrap_err();
    assert!(
        matches!(
            err,
            SweepError::InvalidArg {
                field: "--threads",
                ..
            }
        ),
        "{err}"
    );
    assert!(!dir.exists());
    let out = run_sweep(&spec, &dir, &opts(2), &FakeRunner::default()).unwrap();
    assert_eq!(out.total, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Knows one parameter, `speed`, which must be a positive integer; counts episodes run.
struct Strict {
    ran: AtomicUsize,
}

impl EpisodeRunner for Strict {
    fn check_param(&self, _scenario: &str, axis: &ParamAxis) -> Result<(), String> {
        if axis.key != "speed" {
            return Err(format!("unknown parameter {:?}", axis.key));
        }
        for v in &axis.values {
            match v.parse::<u32>() {
                Ok(n) if n > 0 => {}
                _ => return Err(format!("value {v:?}: need a positive integer")),
            }
        }
        Ok(())
    }

    fn run(&self, job: &EpisodeJob) -> Result<EpisodeRow, String> {
        self.ran.fetch_add(1, Ordering::Relaxed);
        FakeRunner::default().run(job)
    }
}

#[test]
fn bad_params_fail_once_before_anything_is_written_or_run() {
    let runner = Strict {
        ran: AtomicUsize::new(0),
    };
    for bad in ["foo=1", "speed=1,0"] {
        let dir = tmp("strict");
        let spec = SweepSpec::new(
            names(&["a", "b"]),
            names(&["p"]),
            SeedRange::parse("0..4").unwrap(),
            vec![axis(bad)],
        )
        .unwrap();
        let err = run_sweep(&spec, &dir, &opts(2), &runner).unwrap_err();
        assert!(
            matches!(&err, SweepError::InvalidArg { field: "--param", value, .. } if value == bad),
            "{err}"
        );
        assert!(!dir.exists(), "{bad}: no sweep.json may be left behind");
    }
    assert_eq!(runner.ran.load(Ordering::Relaxed), 0);
    // A corrected run into the same folder goes through.
    let dir = tmp("strict");
    let spec = SweepSpec::new(
        names(&["a"]),
        names(&["p"]),
        SeedRange::parse("0..2").unwrap(),
        vec![axis("speed=1,2")],
    )
    .unwrap();
    assert_eq!(run_sweep(&spec, &dir, &opts(2), &runner).unwrap().ran, 4);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sim_runner_checks_every_parameter_up_front() {
    let r = SimRunner::new();
    let check = |text: &str| r.check_param("retry-storm", &axis(text));
    for ok in [
        "max_steps=1,30",
        "duration_s=600,1e5",
        "decision_interval_s=10,30",
        "remediation_windows=1,100000",
        "throughput_ratio=0,0.5,1",
    ] {
        check(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for (bad, says) in [
        ("foo=1", "unknown parameter \"foo\""),
        ("throughput_ratio=nan", "throughput_ratio"),
        ("throughput_ratio=inf", "throughput_ratio"),
        ("throughput_ratio=1.5", "throughput_ratio"),
        ("remediation_windows=0", "remediation.windows"),
        ("remediation_windows=100001", "remediation.windows"),
        ("remediation_windows=-1", "not an integer"),
        ("max_steps=0", "at least 1"),
        ("max_steps=x", "not an integer"),
        ("duration_s=1e30", "100 years"),
        ("duration_s=0", "positive"),
        ("duration_s=-5", "positive"),
        ("decision_interval_s=1e-12", "0 ns"),
        ("decision_interval_s=inf", "positive, finite"),
        ("decision_interval_s=0.000001", "scrape interval"),
        ("max_steps=5,05", "same setting"),
        ("duration_s=600,600.0", "same setting"),
    ] {
        let e = check(bad).expect_err(bad);
        assert!(e.contains(says), "{bad}: {e}");
    }
}

#[test]
fn sim_params_are_refused_before_the_output_folder_is_made() {
    let dir = tmp("sim");
    for bad in ["foo=1", "throughput_ratio=nan", "remediation_windows=0"] {
        let spec = SweepSpec::new(
            names(&["retry-storm"]),
            names(&["noop"]),
            SeedRange::parse("0..3").unwrap(),
            vec![axis(bad)],
        )
        .unwrap();
        let err = run_sweep(&spec, &dir, &opts(1), &SimRunner::new()).unwrap_err();
        assert!(
            matches!(
                &err,
                SweepError::InvalidArg {
                    field: "--param",
                    ..
                }
            ),
            "{bad}: {err}"
        );
        assert!(!dir.exists(), "{bad}");
    }
}

#[test]
fn apply_overrides_rejects_values_that_do_not_fit() {
    let base = sim_faults::FaultScenario::load("retry-storm").unwrap();
    let apply = |k: &str, v: &str| {
        let mut sc = base.clone();
        let p = BTreeMap::from([(k.to_string(), v.to_string())]);
        apply_overrides(&mut sc, &p).map(|()| sc)
    };
    // Before: 1e30 s saturated to u64::MAX ns (~584 years), 1e-12 s rounded to 0 ns.
    let e = apply("duration_s", "1e30").unwrap_err();
    assert!(e.starts_with("param duration_s=1e30:"), "{e}");
    let e = apply("decision_interval_s", "1e-12").unwrap_err();
    assert!(
        e.contains("decision_interval_s") && e.contains("0 ns"),
        "{e}"
    );
    // Just inside the limits: exact nanoseconds.
    assert_eq!(
        apply("duration_s", "3153600000").unwrap().base.duration.0,
        3_153_600_000_000_000_000
    );
    assert_eq!(apply("duration_s", "1e-9").unwrap().base.duration.0, 1);
    assert!(apply("duration_s", "3153600000.5").is_err());
    assert_eq!(
        apply("duration_s", "12.5").unwrap().base.duration.0,
        12_500_000_000
    );
    // A value that makes the scenario invalid is an error, not a panic in the simulator.
    assert!(apply("throughput_ratio", "NaN").is_err());
    assert!(apply("remediation_windows", "0").is_err());
}
