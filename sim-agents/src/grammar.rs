//! The command grammar: what an LLM writes, turned into an [`Action`].
//!
//! [`parse_command`] accepts
//!
//! - every command form DIME's `parse_command` accepts (its patterns P1-P8: `kubectl scale
//!   deployment X --replicas=N`, `aws autoscaling set-desired-capacity ... --desired-capacity N`,
//!   `kubectl delete pod node-3`, `kubectl rollout restart deployment/node-4`,
//!   `kubectl apply -f restart-node-2.yaml`, `kubectl exec -it istio-proxy -- traffic shift
//!   --from=1 --to=3`, `kubectl logs node-2 --tail=50`, `kubectl throttle ingress --rate=0.8`,
//!   `kubectl annotate ingress main --rate=0.5`, `no_op` / `observe` / `kubectl get pods`);
//! - DIME's chain-of-thought wrapper `<reasoning>...</reasoning>{"command": "..."}` and its
//!   structured JSON (`{"action_type": "throttle", "rate": 0.5}`);
//! - the `<reasoning>...</reasoning><action>{"command": "..."}</action>` format that DIME's
//!   training prompt asks for (DIME's own parser rejects it);
//! - `<think>...</think>` blocks (removed; a completion that starts inside a think block and
//!   only closes it is handled too);
//! - real kubectl forms: `kubectl delete pod X`, `kubectl rollout restart deployment/X`,
//!   `kubectl scale deployment/X --replicas=N`, `kubectl rollout undo deployment/X`,
//!   `kubectl logs X`, `kubectl top pod X`, `kubectl describe pod X`, `kubectl get pods`;
//! - a short form: `restart pod|node|deployment X`, `scale X N`, `throttle R`, `rollback X`,
//!   `query logs|metrics|traces X`, `noop`.
//!
//! Anything else is a typed [`ParseError`] with a reason. The parser never panics (property
//! tested over arbitrary strings). Unlike DIME, a malformed number (`--rate=1.2.3`) is a parse
//! error rather than a crash, and a word such as "observe" elsewhere in the text does not turn
//! a `kubectl delete pod` into a no-op: an explicit command always wins.
//!
//! ```
//! use sim_agents::grammar::parse_command;
//! use sim_agents::action::Action;
//! let text = "<think>p99 is high</think><reasoning>Rule 5.</reasoning>\
//!             <action>{\"command\": \"kubectl throttle ingress --rate=0.4\"}</action>";
//! assert_eq!(parse_command(text).unwrap(), Action::Throttle { rate: 0.4 });
//! assert!(parse_command("kubectl throttle ingress --rate=1.2.3").is_err());
//! ```

use crate::action::{Action, QueryKind, Replicas};
use serde_json::Value;

/// Why a text could not be turned into an action.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but whitespace (or only a think block).
    #[error("empty command")]
    Empty,
    /// XML-like tags that are unbalanced, repeated, out of order or mixed.
    #[error("malformed tags: <{tag}>: {reason}")]
    MalformedTags {
        /// The tag.
        tag: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The JSON payload is not a JSON object.
    #[error("bad JSON payload: {0}")]
    BadJson(String),
    /// A required field or argument is missing.
    #[error("missing {field} in {command:?}")]
    Missing {
        /// Which field or argument.
        field: &'static str,
        /// The command (truncated).
        command: String,
    },
    /// A number that does not parse or is not finite.
    #[error("bad number for {field}: {value:?}")]
    BadNumber {
        /// Which field.
        field: &'static str,
        /// The text given.
        value: String,
    },
    /// A target name with characters no Kubernetes name has.
    #[error("bad target name {0:?}")]
    BadTarget(String),
    /// A command this environment recognises but does not support.
    #[error("unsupported command {command:?}: {reason}")]
    Unsupported {
        /// The command (truncated).
        command: String,
        /// Why.
        reason: &'static str,
    },
    /// No known command form.
    #[error("unrecognised command {0:?}")]
    Unrecognised(String),
}

/// Counts of the scaffold tags in a completion (case-insensitive), for the format reward.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagCounts {
    /// `<think>`.
    pub think_open: u32,
    /// `</think>`.
    pub think_close: u32,
    /// `<reasoning>`.
    pub reasoning_open: u32,
    /// `</reasoning>`.
    pub reasoning_close: u32,
    /// `<action>`.
    pub action_open: u32,
    /// `</action>`.
    pub action_close: u32,
}

fn count(hay: &str, needle: &str) -> u32 {
    hay.matches(needle).count() as u32
}

/// Counts the scaffold tags of a text.
pub fn tag_counts(text: &str) -> TagCounts {
    let l = text.to_ascii_lowercase();
    TagCounts {
        think_open: count(&l, "<think>"),
        think_close: count(&l, "</think>"),
        reasoning_open: count(&l, "<reasoning>"),
        reasoning_close: count(&l, "</reasoning>"),
        action_open: count(&l, "<action>"),
        action_close: count(&l, "</action>"),
    }
}

/// The command found in a completion, before the CLI grammar runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// A command string (from `{"command": ...}`, an `<action>` body or bare text).
    Command(String),
    /// A structured JSON action (`{"action_type": ...}`), already decoded.
    Structured(Action),
}

fn trunc(s: &str) -> String {
    let mut out: String = s.chars().take(120).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

/// Removes `<think>` blocks. A `</think>` with no opening tag ends a think block that began
/// in the prompt (Qwen3 chat templates open it there).
fn strip_think(text: &str) -> Result<String, ParseError> {
    let mut s = text.to_string();
    loop {
        let l = s.to_ascii_lowercase();
        let open = l.find("<think>");
        let close = l.find("</think>");
        match (open, close) {
            (None, None) => return Ok(s),
            (Some(o), Some(c)) if o < c => {
                s = format!("{}{}", &s[..o], &s[c + "</think>".len()..]);
            }
            (None, Some(c)) | (Some(_), Some(c)) => {
                // closing tag first: everything before it was thinking
                s = s[c + "</think>".len()..].to_string();
            }
            (Some(_), None) => {
                return Err(ParseError::MalformedTags {
                    tag: "think",
                    reason: "opened but never closed (truncated completion?)".into(),
                });
            }
        }
    }
}

/// Finds the single `<tag>...</tag>` pair; errors on repeats or wrong order.
fn tag_pair(lower: &str, tag: &'static str) -> Result<Option<(usize, usize)>, ParseError> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let no = count(lower, &open);
    let nc = count(lower, &close);
    match (no, nc) {
        (0, 0) => Ok(None),
        (1, 1) => {
            let o = lower.find(&open).unwrap_or(0);
            let c = lower.find(&close).unwrap_or(0);
            if c < o {
                return Err(ParseError::MalformedTags {
                    tag,
                    reason: "closed before it is opened".into(),
                });
            }
            Ok(Some((o + open.len(), c)))
        }
        _ => Err(ParseError::MalformedTags {
            tag,
            reason: format!("{no} opening and {nc} closing tags; need exactly one each"),
        }),
    }
}

/// Extracts the command payload from a completion: think blocks removed, the
/// reasoning/action scaffold checked, JSON decoded.
pub fn extract(text: &str) -> Result<Payload, ParseError> {
    let s = strip_think(text)?;
    let s = s.trim();
    if s.is_empty() {
        return Err(ParseError::Empty);
    }
    let lower = s.to_ascii_lowercase();
    let reasoning = tag_pair(&lower, "reasoning")?;
    let action = tag_pair(&lower, "action")?;
    let body: &str = match (reasoning, action) {
        (Some((_, rc)), Some((ao, ac))) => {
            if ao < rc {
                return Err(ParseError::MalformedTags {
                    tag: "action",
                    reason: "inside or before <reasoning>".into(),
                });
            }
            &s[ao..ac]
        }
        (None, Some((ao, ac))) => &s[ao..ac],
        (Some((_, rc)), None) => &s[rc + "</reasoning>".len()..],
        (None, None) => s,
    };
    let body = body.trim();
    if body.is_empty() {
        return Err(ParseError::Empty);
    }
    if body.starts_with('{') {
        let Some(end) = body.rfind('}') else {
            return Err(ParseError::BadJson("unterminated object".into()));
        };
        let json = &body[..=end];
        let v: Value =
            serde_json::from_str(json).map_err(|e| ParseError::BadJson(e.to_string()))?;
        return payload_from_json(&v, json);
    }
    Ok(Payload::Command(body.to_string()))
}

fn payload_from_json(v: &Value, raw: &str) -> Result<Payload, ParseError> {
    let Some(obj) = v.as_object() else {
        return Err(ParseError::BadJson("not an object".into()));
    };
    for key in ["command", "raw_command"] {
        match obj.get(key) {
            Some(Value::String(c)) => return Ok(Payload::Command(c.clone())),
            Some(Value::Null) | None => {}
            Some(_) => return Err(ParseError::BadJson(format!("{key:?} must be a string"))),
        }
    }
    if obj.contains_key("action_type") {
        return structured(obj, raw).map(Payload::Structured);
    }
    Err(ParseError::Missing {
        field: "command",
        command: trunc(raw),
    })
}

/// A node reference in DIME's structured form: an integer index or a string.
fn node_ref(v: Option<&Value>, field: &'static str, raw: &str) -> Result<String, ParseError> {
    match v {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(i) => Ok(format!("node-{i}")),
            None => Err(ParseError::BadNumber {
                field,
                value: n.to_string(),
            }),
        },
        Some(Value::String(s)) => target(s),
        _ => Err(ParseError::Missing {
            field,
            command: trunc(raw),
        }),
    }
}

fn num(v: Option<&Value>, field: &'static str, raw: &str) -> Result<f64, ParseError> {
    match v {
        Some(Value::Number(n)) => n.as_f64().ok_or(ParseError::BadNumber {
            field,
            value: n.to_string(),
        }),
        Some(Value::String(s)) => parse_f64(s, field),
        Some(other) => Err(ParseError::BadNumber {
            field,
            value: other.to_string(),
        }),
        None => Err(ParseError::Missing {
            field,
            command: trunc(raw),
        }),
    }
}

/// DIME's `InfraAction` JSON, plus this crate's own action types.
fn structured(obj: &serde_json::Map<String, Value>, raw: &str) -> Result<Action, ParseError> {
    let ty = obj.get("action_type").and_then(Value::as_str).unwrap_or("");
    match ty {
        "no_op" | "noop" => Ok(Action::NoOp),
        "restart_node" => Ok(Action::RestartNode {
            target: node_ref(obj.get("target"), "target", raw)?,
        }),
        "reroute_traffic" => Ok(Action::Reroute {
            from: node_ref(obj.get("from_node"), "from_node", raw)?,
            to: node_ref(obj.get("to_node"), "to_node", raw)?,
            fraction: 0.3,
        }),
        "scale_up" => Ok(Action::Scale {
            target: None,
            replicas: Replicas::Up(1),
        }),
        "throttle" => {
            let r = num(obj.get("rate"), "rate", raw)?;
            if !(0.0..=1.0).contains(&r) {
                return Err(ParseError::BadNumber {
                    field: "rate",
                    value: r.to_string(),
                });
            }
            Ok(Action::Throttle { rate: r })
        }
        "query_logs" => Ok(Action::Query {
            kind: QueryKind::Logs,
            target: node_ref(obj.get("target"), "target", raw)?,
        }),
        _ => {
            // this crate's own serde form
            let v = Value::Object(obj.clone());
            match serde_json::from_value::<Action>(v) {
                Ok(Action::Invalid { .. }) => Err(ParseError::Unrecognised(trunc(raw))),
                Ok(a) => validate_action(a),
                Err(e) => Err(ParseError::BadJson(e.to_string())),
            }
        }
    }
}

fn validate_action(a: Action) -> Result<Action, ParseError> {
    match &a {
        Action::RestartPod { target }
        | Action::RestartNode { target }
        | Action::RestartDeployment { target }
        | Action::Rollback { target }
        | Action::Query { target, .. } => {
            target_ok(target)?;
        }
        Action::Scale {
            target: Some(t), ..
        } => target_ok(t)?,
        Action::Reroute { from, to, fraction } => {
            target_ok(from)?;
            target_ok(to)?;
            if !(0.0..=1.0).contains(fraction) {
                return Err(ParseError::BadNumber {
                    field: "fraction",
                    value: fraction.to_string(),
                });
            }
        }
        Action::Throttle { rate } if !(0.0..=1.0).contains(rate) => {
            return Err(ParseError::BadNumber {
                field: "rate",
                value: rate.to_string(),
            });
        }
        _ => {}
    }
    Ok(a)
}

/// Parses a completion or a bare command into an action.
pub fn parse_command(text: &str) -> Result<Action, ParseError> {
    match extract(text)? {
        Payload::Structured(a) => Ok(a),
        Payload::Command(c) => parse_cli(&c),
    }
}

fn parse_f64(s: &str, field: &'static str) -> Result<f64, ParseError> {
    let t = s.trim();
    let ok = !t.is_empty()
        && t.len() <= 32
        && t.bytes().all(|b| {
            b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+' || b == b'e' || b == b'E'
        });
    match t.parse::<f64>() {
        Ok(v) if ok && v.is_finite() => Ok(v),
        _ => Err(ParseError::BadNumber {
            field,
            value: trunc(t),
        }),
    }
}

fn parse_u32(s: &str, field: &'static str) -> Result<u32, ParseError> {
    let t = s.trim();
    if t.is_empty() || t.len() > 9 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadNumber {
            field,
            value: trunc(t),
        });
    }
    t.parse::<u32>().map_err(|_| ParseError::BadNumber {
        field,
        value: trunc(t),
    })
}

fn target_ok(t: &str) -> Result<(), ParseError> {
    let ok = !t.is_empty()
        && t.len() <= 253
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && t.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ParseError::BadTarget(trunc(t)))
    }
}

/// Cleans a target token: a `pod/`, `node/`, `deployment/` or `deploy/` prefix and trailing
/// punctuation are removed.
fn target(tok: &str) -> Result<String, ParseError> {
    let mut t = tok.trim().trim_matches(|c| {
        matches!(
            c,
            '"' | '\'' | '`' | '\u{201c}' | '\u{201d}' | '\u{2018}' | '\u{2019}'
        )
    });
    t = t.trim_end_matches(['.', ',', ')', ':', '!']);
    for p in [
        "pods/",
        "pod/",
        "po/",
        "nodes/",
        "node/",
        "deployments/",
        "deployment/",
        "deploy/",
        "svc/",
        "service/",
    ] {
        // `get`: the prefix length may fall inside a multi-byte character of the token
        if t.len() > p.len() && t.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p)) {
            t = &t[p.len()..];
            break;
        }
    }
    target_ok(t)?;
    Ok(t.to_string())
}

/// Options (`--k=v`, `--k v`) and positional tokens of a command.
struct Args<'a> {
    toks: Vec<&'a str>,
}

impl<'a> Args<'a> {
    fn opt(&self, name: &str) -> Option<&'a str> {
        for (i, t) in self.toks.iter().enumerate() {
            let Some(rest) = t.strip_prefix("--") else {
                continue;
            };
            if let Some(v) = rest.strip_prefix(name) {
                if let Some(v) = v.strip_prefix('=') {
                    return Some(v);
                }
                if v.is_empty() {
                    return Some(self.toks.get(i + 1).copied().unwrap_or(""));
                }
            }
        }
        None
    }

    /// Positional tokens (not options nor option values of `--k v` form for the given keys).
    fn positional(&self, valued: &[&str]) -> Vec<&'a str> {
        let mut out = Vec::new();
        let mut skip = false;
        for t in &self.toks {
            if skip {
                skip = false;
                continue;
            }
            if let Some(rest) = t.strip_prefix("--") {
                if !rest.contains('=') && valued.contains(&rest) {
                    skip = true;
                }
                continue;
            }
            if t.starts_with('-') && t.len() > 1 {
                // short flags: -n NS takes a value, -f/-it/-A do not
                if *t == "-n" || *t == "-c" || *t == "-l" {
                    skip = true;
                }
                continue;
            }
            out.push(*t);
        }
        out
    }
}

const NOOP_WORDS: [&str; 4] = ["noop", "no_op", "no-op", "observe"];

fn lower_eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Parses one command line (no scaffold) with the CLI grammar.
pub fn parse_cli(text: &str) -> Result<Action, ParseError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(ParseError::Empty);
    }
    let lower = t.to_ascii_lowercase();
    // an explicit command wins over any no-op word elsewhere in the text
    for (kw, f) in [
        ("kubectl", kubectl as fn(&str) -> Result<Action, ParseError>),
        ("aws ", aws),
    ] {
        if let Some(pos) = find_word(&lower, kw) {
            let rest = cut_line(&t[pos..]);
            return f(rest);
        }
    }
    let first_line = cut_line(t);
    if let Some(a) = short_form(first_line)? {
        return Ok(a);
    }
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .collect();
    if words.iter().any(|w| NOOP_WORDS.contains(w)) {
        return Ok(Action::NoOp);
    }
    Err(ParseError::Unrecognised(trunc(t)))
}

/// Position of `kw` at a word start.
fn find_word(lower: &str, kw: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = lower[from..].find(kw) {
        let p = from + i;
        let before_ok = p == 0 || !lower.as_bytes()[p - 1].is_ascii_alphanumeric();
        if before_ok {
            return Some(p);
        }
        from = p + kw.len();
    }
    None
}

/// The command up to the end of its line, a shell separator or a comment.
fn cut_line(s: &str) -> &str {
    let end = s
        .find(['\n', ';', '#', '`', '|', '&', '"', '<'])
        .unwrap_or(s.len());
    s[..end].trim()
}

fn kubectl(cmd: &str) -> Result<Action, ParseError> {
    let toks: Vec<&str> = cmd.split_whitespace().skip(1).collect();
    let args = Args { toks: toks.clone() };
    let pos = args.positional(&[
        "replicas",
        "rate",
        "from",
        "to",
        "fraction",
        "tail",
        "namespace",
        "container",
    ]);
    let missing = |field| ParseError::Missing {
        field,
        command: trunc(cmd),
    };
    let Some(verb) = pos.first().map(|v| v.to_ascii_lowercase()) else {
        return Err(missing("subcommand"));
    };
    let is_pod_kw = |s: &str| ["pod", "pods", "po"].iter().any(|k| lower_eq(s, k));
    let is_node_kw = |s: &str| ["node", "nodes", "no"].iter().any(|k| lower_eq(s, k));
    let is_deploy_kw = |s: &str| {
        ["deployment", "deployments", "deploy"]
            .iter()
            .any(|k| lower_eq(s, k))
    };
    // `deployment/X` or `deployment X`
    let deploy_target = |rest: &[&str]| -> Result<String, ParseError> {
        match rest {
            [] => Err(missing("deployment")),
            [k, x, ..] if is_deploy_kw(k) => target(x),
            [k] if is_deploy_kw(k) => Err(missing("deployment")),
            [x, ..] => target(x),
        }
    };
    match verb.as_str() {
        "delete" => match &pos[1..] {
            [k, x, ..] if is_pod_kw(k) => Ok(Action::RestartPod { target: target(x)? }),
            [x, ..]
                if x.to_ascii_lowercase().starts_with("pod/")
                    || x.to_ascii_lowercase().starts_with("pods/") =>
            {
                Ok(Action::RestartPod { target: target(x)? })
            }
            [k, ..] if is_node_kw(k) => Err(ParseError::Unsupported {
                command: trunc(cmd),
                reason: "deleting a node removes capacity; use `kubectl restart node X` to reboot it",
            }),
            [k] if is_pod_kw(k) => Err(missing("pod")),
            _ => Err(ParseError::Unrecognised(trunc(cmd))),
        },
        "rollout" => {
            let sub = pos
                .get(1)
                .map(|s| s.to_ascii_lowercase())
                .unwrap_or_default();
            match sub.as_str() {
                "restart" => Ok(Action::RestartDeployment {
                    target: deploy_target(&pos[2..])?,
                }),
                "undo" => Ok(Action::Rollback {
                    target: deploy_target(&pos[2..])?,
                }),
                "" => Err(missing("rollout subcommand")),
                _ => Err(ParseError::Unsupported {
                    command: trunc(cmd),
                    reason: "only `rollout restart` and `rollout undo`",
                }),
            }
        }
        "restart" => match &pos[1..] {
            [k, x, ..] if is_node_kw(k) => Ok(Action::RestartNode { target: target(x)? }),
            [k, x, ..] if is_pod_kw(k) => Ok(Action::RestartPod { target: target(x)? }),
            [k, x, ..] if is_deploy_kw(k) => Ok(Action::RestartDeployment { target: target(x)? }),
            _ => Err(missing("node")),
        },
        "scale" => {
            let replicas = match args.opt("replicas") {
                Some(v) => match v.strip_prefix('+') {
                    Some(n) => Replicas::Up(parse_u32(n, "replicas")?),
                    None => Replicas::To(parse_u32(v, "replicas")?),
                },
                None => return Err(missing("--replicas")),
            };
            let target = if pos.len() > 1 {
                Some(deploy_target(&pos[1..])?)
            } else {
                None
            };
            Ok(Action::Scale { target, replicas })
        }
        "exec" => {
            let has_shift = pos.iter().any(|p| lower_eq(p, "shift"));
            if !has_shift {
                return Err(ParseError::Unsupported {
                    command: trunc(cmd),
                    reason: "only `exec ... traffic shift --from=A --to=B`",
                });
            }
            let from = target(args.opt("from").ok_or_else(|| missing("--from"))?)?;
            let to = target(args.opt("to").ok_or_else(|| missing("--to"))?)?;
            let fraction = match args.opt("fraction") {
                Some(f) => {
                    let f = parse_f64(f, "fraction")?;
                    if !(0.0..=1.0).contains(&f) {
                        return Err(ParseError::BadNumber {
                            field: "fraction",
                            value: f.to_string(),
                        });
                    }
                    f
                }
                None => 0.3,
            };
            Ok(Action::Reroute { from, to, fraction })
        }
        "logs" | "log" => match pos.get(1) {
            Some(x) => Ok(Action::Query {
                kind: QueryKind::Logs,
                target: target(x)?,
            }),
            None => Err(missing("pod")),
        },
        "top" | "describe" => {
            let rest = &pos[1..];
            let x = match rest {
                [k, x, ..] if is_pod_kw(k) || is_node_kw(k) || is_deploy_kw(k) => x,
                [k] if is_pod_kw(k) || is_node_kw(k) || is_deploy_kw(k) => {
                    return Err(missing("target"));
                }
                [x, ..] => x,
                [] => return Err(missing("target")),
            };
            Ok(Action::Query {
                kind: QueryKind::Metrics,
                target: target(x)?,
            })
        }
        "throttle" | "annotate" => {
            if !pos
                .iter()
                .any(|p| lower_eq(p, "ingress") || p.to_ascii_lowercase().starts_with("ingress/"))
            {
                return Err(missing("ingress"));
            }
            let v = args.opt("rate").ok_or_else(|| missing("--rate"))?;
            let r = parse_f64(v, "rate")?;
            Ok(Action::Throttle {
                rate: r.clamp(0.0, 1.0),
            })
        }
        "apply" => {
            let file = args
                .toks
                .iter()
                .position(|t| *t == "-f")
                .and_then(|i| args.toks.get(i + 1))
                .copied();
            let Some(f) = file else {
                return Err(missing("-f FILE"));
            };
            let fl = f.to_ascii_lowercase();
            if fl.starts_with("restart")
                && let Some(n) = last_node_index(&fl)
            {
                return Ok(Action::RestartNode {
                    target: format!("node-{n}"),
                });
            }
            Err(ParseError::Unsupported {
                command: trunc(cmd),
                reason: "only `apply -f restart-node-N.yaml`",
            })
        }
        "get" => Ok(Action::NoOp),
        "cordon" | "drain" | "uncordon" | "taint" | "edit" | "patch" | "label" | "create"
        | "expose" => Err(ParseError::Unsupported {
            command: trunc(cmd),
            reason: "not an action of this environment",
        }),
        _ => Err(ParseError::Unrecognised(trunc(cmd))),
    }
}

/// The last `node<N>` / `node-<N>` / `node_<N>` index in a lower-case string (DIME's P3/P4 rule).
pub fn last_node_index(lower: &str) -> Option<u32> {
    let b = lower.as_bytes();
    let mut found = None;
    let mut i = 0;
    while let Some(k) = lower[i..].find("node") {
        let mut j = i + k + 4;
        if j < b.len() && (b[j] == b'-' || b[j] == b'_') {
            j += 1;
        }
        let start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > start && j - start <= 6 {
            found = lower[start..j].parse().ok();
        }
        i = i + k + 4;
    }
    found
}

/// N when a lower-case name is exactly `node<N>`, `node-<N>` or `node_<N>`.
pub fn node_number(lower: &str) -> Option<u32> {
    let rest = lower.strip_prefix("node")?;
    let digits = rest
        .strip_prefix('-')
        .or_else(|| rest.strip_prefix('_'))
        .unwrap_or(rest);
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn aws(cmd: &str) -> Result<Action, ParseError> {
    let toks: Vec<&str> = cmd.split_whitespace().collect();
    let args = Args { toks: toks.clone() };
    if !toks.iter().any(|t| lower_eq(t, "set-desired-capacity")) {
        return Err(ParseError::Unsupported {
            command: trunc(cmd),
            reason: "only `aws autoscaling set-desired-capacity`",
        });
    }
    let v = args
        .opt("desired-capacity")
        .ok_or_else(|| ParseError::Missing {
            field: "--desired-capacity",
            command: trunc(cmd),
        })?;
    Ok(Action::Scale {
        target: None,
        replicas: Replicas::To(parse_u32(v, "desired-capacity")?),
    })
}

/// The short form (`restart pod X`, `scale X N`, `throttle R`, ...). `Ok(None)`: not a short form.
fn short_form(line: &str) -> Result<Option<Action>, ParseError> {
    let toks: Vec<&str> = line.split_whitespace().collect();
    let Some(verb) = toks.first().map(|v| v.to_ascii_lowercase()) else {
        return Ok(None);
    };
    let missing = |field| ParseError::Missing {
        field,
        command: trunc(line),
    };
    let a = match verb.as_str() {
        "restart" => match &toks[1..] {
            [k, x, ..] if lower_eq(k, "node") => Action::RestartNode { target: target(x)? },
            [k, x, ..] if lower_eq(k, "pod") => Action::RestartPod { target: target(x)? },
            [k, x, ..] if lower_eq(k, "deployment") => {
                Action::RestartDeployment { target: target(x)? }
            }
            _ => return Err(missing("pod|node|deployment TARGET")),
        },
        "scale" => match &toks[1..] {
            [x, n, ..] => {
                let replicas = match n.strip_prefix('+') {
                    Some(k) => Replicas::Up(parse_u32(k, "replicas")?),
                    None => Replicas::To(parse_u32(n, "replicas")?),
                };
                Action::Scale {
                    target: Some(target(x)?),
                    replicas,
                }
            }
            _ => return Err(missing("TARGET REPLICAS")),
        },
        "throttle" => match toks.get(1) {
            Some(r) => {
                let r = parse_f64(r.trim_start_matches("--rate="), "rate")?;
                Action::Throttle {
                    rate: r.clamp(0.0, 1.0),
                }
            }
            None => return Err(missing("RATE")),
        },
        "rollback" => match toks.get(1) {
            Some(x) => Action::Rollback { target: target(x)? },
            None => return Err(missing("TARGET")),
        },
        "query" => {
            let kind = match toks.get(1).map(|k| k.to_ascii_lowercase()).as_deref() {
                Some("logs") => QueryKind::Logs,
                Some("metrics") => QueryKind::Metrics,
                Some("traces") => QueryKind::Traces,
                _ => return Err(missing("logs|metrics|traces")),
            };
            match toks.get(2) {
                Some(x) => Action::Query {
                    kind,
                    target: target(x)?,
                },
                None => return Err(missing("TARGET")),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Action {
        parse_command(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn dime_forms_parse() {
        assert!(matches!(
            ok("kubectl scale deployment frontend --replicas=10"),
            Action::Scale { .. }
        ));
        assert!(matches!(
            ok(
                "aws autoscaling set-desired-capacity --auto-scaling-group-name a --desired-capacity 12"
            ),
            Action::Scale {
                target: None,
                replicas: Replicas::To(12)
            }
        ));
        assert_eq!(
            ok("kubectl delete pod node-3"),
            Action::RestartPod {
                target: "node-3".into()
            }
        );
        assert_eq!(
            ok("KUBECTL DELETE POD NODE-2"),
            Action::RestartPod {
                target: "NODE-2".into()
            }
        );
        assert_eq!(
            ok("kubectl rollout restart deployment/node-4"),
            Action::RestartDeployment {
                target: "node-4".into()
            }
        );
        assert_eq!(
            ok("kubectl apply -f restart-node-2.yaml"),
            Action::RestartNode {
                target: "node-2".into()
            }
        );
        assert_eq!(
            ok("kubectl exec -it istio-proxy -- traffic shift --from=1 --to=3"),
            Action::Reroute {
                from: "1".into(),
                to: "3".into(),
                fraction: 0.3
            }
        );
        assert_eq!(
            ok("kubectl exec envoy traffic shift --from 2 --to 4"),
            Action::Reroute {
                from: "2".into(),
                to: "4".into(),
                fraction: 0.3
            }
        );
        assert_eq!(
            ok("kubectl logs node-2 --tail=50"),
            Action::Query {
                kind: QueryKind::Logs,
                target: "node-2".into()
            }
        );
        assert_eq!(
            ok("kubectl logs pod/node_4"),
            Action::Query {
                kind: QueryKind::Logs,
                target: "node_4".into()
            }
        );
        assert_eq!(
            ok("kubectl throttle ingress --rate=0.8"),
            Action::Throttle { rate: 0.8 }
        );
        assert_eq!(
            ok("kubectl annotate ingress main --rate=0.5"),
            Action::Throttle { rate: 0.5 }
        );
        assert_eq!(
            ok("kubectl throttle ingress --rate=5"),
            Action::Throttle { rate: 1.0 }
        );
        for s in ["no_op", "NO-OP", "observe", "kubectl get pods -A", "noop"] {
            assert_eq!(ok(s), Action::NoOp, "{s}");
        }
    }

    #[test]
    fn wrappers() {
        assert_eq!(
            ok("<reasoning>db is down</reasoning>{\"command\": \"kubectl delete pod node-0\"}"),
            Action::RestartPod {
                target: "node-0".into()
            }
        );
        assert_eq!(
            ok("<reasoning>x</reasoning>{\"action_type\":\"throttle\",\"rate\":0.5}"),
            Action::Throttle { rate: 0.5 }
        );
        assert_eq!(
            ok(
                "<reasoning>x</reasoning>\n<action>{\"command\": \"kubectl throttle ingress --rate=0.4\"}</action>"
            ),
            Action::Throttle { rate: 0.4 }
        );
        assert_eq!(
            ok("thinking...</think><action>no_op</action>"),
            Action::NoOp
        );
        assert!(parse_command("<think>never closed").is_err());
        assert!(matches!(
            parse_command("<reasoning>x</action>{\"command\":\"no_op\"}"),
            Err(ParseError::MalformedTags { .. })
        ));
        assert!(matches!(
            parse_command("<reasoning>x</reasoning>{\"command\": 5}"),
            Err(ParseError::BadJson(_))
        ));
        assert!(matches!(
            parse_command("<reasoning>x</reasoning>{\"action_type\":\"restart_node\"}"),
            Err(ParseError::Missing { .. })
        ));
    }

    #[test]
    fn dime_bugs_fixed() {
        assert!(matches!(
            parse_command("kubectl throttle ingress --rate=1.2.3"),
            Err(ParseError::BadNumber { .. })
        ));
        assert!(matches!(
            parse_command("kubectl throttle ingress --rate=."),
            Err(ParseError::BadNumber { .. })
        ));
        assert_eq!(
            ok("kubectl delete pod node-3 # then observe"),
            Action::RestartPod {
                target: "node-3".into()
            }
        );
        assert_eq!(
            ok("I will observe and then kubectl delete pod node-3"),
            Action::RestartPod {
                target: "node-3".into()
            }
        );
        assert!(matches!(
            parse_command("Nothing to do"),
            Err(ParseError::Unrecognised(_))
        ));
        assert!(parse_command("kubectl cordon node-1").is_err());
    }

    #[test]
    fn kubectl_forms() {
        assert_eq!(
            ok("kubectl scale deployment/cart --replicas=3"),
            Action::Scale {
                target: Some("cart".into()),
                replicas: Replicas::To(3)
            }
        );
        assert_eq!(
            ok("kubectl rollout undo deployment/cart"),
            Action::Rollback {
                target: "cart".into()
            }
        );
        assert_eq!(
            ok("kubectl top pod cart-0"),
            Action::Query {
                kind: QueryKind::Metrics,
                target: "cart-0".into()
            }
        );
        assert_eq!(
            ok("`kubectl delete pod cart-1`."),
            Action::RestartPod {
                target: "cart-1".into()
            }
        );
        assert_eq!(
            ok("query traces checkout"),
            Action::Query {
                kind: QueryKind::Traces,
                target: "checkout".into()
            }
        );
        assert!(matches!(
            parse_command("kubectl scale deployment/cart --replicas=x"),
            Err(ParseError::BadNumber { .. })
        ));
        assert!(matches!(
            parse_command("kubectl delete pod"),
            Err(ParseError::Missing { .. })
        ));
    }

    #[test]
    fn node_index() {
        assert_eq!(last_node_index("frontend-node-3"), Some(3));
        assert_eq!(last_node_index("node_4 and node7"), Some(7));
        assert_eq!(last_node_index("nodes"), None);
    }
}
