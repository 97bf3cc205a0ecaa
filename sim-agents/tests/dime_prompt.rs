//! DIME-format prompts: byte-identical to Python's `json.dumps(obs, indent=2)` of DIME's
//! training keys, and no root cause in them unless revealing it is asked for.

use sim_agents::action::Action;
use sim_agents::render::{
    DIME_SYSTEM_PROMPT, PromptFormat, dime_prompt, prompt, python_float_repr, python_json_string,
};
use sim_agents::{Env, EnvOptions, Observation};
use sim_faults::{FaultScenario, builtin_names};

/// What Python prints for this observation's dict (checked with CPython 3:
/// `json.dumps(obs, indent=2)`): one item per line, `": "` after keys, `,` at line ends,
/// floats as `repr` (`1.0`, `1e-05`, `1e+16`), non-ASCII as `\uXXXX` (surrogate pairs above
/// U+FFFF), DIME's key order.
const EXPECTED: &str = r#"Current system state:
{
  "cpu_loads": [
    0.45,
    1.0,
    -1.0,
    0.1
  ],
  "mem_utilizations": [
    0.2,
    0.123,
    1e-05,
    0.0001
  ],
  "queue_lengths": [
    12,
    -1
  ],
  "failed_nodes": [],
  "latency_ms": 187.3,
  "request_rate": 1e+16,
  "io_wait": 0.0,
  "p99_latency": 312.5,
  "error_budget": 85.0,
  "step": 4,
  "task_hint": "System is under \"heavy\" load \u00e9\u20ac\ud83d\ude00\\\t",
  "action_errors": [
    "CooldownActive: node-1"
  ],
  "cloud_budget": 8
}
What action should be taken?"#;

#[test]
fn dime_prompt_is_python_json_dumps_indent_2() {
    let mut o = Observation::empty();
    o.cpu_loads = vec![0.45, 1.0, -1.0, 0.1];
    o.mem_utilizations = vec![0.2, 0.123, 1e-5, 1e-4];
    o.queue_lengths = vec![12, -1];
    o.failed_nodes = vec![];
    o.latency_ms = 187.3;
    o.request_rate = 1e16;
    o.io_wait = 0.0;
    o.p99_latency = 312.5;
    o.error_budget = 85.0;
    o.step = 4;
    o.task_hint = "System is under \"heavy\" load é€😀\\\t".into();
    o.action_errors = vec!["CooldownActive: node-1".into()];
    o.cloud_budget = 8;
    let p = dime_prompt(&o);
    assert_eq!(p.system, DIME_SYSTEM_PROMPT);
    assert_eq!(p.user, EXPECTED);
    // failed nodes print one per line too
    o.failed_nodes = vec![0, 3];
    assert!(
        dime_prompt(&o)
            .user
            .contains("\"failed_nodes\": [\n    0,\n    3\n  ],\n")
    );
}

#[test]
fn floats_print_as_python_repr() {
    for (x, py) in [
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.0, "1.0"),
        (-2.5, "-2.5"),
        (100.0, "100.0"),
        (12345.678, "12345.678"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-4, "0.0001"),
        (1.5e-7, "1.5e-07"),
        (1e22, "1e+22"),
        (9999999999999998.0, "9999999999999998.0"),
        (123456789012345678.0, "1.2345678901234568e+17"),
        (5e-324, "5e-324"),
        (f64::MAX, "1.7976931348623157e+308"),
        (f64::NAN, "NaN"),
        (f64::NEG_INFINITY, "-Infinity"),
    ] {
        assert_eq!(python_float_repr(x), py, "{x:e}");
    }
}

/// Whether `text` names `name`: as a whole token (names are made of letters, digits, `-`, `_`
/// and `.`), or, for names with a digit (`node-3`, pod names), anywhere.
fn names(text: &str, name: &str) -> bool {
    let lower = text.to_lowercase();
    let name = name.to_lowercase();
    if name.chars().any(|c| c.is_ascii_digit()) && lower.contains(&name) {
        return true;
    }
    lower
        .split(|c: char| !(c.is_alphanumeric() || "-_.".contains(c)))
        .any(|t| t.trim_end_matches('.') == name)
}

/// Every built-in DIME scenario, stepped past its faults: no DIME-format prompt names a
/// root-cause service, pod or node (the ground truth's), unless the environment reveals the
/// root cause (then the prompt carries the scenario's description). DIME's system prompt is
/// the same text for every scenario (it names node-0 as DIME's database), so the user message
/// is what is checked.
#[test]
fn dime_prompts_do_not_name_the_root_cause_unless_revealed() {
    let dime: Vec<&str> = builtin_names()
        .into_iter()
        .filter(|n| n.starts_with("dime-"))
        .collect();
    assert!(dime.len() >= 15, "{dime:?}");
    let mut revealed_names = 0;
    for name in dime {
        let sc = FaultScenario::builtin(name).unwrap();
        let last_fault = sc.faults.iter().map(|f| f.start.0).max().unwrap_or(0);
        for reveal in [false, true] {
            let opts = EnvOptions {
                reveal_root_cause: reveal,
                ..Default::default()
            };
            let mut env = Env::try_new(sc.clone(), opts).unwrap();
            let mut prompts = vec![prompt(&env.reset(3), PromptFormat::Dime)];
            // past the last fault's start and two more decisions
            while !env.is_over() && env.episode().now() <= last_fault + 2 * env.decision_interval()
            {
                prompts.push(prompt(
                    &env.step(Action::NoOp).observation,
                    PromptFormat::Dime,
                ));
            }
            let gt = env.ground_truth();
            let culprits: Vec<&String> = gt
                .root_cause_services
                .iter()
                .chain(&gt.root_cause_pods)
                .chain(&gt.root_cause_nodes)
                .collect();
            assert!(!culprits.is_empty(), "{name}: {gt:?}");
            for p in &prompts {
                assert_eq!(p.system, DIME_SYSTEM_PROMPT);
                if reveal {
                    assert!(
                        p.user.contains(&python_json_string(&sc.description)),
                        "{name}"
                    );
                    revealed_names += culprits.iter().filter(|c| names(&p.user, c)).count();
                } else {
                    for c in &culprits {
                        assert!(!names(&p.user, c), "{name}: {c} in\n{}", p.user);
                    }
                }
            }
        }
    }
    // the descriptions do name root causes (node-3, node-5, db, app ...)
    assert!(revealed_names > 0);
}

#[test]
fn the_hint_is_vague_and_per_symptom_class() {
    use sim_agents::env::task_hint;
    let hint = |n: &str| task_hint(&FaultScenario::builtin(n).unwrap(), false);
    assert_eq!(
        hint("dime-traffic-spike"),
        "System is under heavy traffic load."
    );
    assert_eq!(hint("dime-node-failure"), "Part of the cluster may fail.");
    assert_eq!(
        hint("dime-black-swan-zone"),
        "Part of the cluster may fail."
    );
    assert_eq!(hint("dime-memory-leak"), "A component may degrade.");
    assert_eq!(hint("dime-zombie-node"), "A component may degrade.");
    let mut calm = FaultScenario::builtin("dime-memory-leak").unwrap();
    calm.faults.clear();
    assert_eq!(task_hint(&calm, false), "Keep the system healthy.");
    let sc = FaultScenario::builtin("dime-zombie-node").unwrap();
    assert_eq!(task_hint(&sc, true), sc.description);
    // the environment's observations carry it
    let mut env = Env::new(sc);
    assert_eq!(env.reset(1).task_hint, "A component may degrade.");
}
