//! Prompt rendering: DIME's system prompt + observation JSON, and a generic text format for
//! any topology. Rendering is deterministic (keys in a fixed order, numbers formatted by
//! `serde_json`) and lazy: nothing is rendered unless a text policy asks.

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

/// The keys of DIME's GRPO training prompts (spec §7), in that order.
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

/// DIME's prompt: its system prompt, and the observation JSON with its training keys.
pub fn dime_prompt(obs: &Observation) -> ChatPrompt {
    let full = dime_observation_json(obs);
    let mut out = String::from("{\n");
    for (i, k) in DIME_PROMPT_KEYS.iter().enumerate() {
        let v = full.get(*k).cloned().unwrap_or(Value::Null);
        out.push_str(&format!(
            "  \"{k}\": {}",
            serde_json::to_string(&v).unwrap_or_default()
        ));
        out.push_str(if i + 1 < DIME_PROMPT_KEYS.len() {
            ",\n"
        } else {
            "\n"
        });
    }
    out.push('}');
    ChatPrompt {
        system: DIME_SYSTEM_PROMPT.into(),
        user: format!("Current system state:\n{out}\nWhat action should be taken?"),
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
