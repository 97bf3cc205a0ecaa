//! Property tests of the command grammar: it never panics, rejects near misses with a typed
//! error, and parses back every action it writes.

use proptest::prelude::*;
use sim_agents::action::{Action, QueryKind, Replicas};
use sim_agents::grammar::{ParseError, parse_command};

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}[a-z0-9]".prop_filter("not a keyword", |s| {
        ![
            "pod",
            "pods",
            "po",
            "node",
            "nodes",
            "no",
            "deployment",
            "deployments",
            "deploy",
            "ingress",
        ]
        .contains(&s.as_str())
    })
}

fn rate() -> impl Strategy<Value = f64> {
    (0u32..=100).prop_map(|x| x as f64 / 100.0)
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::NoOp),
        name().prop_map(|t| Action::RestartPod { target: t }),
        name().prop_map(|t| Action::RestartNode { target: t }),
        name().prop_map(|t| Action::RestartDeployment { target: t }),
        (name(), 0u32..500).prop_map(|(t, n)| Action::Scale {
            target: Some(t),
            replicas: Replicas::To(n)
        }),
        (name(), 1u32..50).prop_map(|(t, n)| Action::Scale {
            target: Some(t),
            replicas: Replicas::Up(n)
        }),
        (0u32..50).prop_map(|n| Action::Scale {
            target: None,
            replicas: Replicas::To(n)
        }),
        (name(), name(), rate()).prop_map(|(f, t, x)| Action::Reroute {
            from: f,
            to: t,
            fraction: x
        }),
        rate().prop_map(|r| Action::Throttle { rate: r }),
        name().prop_map(|t| Action::Rollback { target: t }),
        (
            name(),
            prop_oneof![
                Just(QueryKind::Logs),
                Just(QueryKind::Metrics),
                Just(QueryKind::Traces)
            ]
        )
            .prop_map(|(t, k)| Action::Query { kind: k, target: t }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_arbitrary_strings(s in ".{0,300}") {
        let _ = parse_command(&s);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_command(&String::from_utf8_lossy(&b));
    }

    #[test]
    fn never_panics_on_scaffold_soup(parts in proptest::collection::vec(prop_oneof![
        Just("<reasoning>"), Just("</reasoning>"), Just("<action>"), Just("</action>"), Just("<think>"),
        Just("</think>"), Just("{"), Just("}"), Just("\"command\": "), Just("\"kubectl delete pod a-1\""),
        Just("kubectl"), Just(" throttle ingress --rate="), Just("0.5"), Just("1.2.3"), Just("node-3"), Just(" "),
        Just("observe"), Just("\n"), Just("#"), Just("\u{1F600}"), Just("--from="), Just("traffic shift"),
    ], 0..24)) {
        let s: String = parts.concat();
        let _ = parse_command(&s);
    }

    /// Targets with multi-byte characters (smart quotes, accents, emoji) in every command
    /// form that cleans a target: typed errors or actions, never a panic (a `deployment/`
    /// prefix check once sliced inside a character).
    #[test]
    fn never_panics_on_unicode_targets(
        t in "[\u{201c}\u{201d}\u{e9}\u{1F600}a-z0-9/-]{1,16}",
        form in 0usize..8,
    ) {
        let cmd = match form {
            0 => format!("kubectl delete pod {t}"),
            1 => format!("kubectl logs {t}"),
            2 => format!("kubectl rollout restart deployment/{t}"),
            3 => format!("kubectl scale deployment {t} --replicas=2"),
            4 => format!("restart_node {t}"),
            5 => format!("{{\"action_type\": \"restart_node\", \"target\": \"{t}\"}}"),
            6 => format!("kubectl rollout undo {t}"),
            _ => format!("kubectl top pod {t}"),
        };
        let _ = parse_command(&cmd);
    }

    #[test]
    fn canonical_commands_round_trip(a in action()) {
        let cmd = a.to_command();
        prop_assert_eq!(parse_command(&cmd).unwrap(), a.clone());
        // and in DIME's training format, and its chain-of-thought JSON wrapper
        let wrapped = format!("<think>\nhmm\n</think>\n<reasoning>Because.</reasoning>\n<action>{{\"command\": \"{cmd}\"}}</action>");
        prop_assert_eq!(parse_command(&wrapped).unwrap(), a.clone());
        let cot = format!("<reasoning>Because.</reasoning> {{\"command\": \"{cmd}\"}}");
        prop_assert_eq!(parse_command(&cot).unwrap(), a);
    }

    #[test]
    fn malformed_rates_are_typed_errors(a in 0u32..100, b in 0u32..100, c in 0u32..100) {
        for bad in [format!("{a}.{b}.{c}"), ".".to_string(), format!("{a}..{b}"), format!("0x{a}"), format!("{a}e"), String::new()] {
            let r = parse_command(&format!("kubectl throttle ingress --rate={bad}"));
            let ok = matches!(r, Err(ParseError::BadNumber { .. }));
            prop_assert!(ok, "{:?}: {:?}", bad, r);
        }
    }

    #[test]
    fn malformed_replicas_are_typed_errors(a in 0u32..100, s in "[a-z.]{1,4}") {
        let r = parse_command(&format!("kubectl scale deployment/x --replicas={a}{s}"));
        let ok = matches!(r, Err(ParseError::BadNumber { .. }));
        prop_assert!(ok, "{:?}", r);
    }

    #[test]
    fn repeated_or_mixed_tags_are_rejected(n in 2usize..4, cmd in name()) {
        let body = format!("{{\"command\": \"kubectl delete pod {cmd}\"}}");
        let twice = format!("<reasoning>a</reasoning>{}", format!("<action>{body}</action>").repeat(n));
        let r = matches!(parse_command(&twice), Err(ParseError::MalformedTags { .. }));
        prop_assert!(r);
        let mixed = format!("<reasoning>a</action><action>{body}</reasoning>");
        prop_assert!(parse_command(&mixed).is_err());
        let unclosed = format!("<reasoning>a</reasoning><action>{body}");
        let r = matches!(parse_command(&unclosed), Err(ParseError::MalformedTags { .. }));
        prop_assert!(r);
    }

    #[test]
    fn an_explicit_command_beats_noop_words(t in name(), filler in "(observe|noop|no-op| and| then| I will)*") {
        let s = format!("{filler} kubectl delete pod {t} # then observe");
        prop_assert_eq!(parse_command(&s).unwrap(), Action::RestartPod { target: t });
    }
}

#[test]
fn bad_targets_are_typed_errors() {
    assert!(matches!(
        parse_command("kubectl delete pod ../etc"),
        Err(ParseError::BadTarget(_))
    ));
    assert!(matches!(
        parse_command("kubectl logs -"),
        Err(ParseError::Missing { .. }) | Err(ParseError::BadTarget(_))
    ));
    assert!(matches!(
        parse_command("{\"action_type\": \"restart_node\", \"target\": -1}"),
        Err(ParseError::BadNumber { .. })
    ));
}

/// What LLMs write: typographic quotes around a target are quotes; other non-ASCII targets
/// are typed errors (names are ASCII), not panics.
#[test]
fn smart_quotes_and_non_ascii_targets() {
    assert_eq!(
        parse_command("kubectl delete pod \u{201c}node-3\u{201d}").unwrap(),
        parse_command("kubectl delete pod node-3").unwrap()
    );
    for cmd in [
        "kubectl logs \u{e9}\u{e9}\u{e9}",
        "kubectl rollout restart deployment/caf\u{e9}",
        "{\"action_type\": \"restart_node\", \"target\": \"\u{e9}\u{e9}\u{e9}\"}",
    ] {
        assert!(parse_command(cmd).is_err(), "{cmd}");
    }
}
