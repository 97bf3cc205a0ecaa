//! Fidelity of the synthetic generators against the real Alibaba v2022 samples (the seed
//! paper's §5.2 metrics).
//!
//! For each sample, the rebuilt graphs are split in half (even / odd positions). The
//! "train" half fits the generators (recursive model; names and latencies of Luo) and is
//! the memorisation reference; the "test" half is the real distribution compared with.
//! Each generator makes 10 x |test| graphs. The "real half" column compares the train
//! half itself with the test half: the ceiling a perfect generator of this sample size
//! would reach (its memorisation is 1 by construction).
//!
//! `cargo run --release -p replay --example fidelity_report [-- --json]`

use replay::fidelity::{FidelityOptions, compare, split_halves, to_table};
use replay::generate::ServiceMarginals;
use replay::generate::luo::{LuoGenerator, LuoTables};
use replay::generate::recursive::{RecursiveGenerator, RecursiveModel};
use replay::{Format, ReadOptions, read_bytes};

const SAMPLES: [(&str, &str); 2] = [
    (
        "casper_2022_shuffled_sample_traces_small.csv",
        include_str!("../tests/data/alibaba/casper_2022_shuffled_sample_traces_small.csv"),
    ),
    (
        "v2022_CallGraph0_casper_naive_accurate_sample.csv",
        include_str!("../tests/data/alibaba/v2022_CallGraph0_casper_naive_accurate_sample.csv"),
    ),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let json = std::env::args().any(|a| a == "--json");
    let opts = FidelityOptions::default();
    let mut all = Vec::new();
    for (name, text) in SAMPLES {
        let (set, rep) = read_bytes(
            name,
            text.as_bytes(),
            Format::AlibabaV2022,
            ReadOptions::default(),
        )?;
        let (train, test) = split_halves(&set);
        let n = test.graphs.len() * 10;
        let model = RecursiveModel::fit(&train)?;
        let rec = RecursiveGenerator::new(&model, 1).generate(n);
        let luo = LuoGenerator::new(LuoTables::embedded(), 1)
            .with_marginals(ServiceMarginals::fit(&train))
            .generate(n);
        let r_rec = compare(&test, &rec, &train, &opts);
        let r_luo = compare(&test, &luo, &train, &opts);
        let r_half = compare(&test, &train, &train, &opts);
        if json {
            all.push(serde_json::json!({
                "sample": name, "train_graphs": train.graphs.len(), "test_graphs": test.graphs.len(),
                "recursive": r_rec, "luo": r_luo, "real_half": r_half,
            }));
        } else {
            println!(
                "sample {name}: {} rows -> {} graphs; train {} / test {} graphs; {} synthetic graphs per generator",
                rep.rows,
                set.graphs.len(),
                train.graphs.len(),
                test.graphs.len(),
                n
            );
            println!(
                "{}",
                to_table(&[
                    ("recursive", &r_rec),
                    ("luo", &r_luo),
                    ("real half", &r_half)
                ])
            );
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(())
}
