//! Property tests: no parser panics on arbitrary bytes or on mutated real inputs.

mod common;

use proptest::prelude::*;
use replay::{Format, ReadOptions, read_bytes};

const V2022: &str = include_str!("data/alibaba/casper_2022_shuffled_sample_traces_small.csv");
const OTLP: &str = include_str!("data/jaeger/utils_fixtures_otlp2jaeger-multi-in-combined.json");
const JAEGER: &str = include_str!("data/jaeger/TracePage_TraceFlamegraph_testTrace.json");

fn all_formats(bytes: &[u8]) {
    for f in [
        Format::AlibabaV2022,
        Format::Otlp,
        Format::Jaeger,
        Format::Store,
    ] {
        for strict in [false, true] {
            let _ = read_bytes("fuzz", bytes, f, ReadOptions { strict });
        }
    }
    let _ = replay::alibaba::metrics::read_metrics(
        std::path::Path::new("fuzz"),
        bytes,
        ReadOptions::default(),
    );
    let _ = replay::generate::text::parse_many(&String::from_utf8_lossy(bytes));
}

/// Replaces `len` bytes at `at` (fractions of the length) with `with`.
fn mutate(base: &str, at: f64, len: usize, with: &[u8]) -> Vec<u8> {
    let mut b = base.as_bytes().to_vec();
    let i = ((b.len() as f64) * at) as usize;
    let j = (i + len).min(b.len());
    b.splice(i..j, with.iter().copied());
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        all_formats(&bytes);
    }

    #[test]
    fn csv_like_lines(lines in proptest::collection::vec("[0-9T_SM.,UNKOW()a-z\"-]{0,60}", 0..40)) {
        let text = format!("timestamp,traceid,service,rpc_id,rpctype,um,uminstanceid,interface,dm,dminstanceid,rt\n{}", lines.join("\n"));
        let r = read_bytes("fuzz.csv", text.as_bytes(), Format::AlibabaV2022, ReadOptions::default());
        let (set, rep) = r.unwrap();
        prop_assert!(rep.dropped() <= rep.rows);
        for g in &set.graphs {
            prop_assert!(replay::fidelity::check_validity(g, None).dag);
        }
    }

    #[test]
    fn mutated_real_inputs(at in 0.0f64..1.0, len in 0usize..64, with in proptest::collection::vec(any::<u8>(), 0..64)) {
        for base in [V2022, OTLP, JAEGER] {
            all_formats(&mutate(base, at, len, &with));
        }
    }

    #[test]
    fn mutated_store(at in 0.0f64..1.0, with in proptest::collection::vec(any::<u8>(), 1..16)) {
        let (set, _) = read_bytes("s.csv", V2022.as_bytes(), Format::AlibabaV2022, ReadOptions::default()).unwrap();
        let bytes = replay::store::store_to_bytes(&set).unwrap();
        let mut b = bytes.clone();
        let i = ((b.len() as f64) * at) as usize;
        for (k, x) in with.iter().enumerate() {
            if let Some(y) = b.get_mut(i + k) { *y ^= x | 1; }
        }
        let _ = replay::store::store_from_bytes(&b);
    }
}
