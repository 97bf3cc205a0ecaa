//! Generators: determinism, validity, conditions, text encoding, fidelity vs the sample.

mod common;

use common::{csv, read};
use replay::fidelity::{FidelityOptions, check_validity, compare, split_halves, validity_rate};
use replay::generate::ServiceMarginals;
use replay::generate::luo::{LuoGenerator, LuoTables};
use replay::generate::recursive::{Conditions, RecursiveGenerator, RecursiveModel};
use replay::generate::text::{TextOptions, TextStyle, encode_set, parse_many};
use replay::{CallType, Format, TraceSet};

fn sample() -> TraceSet {
    read(
        "alibaba/casper_2022_shuffled_sample_traces_small.csv",
        Format::AlibabaV2022,
    )
    .0
}

fn store_bytes(s: &TraceSet) -> Vec<u8> {
    replay::store::store_to_bytes(s).unwrap()
}

#[test]
fn luo_is_deterministic_and_valid() {
    let a = LuoGenerator::new(LuoTables::embedded(), 7).generate(2000);
    let b = LuoGenerator::new(LuoTables::embedded(), 7).generate(2000);
    let c = LuoGenerator::new(LuoTables::embedded(), 8).generate(2000);
    assert_eq!(store_bytes(&a), store_bytes(&b));
    assert_ne!(store_bytes(&a), store_bytes(&c));
    assert_eq!(validity_rate(&a), 1.0);
    for g in &a.graphs {
        assert_eq!(g.spans[0].call_type, CallType::Http);
        assert_eq!(g.spans[0].rpc_id.to_string(), "0");
        // only rpc, mq and http calls have children (the published rule)
        for (i, ch) in g.children().iter().enumerate() {
            if !ch.is_empty() && i > 0 {
                assert!(matches!(
                    g.spans[i].call_type,
                    CallType::Rpc | CallType::Mq | CallType::Http
                ));
            }
        }
    }
    // the derived reference (20,000 graphs of an independent re-implementation) has
    // 9.95% single-call graphs and 59% memcached children; ours must be close
    let single = a.graphs.iter().filter(|g| g.spans.len() == 1).count() as f64 / 2000.0;
    assert!((0.07..0.13).contains(&single), "single-call share {single}");
    let children: Vec<_> = a.graphs.iter().flat_map(|g| g.spans[1..].iter()).collect();
    let mc = children
        .iter()
        .filter(|s| s.call_type == CallType::Mc)
        .count() as f64
        / children.len() as f64;
    assert!((0.5..0.68).contains(&mc), "memcached share {mc}");
}

#[test]
fn luo_tables_load_from_directory_like_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/erms");
    let t = LuoTables::load_dir(&dir).unwrap();
    let a = LuoGenerator::new(t, 3).generate(300);
    let b = LuoGenerator::new(LuoTables::embedded(), 3).generate(300);
    assert_eq!(store_bytes(&a), store_bytes(&b));
    assert!(LuoTables::load_dir(std::path::Path::new("/nonexistent")).is_err());
    let e = LuoTables::from_csv(
        "depth,num,rpc_type,percentage\n",
        "depth,num,cumsum\n1,x,0.5\n",
        "depth,percentage\n",
        "depth,percentage\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("depthDistribution.csv:2"), "{e}");
}

#[test]
fn recursive_hits_conditions_exactly() {
    let s = sample();
    let m = RecursiveModel::fit(&s).unwrap();
    let mut g = RecursiveGenerator::new(&m, 11);
    let base = m.conditions()[0];
    for (e, d) in [(1, 1), (5, 2), (5, 5), (12, 3), (40, 6), (200, 9)] {
        let c = Conditions {
            num_edges: e,
            max_depth: d,
            ..base
        };
        let gr = g.generate_with(&c).unwrap();
        let v = check_validity(&gr, Some((e as usize, d as usize)));
        assert!(v.is_valid(), "{e} edges depth {d}: {v:?}");
    }
    assert!(
        g.generate_with(&Conditions {
            num_edges: 2,
            max_depth: 3,
            ..base
        })
        .is_err()
    );
    assert!(
        g.generate_with(&Conditions {
            num_edges: 5,
            max_depth: 1,
            ..base
        })
        .is_err()
    );
    let set = RecursiveGenerator::new(&m, 5).generate(3000);
    assert_eq!(validity_rate(&set), 1.0);
    // every generated graph reproduces the conditions of a sample graph
    let conds: std::collections::BTreeSet<(u32, u32)> = m
        .conditions()
        .iter()
        .map(|c| (c.num_edges, c.max_depth))
        .collect();
    assert!(
        set.graphs
            .iter()
            .all(|g| conds.contains(&(g.spans.len() as u32, g.max_depth() as u32)))
    );
    assert_eq!(
        store_bytes(&set),
        store_bytes(&RecursiveGenerator::new(&m, 5).generate(3000))
    );
    assert!(RecursiveModel::fit(&TraceSet::new()).is_err());
}

#[test]
fn text_encoding_round_trip() {
    let s = sample();
    let m = RecursiveModel::fit(&s).unwrap();
    let set = RecursiveGenerator::new(&m, 2).generate(200);
    for style in [
        TextStyle::Flat,
        TextStyle::Recursive,
        TextStyle::Instruction,
    ] {
        for shuffle in [false, true] {
            let text = encode_set(
                &set,
                &TextOptions {
                    style,
                    shuffle,
                    p_drop: 0.9,
                    seed: 4,
                },
            );
            let (back, rep) = parse_many(&text);
            assert_eq!(rep.blocks, 200);
            if style == TextStyle::Flat {
                // without layer lines a parent is guessed by name: structure may differ,
                // but every block is a valid graph with the same edges
                assert_eq!(back.num_spans(), set.num_spans());
                continue;
            }
            assert_eq!(rep.valid, 200, "{style:?} {shuffle}: {:?}", rep.invalid);
            for (a, b) in set.graphs.iter().zip(&back.graphs) {
                assert_eq!(a.spans.len(), b.spans.len());
                assert_eq!(a.max_depth(), b.max_depth());
                for (x, y) in a.spans.iter().zip(&b.spans) {
                    assert_eq!(set.name(x.dm), back.name(y.dm));
                    assert_eq!(x.call_type, y.call_type);
                    assert_eq!(x.rpc_id, y.rpc_id);
                }
            }
        }
    }
    let text = encode_set(&set, &TextOptions::default());
    assert!(
        text.contains("Thoughts: num generated edges = the last edge id - the first edge id + 1")
    );
    assert!(text.contains("Child's remaining depth = current remaining depth - 1"));
    // invalid LLM output is counted, not a crash
    let junk = "<graph>\nEdge ID is 1, Source is A, Destination is B, Type is rpc\nEdge ID is 1, Source is B, Destination is C\n</graph>\n<graph>hello</graph>\n<graph>\nEdge ID is 1, Source is A, Destination is B\n<layer> Parent Edge is 7\nEdge ID is 2, Source is B, Destination is C\n</graph>";
    let (ok, rep) = parse_many(junk);
    assert_eq!((rep.blocks, rep.valid), (3, 0));
    assert!(ok.graphs.is_empty());
    assert_eq!(rep.invalid.get("duplicate_edge_id"), Some(&1));
    assert_eq!(rep.invalid.get("no_edges"), Some(&1));
    assert_eq!(rep.invalid.get("unknown_parent_edge"), Some(&1));
}

#[test]
fn fidelity_against_the_v2022_sample() {
    let s = sample();
    let (train, test) = split_halves(&s);
    let n = test.graphs.len();
    let o = FidelityOptions::default();
    let rec_model = RecursiveModel::fit(&train).unwrap();
    let rec = RecursiveGenerator::new(&rec_model, 1).generate(n * 10);
    let luo = LuoGenerator::new(LuoTables::embedded(), 1)
        .with_marginals(ServiceMarginals::fit(&train))
        .generate(n * 10);
    let r_rec = compare(&test, &rec, &train, &o);
    let r_luo = compare(&test, &luo, &train, &o);
    let r_half = compare(&test, &train, &train, &o);
    println!(
        "{}",
        replay::fidelity::to_table(&[("recursive", &r_rec), ("luo", &r_luo), ("half", &r_half)])
    );
    assert_eq!(r_rec.validity_rate, 1.0);
    assert_eq!(r_luo.validity_rate, 1.0);
    assert!(
        r_half.validity_rate < 1.0,
        "real traces violate ms-granular containment"
    );
    assert_eq!(
        r_half.memorisation_rate, 1.0,
        "the training half is its own memory"
    );
    // the recursive generator reproduces the call distribution and the response times
    // much better than the probabilistic baseline (for every seed tried). The degree EMDs do not separate them: without
    // the placeholder names (UNKNOWN, USER; see `replay::fidelity`) both are at the
    // real-vs-real noise level (~0.005 on this sample) and their order depends on the
    // seed for in-degree; out-degree favours Luo, whose larger graphs stretch the pooled
    // range the EMD is divided by.
    assert!(
        r_rec.kl_popular_calls < r_luo.kl_popular_calls,
        "{} {}",
        r_rec.kl_popular_calls,
        r_luo.kl_popular_calls
    );
    assert!(
        r_rec.emd_response_time < r_luo.emd_response_time,
        "{} {}",
        r_rec.emd_response_time,
        r_luo.emd_response_time
    );
    for r in [&r_rec, &r_luo] {
        assert!(r.emd_in_degree < 0.01 && r.emd_out_degree < 0.01, "{r:?}");
    }
    assert!(r_luo.memorisation_rate < r_rec.memorisation_rate);
    for r in [&r_rec, &r_luo, &r_half] {
        assert!(r.kl_popular_calls.is_finite() && r.kl_popular_calls >= 0.0);
        for h in &r.heavy_hitters {
            assert!((0.0..=1.0).contains(&h.accuracy));
        }
    }
    let json = serde_json::to_string(&r_rec).unwrap();
    let back: replay::fidelity::FidelityReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r_rec);
    let _ = csv(&rec);
}

#[test]
fn emd_and_kl_basics() {
    use replay::fidelity::normalised_emd;
    assert_eq!(normalised_emd(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
    assert!((normalised_emd(&[0.0], &[1.0]) - 1.0).abs() < 1e-12);
    assert!((normalised_emd(&[0.0, 0.0, 1.0, 1.0], &[0.0, 1.0, 1.0, 1.0]) - 0.25).abs() < 1e-12);
    let s = sample();
    assert!(replay::fidelity::kl_popular_calls(&s, &s, 100).abs() < 1e-12);
}

#[test]
fn an_empty_side_scores_the_worst_emd() {
    use replay::fidelity::{EMD_EMPTY_SIDE, normalised_emd};
    assert_eq!(EMD_EMPTY_SIDE, 1.0);
    assert_eq!(normalised_emd(&[], &[1.0, 2.0]), 1.0);
    assert_eq!(normalised_emd(&[1.0], &[]), 1.0);
    assert_eq!(normalised_emd(&[], &[]), 1.0);
    assert_eq!(normalised_emd(&[f64::NAN], &[1.0]), 1.0, "no finite value");
    let real = sample();
    let o = FidelityOptions::default();
    let empty = compare(&real, &TraceSet::new(), &real, &o);
    assert_eq!(
        (
            empty.emd_in_degree,
            empty.emd_out_degree,
            empty.emd_response_time
        ),
        (1.0, 1.0, 1.0)
    );
    assert_eq!(
        compare(&TraceSet::new(), &real, &real, &o).emd_response_time,
        1.0
    );
    // ranked by EMD (lower is better), the empty set comes after a real generator
    let (train, test) = split_halves(&real);
    let luo = LuoGenerator::new(LuoTables::embedded(), 1)
        .with_marginals(ServiceMarginals::fit(&train))
        .generate(200);
    let r_luo = compare(&test, &luo, &train, &o);
    let r_empty = compare(&test, &TraceSet::new(), &train, &o);
    let mut ranked = [("empty", &r_empty), ("luo", &r_luo)];
    ranked.sort_by(|a, b| a.1.emd_out_degree.total_cmp(&b.1.emd_out_degree));
    assert_eq!(ranked[0].0, "luo");
    assert!(r_luo.emd_in_degree <= r_empty.emd_in_degree);
    assert!(r_luo.emd_response_time <= r_empty.emd_response_time);
}

#[test]
fn luo_with_empty_marginals_falls_back_to_the_tables() {
    let plain = LuoGenerator::new(LuoTables::embedded(), 1).generate(5);
    let empty = LuoGenerator::new(LuoTables::embedded(), 1)
        .with_marginals(ServiceMarginals::default())
        .generate(5);
    assert_eq!(store_bytes(&plain), store_bytes(&empty));
    // marginals fitted to an empty sample are empty too
    let fitted = LuoGenerator::new(LuoTables::embedded(), 1)
        .with_marginals(ServiceMarginals::fit(&TraceSet::new()))
        .generate(5);
    assert_eq!(store_bytes(&plain), store_bytes(&fitted));
    assert!(ServiceMarginals::default().is_empty());
    assert!(!ServiceMarginals::fit(&sample()).is_empty());
    // sampling from empty marginals directly gives the documented UNKNOWN / 0
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let m = ServiceMarginals::default();
    assert_eq!(
        m.sample_callee(&mut rng, 3, CallType::Rpc),
        (replay::Sym::UNKNOWN, replay::Sym::UNKNOWN)
    );
    assert_eq!(m.sample_duration(&mut rng, CallType::Rpc), 0);
    assert_eq!(m.sample_service(&mut rng), replay::Sym::UNKNOWN);
}
