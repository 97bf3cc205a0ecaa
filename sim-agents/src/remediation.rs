//! A remediation loop in the spirit of MicroRemed's ThinkRemed: coordinator -> probe ->
//! execution -> verification, bounded by `t_max` trials, generic over a text generator.
//!
//! Each trial: the **coordinator** sees the observation and names what to look at; the
//! **probe** phase runs up to `probes` query commands (their answers arrive in the next
//! observation); the **execution** phase asks for one remediation command and applies it; the
//! **verification** phase lets `verify_steps` decision intervals pass and asks sim-faults'
//! remediation verdict whether the system has recovered *now*: the W scrape windows just before
//! the verification time must meet the SLOs and the throughput requirement, and windows before
//! the first executed remediation command do not count ([`sim_faults::VerdictSpan`]), so a
//! healthy stretch that ended before verification, or one before the agent acted, is no
//! success. Unlike MicroRemed, the root cause is not handed to the agent unless
//! `reveal_root_cause` is set (then the prompts name it and the observations' `task_hint` is
//! the scenario's description; otherwise the hint is vague: [`crate::env::task_hint`]).

use crate::action::{Action, ActionKind};
use crate::env::{Env, EnvOptions};
use crate::error::AgentError;
use crate::policy::{TextGenerator, TextPolicy};
use crate::render::{ChatPrompt, PromptFormat, prompt};
use crate::report::first_fault_start;
use serde::{Deserialize, Serialize};
use sim_faults::{FaultScenario, VerdictSpan, remediation_verdict};

/// Settings of the loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemediationConfig {
    /// Most trials (T_max), at least 1: [`remediate`] refuses 0. Default 3.
    pub t_max: u32,
    /// Most probe (query) commands per trial. Default 2.
    pub probes: u32,
    /// Decision intervals waited before verifying. Default 3.
    pub verify_steps: u32,
    /// Tell the agent the root cause (MicroRemed's setting): the prompts name the root-cause
    /// services and fault types, and the observations' `task_hint` is the scenario's
    /// description ([`EnvOptions::reveal_root_cause`]). Default false.
    pub reveal_root_cause: bool,
    /// The prompt format. Default generic.
    pub format: PromptFormat,
}

impl Default for RemediationConfig {
    fn default() -> Self {
        RemediationConfig {
            t_max: 3,
            probes: 2,
            verify_steps: 3,
            reveal_root_cause: false,
            format: PromptFormat::Generic,
        }
    }
}

/// What the loop did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemediationReport {
    /// The scenario.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The remediation verdict at the end of a trial's verification said recovered: the W
    /// windows just before that time, all after the first executed remediation command, were
    /// healthy (and, where the scenario requires it, its faults were over).
    pub success: bool,
    /// Trials used.
    pub trials: u32,
    /// When recovered: time from the first fault's start to the start of the final healthy run
    /// (the consecutive SLO-meeting windows that last until verification; it may begin before
    /// the first command when the SLOs already held then), s.
    pub time_to_recover_s: Option<f64>,
    /// The verdict's reason.
    pub reason: String,
    /// Prompts sent.
    pub prompts: u32,
    /// Characters (Unicode scalar values, not bytes) of all prompts, system and user messages.
    pub prompt_chars: usize,
    /// Characters (Unicode scalar values, not bytes) of all completions.
    pub completion_chars: usize,
    /// The commands applied, in order.
    pub commands: Vec<String>,
}

fn ask(generator: &mut dyn TextGenerator, p: ChatPrompt, rep: &mut RemediationReport) -> String {
    rep.prompts += 1;
    rep.prompt_chars += p.char_count();
    let out = generator
        .generate(std::slice::from_ref(&p))
        .pop()
        .unwrap_or_default();
    rep.completion_chars += out.chars().count();
    out
}

/// Runs the loop on one scenario and seed. Errors if the scenario does not build or
/// `cfg.t_max` is 0.
pub fn remediate(
    scenario: &FaultScenario,
    seed: u64,
    generator: &mut dyn TextGenerator,
    cfg: &RemediationConfig,
) -> Result<RemediationReport, AgentError> {
    if cfg.t_max == 0 {
        return Err(AgentError::Invalid {
            what: "t_max",
            why: "must be at least 1 (the most trials the loop may run)".into(),
        });
    }
    let options = EnvOptions {
        reveal_root_cause: cfg.reveal_root_cause,
        ..EnvOptions::default()
    };
    let mut env = Env::try_new(scenario.clone(), options)?;
    let mut obs = env.reset(seed);
    let mut rep = RemediationReport {
        scenario: scenario.name.clone(),
        seed,
        success: false,
        trials: 0,
        time_to_recover_s: None,
        reason: "no trial ran".into(),
        prompts: 0,
        prompt_chars: 0,
        completion_chars: 0,
        commands: vec![],
    };
    // wait for the fault to start
    let start = first_fault_start(env.episode());
    while env.episode().now() < start && !env.is_over() {
        obs = env.step(Action::NoOp).observation;
    }
    let hint = if cfg.reveal_root_cause {
        let gt = env.ground_truth();
        format!(
            "\nRoot cause: {:?} ({:?}).",
            gt.root_cause_services, gt.fault_types
        )
    } else {
        String::new()
    };
    // when the first remediation command was applied: windows before it do not count
    let mut first_command: Option<u64> = None;
    for trial in 1..=cfg.t_max {
        if env.is_over() {
            break;
        }
        rep.trials = trial;
        // coordinator + probes
        for k in 0..cfg.probes {
            let mut p = prompt(&obs, cfg.format);
            p.user = format!(
                "Trial {trial}, probe {}: reply with one query command (kubectl logs / kubectl top / query traces) or no_op to stop probing.{hint}\n{}",
                k + 1,
                p.user
            );
            let text = ask(generator, p, &mut rep);
            let a = TextPolicy::<crate::policy::OracleTextGenerator>::parse(&text);
            if a.kind() != ActionKind::Query || env.is_over() {
                break;
            }
            rep.commands.push(a.to_command());
            obs = env.step(a).observation;
        }
        if env.is_over() {
            break;
        }
        // execution
        let mut p = prompt(&obs, cfg.format);
        p.user = format!(
            "Trial {trial}, execution: reply with one remediation command.{hint}\n{}",
            p.user
        );
        let text = ask(generator, p, &mut rep);
        let a = TextPolicy::<crate::policy::OracleTextGenerator>::parse(&text);
        rep.commands.push(a.to_command());
        let from = *first_command.get_or_insert(env.episode().now());
        obs = env.step(a).observation;
        // verification
        for _ in 0..cfg.verify_steps {
            if env.is_over() {
                break;
            }
            obs = env.step(Action::NoOp).observation;
        }
        let healthy = env.counterfactual();
        let span = VerdictSpan::new(start, env.episode().now()).with_from(from);
        let v = remediation_verdict(env.episode(), &healthy, span);
        rep.reason = v.reason.clone();
        if v.recovered {
            rep.success = true;
            rep.time_to_recover_s = v.time_to_recover.map(|t| t as f64 / 1e9);
            break;
        }
    }
    Ok(rep)
}
