//! Policies: batched, `act(&[Observation]) -> Vec<Action>`.
//!
//! Built in: [`NoopPolicy`], [`RandomPolicy`] (seeded ChaCha8), [`OraclePolicy`] (the
//! [triage oracle](crate::oracle)), and [`TextPolicy`], the adapter through which a language
//! model acts (observation -> prompt -> text -> parsed action); the LLM policy implements
//! [`TextGenerator`] and plugs in there.
//!
//! ```
//! use sim_agents::policy::{policy_by_name, Policy};
//! use sim_agents::observation::Observation;
//! let mut p = policy_by_name("oracle", 0).unwrap();
//! let acts = p.act(&[Observation::empty(), Observation::empty()]);
//! assert_eq!(acts.len(), 2);
//! ```

use crate::action::{Action, QueryKind, Replicas};
use crate::error::AgentError;
use crate::grammar;
use crate::observation::Observation;
use crate::render::{ChatPrompt, PromptFormat, prompt};
use rand_chacha::ChaCha8Rng;
use sim_core::rng::below;
use sim_core::rng::{StreamKind, stream};

/// A batched policy.
pub trait Policy: Send {
    /// Name (`noop`, `random`, `oracle`, ...).
    fn name(&self) -> &str;
    /// One action per observation, in order.
    fn act(&mut self, obs: &[Observation]) -> Vec<Action>;
}

/// Names [`policy_by_name`] knows.
pub const POLICY_NAMES: [&str; 3] = ["noop", "random", "oracle"];

/// A policy by name: `noop`, `random` (seeded by `seed`) or `oracle`.
pub fn policy_by_name(name: &str, seed: u64) -> Result<Box<dyn Policy>, AgentError> {
    match name {
        "noop" | "no_op" | "no-op" => Ok(Box::new(NoopPolicy)),
        "random" => Ok(Box::new(RandomPolicy::new(seed))),
        "oracle" | "triage" => Ok(Box::new(OraclePolicy)),
        _ => Err(AgentError::UnknownPolicy {
            name: name.into(),
            known: POLICY_NAMES.join(", "),
        }),
    }
}

/// Always no-op.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopPolicy;

impl Policy for NoopPolicy {
    fn name(&self) -> &str {
        "noop"
    }
    fn act(&mut self, obs: &[Observation]) -> Vec<Action> {
        vec![Action::NoOp; obs.len()]
    }
}

/// The triage oracle.
#[derive(Clone, Copy, Debug, Default)]
pub struct OraclePolicy;

impl Policy for OraclePolicy {
    fn name(&self) -> &str {
        "oracle"
    }
    fn act(&mut self, obs: &[Observation]) -> Vec<Action> {
        obs.iter().map(|o| crate::oracle::triage(o).1).collect()
    }
}

/// A seeded uniform choice over the action types (DIME's `RandomAgent`, with this crate's
/// larger action set): no-op, restart a pod, restart a node, scale a deployment up by one,
/// throttle at 0.3/0.5/0.7/1.0, reroute between two nodes, roll back a deployment, query logs.
#[derive(Clone, Debug)]
pub struct RandomPolicy {
    rng: ChaCha8Rng,
}

impl RandomPolicy {
    /// A random policy for a seed (ChaCha8, the `External` stream of `sim_core::rng`).
    pub fn new(seed: u64) -> RandomPolicy {
        RandomPolicy {
            rng: stream(seed, StreamKind::External, 0x7A4D_0000),
        }
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> Option<&'a T> {
        if xs.is_empty() {
            None
        } else {
            Some(&xs[below(&mut self.rng, xs.len() as u32) as usize])
        }
    }

    /// One random action for one observation.
    pub fn sample(&mut self, o: &Observation) -> Action {
        let k = below(&mut self.rng, 8);
        let a = match k {
            1 => self.pick(&o.pods).map(|p| Action::RestartPod {
                target: p.name.clone(),
            }),
            2 => self.pick(&o.nodes).map(|n| Action::RestartNode {
                target: n.name.clone(),
            }),
            3 => self.pick(&o.services).map(|s| Action::Scale {
                target: Some(s.name.clone()),
                replicas: Replicas::Up(1),
            }),
            4 => {
                let r = [0.3, 0.5, 0.7, 1.0][below(&mut self.rng, 4) as usize];
                Some(Action::Throttle { rate: r })
            }
            5 if o.nodes.len() >= 2 => {
                let a = below(&mut self.rng, o.nodes.len() as u32) as usize;
                let mut b = below(&mut self.rng, o.nodes.len() as u32 - 1) as usize;
                if b >= a {
                    b += 1;
                }
                Some(Action::Reroute {
                    from: o.nodes[a].name.clone(),
                    to: o.nodes[b].name.clone(),
                    fraction: 0.3,
                })
            }
            6 => self.pick(&o.services).map(|s| Action::Rollback {
                target: s.name.clone(),
            }),
            7 => self.pick(&o.nodes).map(|n| Action::Query {
                kind: QueryKind::Logs,
                target: n.name.clone(),
            }),
            _ => None,
        };
        a.unwrap_or(Action::NoOp)
    }
}

impl Policy for RandomPolicy {
    fn name(&self) -> &str {
        "random"
    }
    fn act(&mut self, obs: &[Observation]) -> Vec<Action> {
        obs.iter().map(|o| self.sample(o)).collect()
    }
}

/// Something that writes completions for prompts: an LLM (the `llm` feature's GPU policy), a
/// remote endpoint, or a script.
pub trait TextGenerator: Send {
    /// Name.
    fn name(&self) -> &str;
    /// One completion per prompt, in order.
    fn generate(&mut self, prompts: &[ChatPrompt]) -> Vec<String>;
}

/// A text generator that answers with the oracle's command in DIME's training format; for
/// tests and as a reference for the format.
#[derive(Clone, Debug, Default)]
pub struct OracleTextGenerator {
    /// The observations the next prompts were rendered from are not recoverable from the
    /// text, so this generator is fed the observations directly by [`TextPolicy`].
    pending: Vec<Observation>,
}

impl TextGenerator for OracleTextGenerator {
    fn name(&self) -> &str {
        "oracle-text"
    }
    fn generate(&mut self, prompts: &[ChatPrompt]) -> Vec<String> {
        let obs = std::mem::take(&mut self.pending);
        (0..prompts.len())
            .map(|i| {
                let (rule, a) = obs.get(i).map(crate::oracle::triage).unwrap_or((10, Action::NoOp));
                format!(
                    "<reasoning>Rule {rule} applies.</reasoning>\n<action>{{\"command\": \"{}\"}}</action>",
                    a.to_command().replace('"', "'")
                )
            })
            .collect()
    }
}

impl OracleTextGenerator {
    /// Gives the generator the observations behind the next prompts.
    pub fn feed(&mut self, obs: &[Observation]) {
        self.pending = obs.to_vec();
    }
}

/// The text-policy adapter: prompt -> text -> parsed action. A text that does not parse becomes
/// [`Action::Invalid`], which the environment reports in `action_errors`.
pub struct TextPolicy<G: TextGenerator> {
    /// The generator.
    pub generator: G,
    /// The prompt format.
    pub format: PromptFormat,
    /// Prompt sizes (characters, not bytes: system plus user message) of the last batch.
    pub last_prompt_chars: Vec<usize>,
    /// The completions of the last batch.
    pub last_completions: Vec<String>,
    name: String,
}

impl<G: TextGenerator> TextPolicy<G> {
    /// Wraps a generator.
    pub fn new(generator: G, format: PromptFormat) -> TextPolicy<G> {
        let name = format!("text:{}", generator.name());
        TextPolicy {
            generator,
            format,
            last_prompt_chars: vec![],
            last_completions: vec![],
            name,
        }
    }

    /// Parses a completion into an action (an unparsable one into [`Action::Invalid`]).
    pub fn parse(text: &str) -> Action {
        match grammar::parse_command(text) {
            Ok(a) => a,
            Err(e) => Action::Invalid {
                raw: text.chars().take(200).collect(),
                reason: e.to_string(),
            },
        }
    }

    /// Generates the completions for a batch of observations.
    pub fn complete(&mut self, obs: &[Observation]) -> Vec<String> {
        let prompts: Vec<_> = obs.iter().map(|o| prompt(o, self.format)).collect();
        self.last_prompt_chars = prompts.iter().map(ChatPrompt::char_count).collect();
        let out = self.generator.generate(&prompts);
        self.last_completions = out.clone();
        out
    }
}

impl TextPolicy<OracleTextGenerator> {
    /// The oracle, acting through text (exercises prompt rendering and the parser).
    pub fn oracle_text(format: PromptFormat) -> Self {
        TextPolicy::new(OracleTextGenerator::default(), format)
    }
}

impl<G: TextGenerator + 'static> Policy for TextPolicy<G> {
    fn name(&self) -> &str {
        &self.name
    }
    fn act(&mut self, obs: &[Observation]) -> Vec<Action> {
        // let a scripted oracle generator see the observations
        if let Some(g) =
            (&mut self.generator as &mut dyn std::any::Any).downcast_mut::<OracleTextGenerator>()
        {
            g.feed(obs);
        }
        let texts = self.complete(obs);
        let mut acts: Vec<Action> = texts.iter().map(|t| Self::parse(t)).collect();
        acts.resize(
            obs.len(),
            Action::Invalid {
                raw: String::new(),
                reason: "no completion".into(),
            },
        );
        acts
    }
}
