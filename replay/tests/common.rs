//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use replay::{Format, QualityReport, ReadOptions, TraceSet};

/// Path of a file under `replay/tests/data`.
pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// Reads one test file in the given format.
pub fn read(rel: &str, format: Format) -> (TraceSet, QualityReport) {
    let (s, mut r) = replay::read_files(&[data(rel)], format, ReadOptions::default()).expect(rel);
    (s, r.remove(0))
}

/// The Alibaba v2022 CSV text of a set (a name-level rendering for equality checks).
pub fn csv(set: &TraceSet) -> String {
    let mut v = Vec::new();
    replay::export::write_alibaba_v2022(&mut v, set).unwrap();
    String::from_utf8(v).unwrap()
}

/// The OTLP JSON value of a set.
pub fn otlp(set: &TraceSet) -> serde_json::Value {
    replay::export::to_otlp_value(set)
}
