//! Parsers and shard detection: no panic on any input, and the documented behaviour.

use proptest::prelude::*;
use sweep::{ParamAxis, SeedRange, Shard, ShardSource, journal};

fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    }
}

#[test]
fn slurm_and_kubernetes_detection() {
    let (s, src) = Shard::from_env(
        env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "3"),
            ("SLURM_ARRAY_TASK_MAX", "6"),
        ]),
        None,
    )
    .unwrap()
    .unwrap();
    assert_eq!((s.index, s.count, src), (2, 4, ShardSource::Slurm));
    // A stepped array (0,2,4,6) is not 0..N.
    assert!(
        Shard::from_env(
            env(&[
                ("SLURM_ARRAY_TASK_ID", "2"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
                ("SLURM_ARRAY_TASK_MIN", "0"),
                ("SLURM_ARRAY_TASK_MAX", "6"),
            ]),
            None
        )
        .is_err()
    );
    let (s, src) = Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "1")]), Some(3))
        .unwrap()
        .unwrap();
    assert_eq!((s.index, s.count, src), (1, 3, ShardSource::Kubernetes));
    let (s, _) = Shard::from_env(
        env(&[
            ("JOB_COMPLETION_INDEX", "0"),
            ("BLASTRADIUS_SHARD_COUNT", "2"),
        ]),
        None,
    )
    .unwrap()
    .unwrap();
    assert_eq!((s.index, s.count), (0, 2));
    assert!(Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "0")]), None).is_err());
    assert!(Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "3")]), Some(3)).is_err());
    assert!(Shard::from_env(env(&[]), None).unwrap().is_none());
}

#[test]
fn seed_ranges() {
    assert_eq!(SeedRange::parse("7").unwrap().len(), 1);
    assert_eq!(SeedRange::parse("0..=0").unwrap().len(), 1);
    assert!(SeedRange::parse("3..3").is_err());
    assert!(SeedRange::parse("0..=18446744073709551615").is_err());
    assert!(SeedRange::parse("a..b").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsers_never_panic(s in ".{0,40}") {
        let _ = SeedRange::parse(&s);
        let _ = Shard::parse(&s);
        let _ = ParamAxis::parse(&s);
    }

    #[test]
    fn journal_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = journal::parse(std::path::Path::new("j"), &bytes);
    }

    #[test]
    fn shards_partition_the_grid(n in 1u32..9, seeds in 1u64..20) {
        let spec = sweep::SweepSpec::new(vec!["a".into(), "b".into()], vec!["p".into()],
            SeedRange { start: 0, end: seeds }, vec![]).unwrap();
        let jobs = spec.jobs();
        for j in &jobs {
            let owners = (0..n).filter(|&i| Shard::new(i, n).unwrap().owns(j)).count();
            prop_assert_eq!(owners, 1);
        }
    }
}

/// Every prefix of a valid journal (a crash at any byte) loads as a prefix of its rows.
#[test]
fn journal_prefixes_load_as_row_prefixes() {
    use sweep::{EpisodeRunner, FakeRunner};
    let spec = sweep::SweepSpec::new(
        vec!["a".into()],
        vec!["oracle".into()],
        SeedRange::parse("0..4").unwrap(),
        vec![],
    )
    .unwrap();
    let rows: Vec<_> = spec
        .jobs()
        .iter()
        .map(|j| FakeRunner::default().run(j).unwrap())
        .collect();
    let mut bytes = Vec::new();
    let mut ends = Vec::new();
    for r in &rows {
        bytes.extend(r.to_json_line().bytes());
        bytes.push(b'\n');
        ends.push(bytes.len());
    }
    for cut in 0..=bytes.len() {
        let l = journal::parse(std::path::Path::new("j"), &bytes[..cut]).unwrap();
        let whole = ends.iter().filter(|&&e| e <= cut).count();
        assert_eq!(l.rows.len(), whole, "cut at {cut}");
        assert_eq!(
            l.valid_len as usize,
            if whole == 0 { 0 } else { ends[whole - 1] }
        );
        assert_eq!(l.torn, cut != l.valid_len as usize);
    }
}
