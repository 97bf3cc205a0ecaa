//! # sim-agents: the agent side of blastradius
//!
//! An RL environment over `sim-faults` episodes in Gymnasium's conventions ([`Env`]), typed
//! actions ([`action`]) and a command grammar that turns what an LLM writes into them
//! ([`grammar`]), observations with DIME's fields and generic per-service metrics
//! ([`observation`], [`render`]), rewards as pure functions pinned by property tests
//! ([`rewards`]), the triage oracle ([`oracle`]), batched policies ([`policy`]), batched
//! environments ([`VecEnv`]), GRPO groups ([`grpo`]) and a ThinkRemed-style remediation loop
//! ([`remediation`]).
//!
//! ```no_run
//! use sim_agents::{Env, run_episode, policy_by_name};
//! use sim_faults::FaultScenario;
//!
//! let sc = FaultScenario::builtin("retry-storm").unwrap();
//! let mut oracle = policy_by_name("oracle", 0).unwrap();
//! let report = run_episode(&sc, oracle.as_mut(), 1);
//! println!("return {:.2}, recovered {}", report.return_, report.recovered);
//!
//! // or step by hand, with text
//! let mut env = Env::new(sc);
//! let _obs = env.reset(1);
//! let step = env.step_text("<reasoning>p99 is high</reasoning><action>{\"command\": \"kubectl throttle ingress --rate=0.5\"}</action>");
//! assert!(step.observation.action_errors.is_empty());
//! ```
//!
//! Parsing alone needs no simulation:
//!
//! ```
//! use sim_agents::{grammar::parse_command, action::Action};
//! assert_eq!(parse_command("kubectl delete pod cart-0").unwrap(), Action::RestartPod { target: "cart-0".into() });
//! ```

#![warn(missing_docs)]

pub mod action;
pub mod env;
pub mod error;
pub mod grammar;
pub mod grpo;
#[cfg(feature = "llm")]
pub mod llm;
pub mod observation;
mod observe;
pub mod oracle;
pub mod policy;
pub mod remediation;
pub mod render;
pub mod report;
pub mod rewards;
pub mod vec_env;

pub use action::{Action, ActionKind, QueryKind, Replicas};
pub use env::{Env, EnvOptions, Step, StepInfo};
pub use error::{ActionError, AgentError};
#[cfg(feature = "llm")]
pub use llm::{LlmConfig, LlmGenerator, LlmPolicy, LlmStats};
pub use observation::Observation;
pub use policy::{
    NoopPolicy, OraclePolicy, Policy, RandomPolicy, TextGenerator, TextPolicy, policy_by_name,
};
pub use report::{EpisodeReport, run_episode, run_episode_against, run_episode_with};
pub use rewards::Reward;
pub use vec_env::VecEnv;
