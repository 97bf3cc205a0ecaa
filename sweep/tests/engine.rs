//! Behaviour of the sweep engine with the deterministic fake runner.

use std::path::{Path, PathBuf};

use sweep::{
    EpisodeJob, EpisodeRow, EpisodeRunner, FakeRunner, ParamAxis, ProgressMode, SeedRange, Shard,
    SweepError, SweepOptions, SweepSpec, compare_dirs, merge, run_sweep,
};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sweep-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn spec() -> SweepSpec {
    SweepSpec::new(
        vec!["s-b".into(), "s-a".into()],
        vec!["oracle".into(), "noop".into()],
        SeedRange::parse("0..7").unwrap(),
        vec![ParamAxis::parse("speed=1,2").unwrap()],
    )
    .unwrap()
}

fn opts(threads: usize) -> SweepOptions {
    SweepOptions {
        threads,
        progress: ProgressMode::Off,
        durable: false,
        ..Default::default()
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn strip_wall(jsonl: &str) -> String {
    jsonl
        .lines()
        .map(|l| {
            let r: EpisodeRow = serde_json::from_str(l).unwrap();
            r.deterministic_json()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn grid_is_canonical_and_complete() {
    let s = spec();
    assert_eq!(s.scenarios, vec!["s-a", "s-b"]);
    assert_eq!(s.len(), 2 * 2 * 7 * 2);
    let jobs = s.jobs();
    assert_eq!(jobs.len() as u64, s.len());
    assert!(jobs.windows(2).all(|w| w[0].key < w[1].key));
    assert_eq!(jobs[1].params.get("speed").map(String::as_str), Some("2"));
}

#[test]
fn output_is_independent_of_thread_count() {
    let runner = FakeRunner {
        work: 2000,
        ..Default::default()
    };
    let a = tmp("t1");
    let b = tmp("t3");
    let oa = run_sweep(&spec(), &a, &opts(1), &runner).unwrap();
    let ob = run_sweep(&spec(), &b, &opts(3), &runner).unwrap();
    assert_eq!((oa.total, oa.ran, ob.threads), (56, 56, 3));
    assert_eq!(compare_dirs(&a, &b).unwrap(), 56);
    assert_eq!(
        strip_wall(&read(&a.join("episodes.jsonl"))),
        strip_wall(&read(&b.join("episodes.jsonl")))
    );
    assert_eq!(read(&a.join("summary.csv")), read(&b.join("summary.csv")));
    // Rows sorted by (scenario, policy, seed, override).
    let rows = sweep::output::read_episodes_jsonl(&a.join("episodes.jsonl")).unwrap();
    assert!(rows.windows(2).all(|w| w[0].key() < w[1].key()));
    assert!(rows.iter().all(|r| r.wall_s >= 0.0));
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

#[test]
fn sharded_and_merged_equals_single_machine() {
    let runner = FakeRunner::default();
    let single = tmp("single");
    run_sweep(&spec(), &single, &opts(2), &runner).unwrap();
    let sharded = tmp("sharded");
    let mut sizes = Vec::new();
    for i in 0..3 {
        let o = SweepOptions {
            shard: Some(Shard::new(i, 3).unwrap()),
            ..opts(1)
        };
        let out = run_sweep(&spec(), &sharded, &o, &runner).unwrap();
        assert_eq!(out.dir, sharded.join(format!("shard-{i:04}-of-0003")));
        sizes.push(out.total);
    }
    assert_eq!(sizes.iter().sum::<usize>(), 56);
    assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
    // Merging an incomplete set of shards fails and names what is missing.
    let partial = merge(
        &[
            sharded.join("shard-0000-of-0003"),
            sharded.join("shard-0002-of-0003"),
        ],
        &tmp("partial"),
    );
    assert!(matches!(partial, Err(SweepError::Merge(m)) if m.contains("1/3")));
    // Merging a shard twice fails.
    let dup = merge(
        &[
            sharded.join("shard-0000-of-0003"),
            sharded.join("shard-0000-of-0003"),
        ],
        &tmp("dup"),
    );
    assert!(matches!(dup, Err(SweepError::Merge(_))));
    let merged = tmp("merged");
    let m = merge(std::slice::from_ref(&sharded), &merged).unwrap();
    assert_eq!((m.inputs.len(), m.episodes), (3, 56));
    compare_dirs(&single, &merged).unwrap();
    assert_eq!(
        read(&single.join("summary.csv")),
        read(&merged.join("summary.csv"))
    );
    for d in [single, sharded, merged] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn merge_rejects_shards_of_different_sweeps() {
    let runner = FakeRunner::default();
    let a = tmp("diff-a");
    let other = SweepSpec::new(
        vec!["x".into()],
        vec!["noop".into()],
        SeedRange::parse("0..4").unwrap(),
        vec![],
    )
    .unwrap();
    let o0 = SweepOptions {
        shard: Some(Shard::new(0, 2).unwrap()),
        ..opts(1)
    };
    let o1 = SweepOptions {
        shard: Some(Shard::new(1, 2).unwrap()),
        ..opts(1)
    };
    run_sweep(&spec(), &a, &o0, &runner).unwrap();
    run_sweep(&other, &a, &o1, &runner).unwrap();
    let err = merge(std::slice::from_ref(&a), &tmp("diff-out")).unwrap_err();
    assert!(err.to_string().contains("different sweep"), "{err}");
    let _ = std::fs::remove_dir_all(&a);
}

/// Fails the first time for chosen seeds, like a sweep killed half-way.
struct Flaky {
    inner: FakeRunner,
    fail_seeds: Vec<u64>,
}

impl EpisodeRunner for Flaky {
    fn run(&self, job: &EpisodeJob) -> Result<EpisodeRow, String> {
        if self.fail_seeds.contains(&job.key.seed) {
            return Err("interrupted".into());
        }
        self.inner.run(job)
    }
}

#[test]
fn resume_after_failure_and_torn_write_equals_uninterrupted() {
    let full = tmp("full");
    run_sweep(&spec(), &full, &opts(2), &FakeRunner::default()).unwrap();

    let dir = tmp("resume");
    let flaky = Flaky {
        inner: FakeRunner::default(),
        fail_seeds: vec![2, 5],
    };
    let err = run_sweep(&spec(), &dir, &opts(2), &flaky).unwrap_err();
    assert!(
        matches!(
            err,
            SweepError::EpisodesFailed {
                failed: 16,
                total: 56,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        !dir.join("episodes.jsonl").exists(),
        "no final output after failures"
    );
    // A torn last line, as left by kill -9 in the middle of a write.
    let jpath = dir.join("journal.jsonl");
    let journal = read(&jpath);
    let lines = journal.lines().count();
    assert_eq!(lines, 40);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&jpath)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"scenario\":\"s-a\",\"policy\":\"no").unwrap();
    drop(f);

    // Without --resume the folder is refused.
    let again = run_sweep(&spec(), &dir, &opts(2), &FakeRunner::default());
    assert!(matches!(again, Err(SweepError::AlreadyExists(_))));
    // --resume with another grid is refused.
    let mut other = spec();
    other.seeds = SeedRange::parse("0..9").unwrap();
    let o = SweepOptions {
        resume: true,
        ..opts(2)
    };
    assert!(matches!(
        run_sweep(&other, &dir, &o, &FakeRunner::default()),
        Err(SweepError::SpecMismatch { .. })
    ));
    let out = run_sweep(&spec(), &dir, &o, &FakeRunner::default()).unwrap();
    assert_eq!((out.skipped, out.ran), (40, 16));
    compare_dirs(&full, &dir).unwrap();
    assert_eq!(read(&jpath).lines().count(), 56, "torn line was cut off");
    // Resuming a finished sweep runs nothing and rewrites the same files.
    let out = run_sweep(&spec(), &dir, &o, &FakeRunner::default()).unwrap();
    assert_eq!(out.ran, 0);
    compare_dirs(&full, &dir).unwrap();
    let _ = std::fs::remove_dir_all(&full);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_pair_fails_before_running() {
    let dir = tmp("invalid");
    let s = SweepSpec::new(
        vec!["unknown-x".into()],
        vec!["noop".into()],
        SeedRange::parse("0..2").unwrap(),
        vec![],
    )
    .unwrap();
    let err = run_sweep(&s, &dir, &opts(1), &FakeRunner::default()).unwrap_err();
    assert!(matches!(err, SweepError::Invalid { .. }));
    assert!(!dir.exists());
}

#[test]
fn parquet_reads_back_with_all_rows_and_columns() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = tmp("parquet");
    run_sweep(&spec(), &dir, &opts(2), &FakeRunner::default()).unwrap();
    let f = std::fs::File::open(dir.join("episodes.parquet")).unwrap();
    let r = SerializedFileReader::new(f).unwrap();
    let md = r.metadata();
    assert_eq!(md.file_metadata().num_rows(), 56);
    let names: Vec<String> = md
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    for n in [
        "scenario",
        "policy",
        "seed",
        "param_speed",
        "return",
        "reward_slo",
        "recovered",
        "time_to_recover_s",
        "verdict_reason",
        "loc_ac@1",
        "latency_p99_ms",
        "events",
        "wall_s",
    ] {
        assert!(
            names.iter().any(|x| x == n),
            "missing column {n}: {names:?}"
        );
    }
    let rows: Vec<_> = r
        .get_row_iter(None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 56);
    let first = rows[0].to_string();
    assert!(first.contains("s-a") && first.contains("noop"), "{first}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn summary_has_one_line_per_group_with_intervals() {
    let dir = tmp("summary");
    let out = run_sweep(&spec(), &dir, &opts(2), &FakeRunner::default()).unwrap();
    assert_eq!(out.summary.len(), 2 * 2 * 2);
    let text = read(&dir.join("summary.csv"));
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("scenario,policy,override_index,params,episodes,return_mean"));
    assert_eq!(lines.count(), 8);
    for s in &out.summary {
        assert_eq!(s.episodes, 7);
        let r = s.ret.unwrap();
        assert!(r.lo <= r.mean && r.mean <= r.hi);
        let rec = s.recovery.unwrap();
        assert!((0.0..=1.0).contains(&rec.lo) && (0.0..=1.0).contains(&rec.hi));
    }
    // Localization columns only where the policy ranks root causes (oracle).
    let noop = out.summary.iter().find(|s| s.policy == "noop").unwrap();
    assert!(noop.localization.values().all(Option::is_none));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rows_written_before_the_verdict_reason_existed_still_read() {
    // an episodes.jsonl line of an earlier version (no verdict_reason): `--resume` keeps it
    let old = r#"{"scenario":"s-a","policy":"noop","seed":3,"override_index":0,"params":{},"steps":29,"return":-1.5,"reward_components":{"slo":-1.5},"recovered":false,"time_to_recover_s":null,"localization":null,"latency_p50_ms":5.0,"latency_p99_ms":50.0,"events":10,"wall_s":0.1}"#;
    let r: EpisodeRow = serde_json::from_str(old).unwrap();
    assert_eq!((r.seed, r.recovered), (3, false));
    assert_eq!(r.verdict_reason, "");
    let line = r.to_json_line();
    assert!(
        line.contains(r#""time_to_recover_s":null,"verdict_reason":"","#),
        "{line}"
    );
}
