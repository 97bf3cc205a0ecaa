//! Prompt rendering: DIME's system prompt + observation JSON, and a generic text format for
//! any topology. Rendering is deterministic (keys in a fixed order; the DIME prompt's JSON is
//! byte-identical to Python's `json.dumps(obs, indent=2)`, [`dime_observation_text`]; the full
//! observation JSON, [`dime_observation_json`], is a `serde_json` value) and lazy: nothing is
//! rendered unless a text policy asks.

use crate::observation::Observation;
use serde_json::{Map, Value, json};

/// DIME's system prompt (the model card's, which its GRPO checkpoint was trained with).
pub const DIME_SYSTEM_PROMPT: &str =
    "You are an autonomous SRE agent managing an 8-node Kubernetes cluster.
Node-0 is the PostgreSQL database (SPOF). Nodes 1-7 are stateless workers.

TRIAGE PRIORITY (check in order):
1. OOM: if any node mem > 0.92 → kubectl delete pod node-<i>
2. DB RECOVERY: if node-0 in failed_nodes → kubectl delete pod node-0
3. SPLIT-BRAIN: if io_wait > 0.80 → kubectl throttle ingress --rate=0.5
4. HOT-SHARD: if one worker cpu > 0.90, others low → reroute traffic
5. RETRY STORM: if p99 > 100ms and rr > 150 → kubectl throttle ingress --rate=0.4
6. ZOMBIE NODE: if worker cpu near 0 → reroute away from it
7. BLACK SWAN: if 2+ nodes failed (DB alive) → kubectl throttle ingress --rate=0.3
8. DB STRESS: if node-0 cpu > 0.80 → kubectl throttle ingress --rate=0.7
9. SAFE SCALE: if avg worker cpu > 0.75 and budget > 20 → scale up
10. HEALTHY → no_op

Output format:
<reasoning>One sentence identifying which rule applies.</reasoning>
<action>{\"command\": \"kubectl ...\"}</action>";

/// The system prompt of the generic format.
pub const GENERIC_SYSTEM_PROMPT: &str =
    "You are an SRE agent operating a microservice system. Each turn you see the \
system's metrics, alerts, and the answers to your last queries. Reply with one command.

Commands:
  kubectl delete pod <pod>                       restart a pod (its deployment replaces it)
  kubectl restart node <node>                    reboot a node
  kubectl rollout restart deployment/<service>   restart every pod of a deployment
  kubectl scale deployment/<service> --replicas=<n>
  kubectl rollout undo deployment/<service>      roll back to the previous config version
  kubectl exec -it istio-proxy -- traffic shift --from=<pod|node> --to=<pod|node>
  kubectl throttle ingress --rate=<0..1>         admit only this share of the traffic
  kubectl logs <target> | kubectl top <target> | query traces <target>
  no_op

Output format:
<reasoning>One sentence.</reasoning>
<action>{\"command\": \"...\"}</action>";

/// A chat prompt: a system message and a user message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatPrompt {
    /// System message.
    pub system: String,
    /// User message.
    pub user: String,
}

impl ChatPrompt {
    /// Both messages in one string (for models without a chat template).
    pub fn flat(&self) -> String {
        format!("{}\n\n{}", self.system, self.user)
    }

    /// Its size in characters (Unicode scalar values, not bytes): system plus user message.
    pub fn char_count(&self) -> usize {
        self.system.chars().count() + self.user.chars().count()
    }
}

/// Which prompt format a text policy sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PromptFormat {
    /// DIME's system prompt and observation JSON (the keys of DIME's training prompts).
    #[default]
    Dime,
    /// The generic format ([`generic_user_message`]).
    Generic,
}

/// Renders an observation as a chat prompt in the given format.
pub fn prompt(obs: &Observation, format: PromptFormat) -> ChatPrompt {
    match format {
        PromptFormat::Dime => dime_prompt(obs),
        PromptFormat::Generic => ChatPrompt {
            system: GENERIC_SYSTEM_PROMPT.into(),
            user: generic_user_message(obs),
        },
    }
}

fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// DIME's `prometheus_metrics` list for an observation (spec §2).
pub fn prometheus_metrics(obs: &Observation) -> Vec<Value> {
    let ts = 30 * obs.step as u64;
    let mut out = Vec::new();
    for (i, n) in obs.nodes.iter().enumerate() {
        let labels = json!({"node": format!("worker-{i}"), "name": n.name});
        if n.visible {
            for (m, v) in [
                (
                    "node_cpu_utilization",
                    num((obs.cpu_loads[i] * 1e4).round() / 1e4),
                ),
                (
                    "node_memory_utilization",
                    num((obs.mem_utilizations[i] * 1e4).round() / 1e4),
                ),
                ("node_queue_depth", json!(obs.queue_lengths[i])),
            ] {
                out.push(json!({"metric": m, "labels": labels, "value": v, "timestamp": ts}));
            }
        } else {
            out.push(json!({"metric": "node_scrape_error", "labels": labels, "value": 1, "timestamp": ts}));
        }
    }
    for (m, v) in [
        ("cluster_latency_ms", obs.latency_ms),
        ("cluster_p99_latency_ms", obs.p99_latency),
        ("db_node_0_io_wait", obs.io_wait),
        ("cluster_request_rate", obs.request_rate),
        ("cluster_error_budget", obs.error_budget),
        ("cluster_cloud_budget", obs.cloud_budget as f64),
    ] {
        out.push(json!({"metric": m, "labels": {}, "value": num(v), "timestamp": ts}));
    }
    out
}

/// The observation with exactly DIME's keys (spec §2), `reward`/`done`/`metadata` excluded.
pub fn dime_observation_json(obs: &Observation) -> Value {
    let mut m = Map::new();
    m.insert("cpu_loads".into(), json!(obs.cpu_loads));
    m.insert("mem_utilizations".into(), json!(obs.mem_utilizations));
    m.insert("queue_lengths".into(), json!(obs.queue_lengths));
    m.insert("failed_nodes".into(), json!(obs.failed_nodes));
    m.insert("latency_ms".into(), num(obs.latency_ms));
    m.insert("request_rate".into(), num(obs.request_rate));
    m.insert("io_wait".into(), num(obs.io_wait));
    m.insert("p99_latency".into(), num(obs.p99_latency));
    m.insert("error_budget".into(), num(obs.error_budget));
    m.insert("request_rate_norm".into(), num(obs.request_rate_norm));
    m.insert("p99_latency_norm".into(), num(obs.p99_latency_norm));
    m.insert("step".into(), json!(obs.step));
    m.insert("task_hint".into(), json!(obs.task_hint));
    m.insert("task_score".into(), num(obs.task_score));
    let ts: Map<String, Value> = obs
        .telemetry_status
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    m.insert("telemetry_status".into(), Value::Object(ts));
    m.insert("action_errors".into(), json!(obs.action_errors));
    m.insert("cloud_budget".into(), json!(obs.cloud_budget));
    m.insert(
        "prometheus_metrics".into(),
        Value::Array(prometheus_metrics(obs)),
    );
    Value::Object(m)
}

/// The keys of DIME's GRPO training prompts (spec §7), in that order: the key list of
/// `_obs_to_dict` in DIME's `train_grpo_unsloth.py`, whose dict keeps that order.
pub const DIME_PROMPT_KEYS: [&str; 13] = [
    "cpu_loads",
    "mem_utilizations",
    "queue_lengths",
    "failed_nodes",
    "latency_ms",
    "request_rate",
    "io_wait",
    "p99_latency",
    "error_budget",
    "step",
    "task_hint",
    "action_errors",
    "cloud_budget",
];

/// A value as Python's `json` module prints it.
enum PyJson<'a> {
    Int(i64),
    Float(f64),
    Str(&'a str),
    List(Vec<PyJson<'a>>),
}

impl PyJson<'_> {
    /// Appends `json.dumps(self, indent=2)` at nesting `level` (Python's layout: one item per
    /// line indented by two spaces per level, items separated by `,` at the line end, empty
    /// lists as `[]`).
    fn write(&self, out: &mut String, level: usize) {
        match self {
            PyJson::Int(i) => out.push_str(&i.to_string()),
            PyJson::Float(x) => out.push_str(&python_float_repr(*x)),
            PyJson::Str(s) => out.push_str(&python_json_string(s)),
            PyJson::List(items) if items.is_empty() => out.push_str("[]"),
            PyJson::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, level + 1);
                    v.write(out, level + 1);
                }
                newline(out, level);
                out.push(']');
            }
        }
    }
}

/// A line break and the indent of nesting `level` (two spaces a level).
fn newline(out: &mut String, level: usize) {
    out.push('\n');
    for _ in 0..level {
        out.push_str("  ");
    }
}

/// `repr(x)` of a Python float, as `json.dumps` prints it: the shortest digits that read back
/// as `x`, with a `.0` on integral values (`1.0`), scientific notation below 1e-4 and from
/// 1e16 on (`1e-05`, `1e+16`: a signed exponent of at least two digits), and `NaN`,
/// `Infinity`, `-Infinity` for the non-finite values (`json.dumps` allows them by default).
///
/// ```
/// use sim_agents::render::python_float_repr;
/// assert_eq!(python_float_repr(1.0), "1.0");
/// assert_eq!(python_float_repr(0.1), "0.1");
/// assert_eq!(python_float_repr(1e-5), "1e-05");
/// assert_eq!(python_float_repr(1e16), "1e+16");
/// assert_eq!(python_float_repr(123456789.5), "123456789.5");
/// ```
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `d[.ddd]e<exp>`
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if x < 0.0 { "-" } else { "" };
    // Python's float_repr_style 'short': scientific when exp < -4 or exp >= 16
    if !(-4..16).contains(&exp) {
        let e_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{e_sign}{:02}", exp.unsigned_abs());
    }
    let n = digits.len() as i32;
    let body = if exp < 0 {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    } else if exp + 1 >= n {
        format!("{digits}{}.0", "0".repeat((exp + 1 - n) as usize))
    } else {
        let (a, b) = digits.split_at((exp + 1) as usize);
        format!("{a}.{b}")
    };
    format!("{sign}{body}")
}

/// A string as Python's `json.dumps` prints it (`ensure_ascii=True`): `"` and `\` escaped,
/// `\b \f \n \r \t` as such, other characters outside printable ASCII (`' '..='~'`) as
/// `\uXXXX` (lowercase hex; UTF-16 surrogate pairs above U+FFFF).
///
/// ```
/// use sim_agents::render::python_json_string;
/// assert_eq!(python_json_string("a\"b\n€"), "\"a\\\"b\\n\\u20ac\"");
/// ```
pub fn python_json_string(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
    out
}

/// The observation part of DIME's prompt: byte for byte what Python's
/// `json.dumps(obs, indent=2)` prints for the dict of [`DIME_PROMPT_KEYS`] (in that order) with
/// this observation's values. Floats print as Python's `repr` ([`python_float_repr`]), strings
/// with `ensure_ascii` ([`python_json_string`]), each list item on its own line.
pub fn dime_observation_text(obs: &Observation) -> String {
    let floats = |v: &[f64]| PyJson::List(v.iter().map(|x| PyJson::Float(*x)).collect());
    let values: [PyJson<'_>; 13] = [
        floats(&obs.cpu_loads),
        floats(&obs.mem_utilizations),
        PyJson::List(obs.queue_lengths.iter().map(|q| PyJson::Int(*q)).collect()),
        PyJson::List(
            obs.failed_nodes
                .iter()
                .map(|n| PyJson::Int(i64::from(*n)))
                .collect(),
        ),
        PyJson::Float(obs.latency_ms),
        PyJson::Float(obs.request_rate),
        PyJson::Float(obs.io_wait),
        PyJson::Float(obs.p99_latency),
        PyJson::Float(obs.error_budget),
        PyJson::Int(i64::from(obs.step)),
        PyJson::Str(&obs.task_hint),
        PyJson::List(obs.action_errors.iter().map(|e| PyJson::Str(e)).collect()),
        PyJson::Int(obs.cloud_budget),
    ];
    let mut out = String::from("{");
    for (i, (k, v)) in DIME_PROMPT_KEYS.iter().zip(&values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("\n  ");
        out.push_str(&python_json_string(k));
        out.push_str(": ");
        v.write(&mut out, 1);
    }
    out.push_str("\n}");
    out
}

/// DIME's prompt (the model card's): its system prompt, and a user message with the
/// observation JSON of DIME's training keys laid out as `json.dumps(obs, indent=2)`
/// ([`dime_observation_text`]):
/// `Current system state:\n{json}\nWhat action should be taken?`.
pub fn dime_prompt(obs: &Observation) -> ChatPrompt {
    ChatPrompt {
        system: DIME_SYSTEM_PROMPT.into(),
        user: format!(
            "Current system state:\n{}\nWhat action should be taken?",
            dime_observation_text(obs)
        ),
    }
}

/// The generic user message: services, nodes, alerts, query answers, budgets.
pub fn generic_user_message(obs: &Observation) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "t={:.0}s step={} entry={} offered={:.1} rps availability={:.4} p50={:.1}ms p99={:.1}ms (objective {:.0}ms) throttle={} error_budget={:.1} cloud_budget={}",
        obs.time_ns as f64 / 1e9,
        obs.step,
        obs.entry_service,
        obs.request_rate,
        obs.availability,
        obs.latency_ms,
        obs.p99_latency,
        obs.p99_objective_ms,
        obs.throttle,
        obs.error_budget,
        obs.cloud_budget
    );
    s.push_str("services:\n");
    for m in &obs.services {
        let _ = writeln!(
            s,
            "  {} ({:?}) ready {}/{} v{} rps {:.1} err {:.4} p99 {:.1}ms cpu {:.2} mem {:.2} queue {}",
            m.name,
            m.kind,
            m.ready_pods,
            m.desired_replicas,
            m.config_version,
            m.rps,
            m.error_rate,
            m.p99_ms,
            m.cpu,
            m.memory,
            m.queue
        );
    }
    s.push_str("nodes:\n");
    for n in &obs.nodes {
        if n.visible {
            let _ = writeln!(
                s,
                "  {} up={} cpu {:.2} mem {:.2} io {:.2}",
                n.name, n.up, n.cpu, n.memory, n.io
            );
        } else {
            let _ = writeln!(s, "  {} up={} telemetry timeout", n.name, n.up);
        }
    }
    let bad: Vec<_> = obs.pods.iter().filter(|p| !p.ready).collect();
    if !bad.is_empty() {
        s.push_str("pods not ready:\n");
        for p in bad {
            let _ = writeln!(s, "  {} {:?} restarts {}", p.name, p.phase, p.restarts);
        }
    }
    if obs.alerts.is_empty() {
        s.push_str("alerts: none\n");
    } else {
        s.push_str("alerts:\n");
        for a in &obs.alerts {
            let _ = writeln!(
                s,
                "  {} {} = {:.3} (threshold {:.3})",
                a.service, a.metric, a.value, a.threshold
            );
        }
    }
    for q in &obs.query_results {
        let _ = writeln!(s, "{} {}:", q.kind.as_str(), q.target);
        for l in &q.lines {
            let _ = writeln!(s, "  {l}");
        }
    }
    if !obs.action_errors.is_empty() {
        let _ = writeln!(s, "last action errors: {}", obs.action_errors.join("; "));
    }
    s.push_str("What action should be taken?");
    s
}
