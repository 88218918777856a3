//! Parsing, environment overrides and validation messages.

use super::*;

#[test]
fn minimal_manifest_uses_memory_transport() {
    let m = Manifest::parse("").expect("empty is valid");
    assert_eq!(m.host.transport, TransportKind::Memory);
    assert_eq!(m.host.name, "berth");
    assert!(m.host.http.is_none());
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let err = Manifest::parse("[host]\nname = \"x\"\nnmae = \"y\"\n").expect_err("typo");
    let text = format!("{err:#}");
    assert!(text.contains("nmae"), "{text}");
    assert!(text.contains("line 3"), "{text}");
    assert!(text.contains("did you mean `name`?"), "{text}");
}

#[test]
fn unknown_key_inside_a_subscription_table_is_named() {
    let text = "[[components]]\nname = \"a\"\nwasm = \"a.wasm\"\nsubscribe = [{ subject = \"a\", qeue = \"g\" }]\n";
    let err = format!("{:#}", Manifest::parse(text).expect_err("typo"));
    assert!(err.contains("qeue"), "{err}");
}

#[test]
fn subscriptions_take_strings_and_tables() {
    let text = r#"
        [[components]]
        name = "a"
        wasm = "a.wasm"
        subscribe = ["a.>", { subject = "b.*", group = "g" }, { subject = "c", broadcast = true }]
    "#;
    let m = Manifest::parse(text).expect("valid");
    let subs = &m.components[0].subscribe;
    assert_eq!(subs[0].subject, "a.>");
    assert_eq!(subs[1].group.as_deref(), Some("g"));
    assert!(subs[2].broadcast);
}

#[test]
fn environment_overrides_the_file() {
    let mut m = Manifest::parse("[host]\nname = \"file\"\n").expect("valid");
    m.apply_env(|k| match k {
        "SERVICE_NAME" => Some("env".into()),
        "NATS_URL" => Some("nats://10.0.0.1:4222".into()),
        _ => None,
    });
    assert_eq!(m.host.name, "env");
    assert_eq!(m.transports.nats.expect("created").url, "nats://10.0.0.1:4222");
}

#[test]
fn validation_names_component_and_problem() {
    let text = "[[components]]\nname = \"a\"\nwasm = \"/nonexistent/a.wasm\"\n";
    let err = format!(
        "{:#}",
        Manifest::parse(text).expect("parses").validate().expect_err("missing")
    );
    assert!(err.contains("component `a`") && err.contains("does not exist"), "{err}");

    let text = "[[components]]\nname = \"a\"\nwasm = \"x\"\nsubscribe = [\"a..b\"]\n";
    let err = format!(
        "{:#}",
        Manifest::parse(text).expect("parses").validate().expect_err("bad")
    );
    assert!(err.contains("empty token"), "{err}");
}

#[test]
fn max_batch_defaults_to_32_and_zero_is_refused_by_name() {
    let text = "[[components]]\nname = \"a\"\nwasm = \"x\"\n";
    let m = Manifest::parse(text).expect("parses");
    assert_eq!(m.components[0].max_batch, 32);
    for bad in ["0", "1025"] {
        let text = format!("[[components]]\nname = \"a\"\nwasm = \"x\"\nmax_batch = {bad}\n");
        let err = format!("{:#}", Manifest::parse(&text).expect_err("out of range"));
        assert!(
            err.contains("max_batch = ") && err.contains("line 4") && err.contains("must be between 1 and 1024"),
            "{err}"
        );
    }
}

#[test]
fn instance_slots_follow_the_manifest_within_bounds() {
    let components = |n: usize, concurrency: usize| {
        (0..n)
            .map(|i| format!("[[components]]\nname = \"c{i}\"\nwasm = \"x\"\nmax_concurrency = {concurrency}\n"))
            .collect::<String>()
    };
    let slots = |text: &str| Manifest::parse(text).expect("parses").instance_slots();
    assert_eq!(slots(&components(1, 64)), 1000, "never fewer than the default");
    assert_eq!(slots(&components(20, 64)), 2560, "twice the sum of max_concurrency");
    assert_eq!(slots(&components(700, 64)), 10_000, "at most 10,000 by default");
    assert_eq!(
        slots(&format!("[host]\ninstance_slots = 16\n{}", components(700, 64))),
        16
    );
}

#[test]
fn numbers_out_of_range_are_refused_with_key_and_line_not_panicked_on() {
    for (key, value) in [
        ("max_concurrency", "9223372036854775807"),
        ("max_concurrency", "0"),
        ("timeout_ms", "9223372036854775807"),
        ("quarantine_ms", "9223372036854775807"),
        ("probation_ms", "9223372036854775807"),
        ("memory_mb", "4096"),
        ("max_message_kb", "-1"),
        ("max_deliver", "0"),
        ("fuel", "0"),
    ] {
        let text = format!("[[components]]\nname = \"a\"\nwasm = \"x\"\n{key} = {value}\n");
        let err = format!("{:#}", Manifest::parse(&text).expect_err(key));
        assert!(err.contains(key) && err.contains("line 4"), "{key} = {value}: {err}");
    }
    for (key, value) in [
        ("http_max_connections", "0"),
        ("http_header_timeout_ms", "5"),
        ("max_component_mb", "0"),
        ("instance_slots", "8"),
        ("instance_slots", "20001"),
    ] {
        let text = format!("[host]\n{key} = {value}\n");
        let err = format!("{:#}", Manifest::parse(&text).expect_err(key));
        assert!(err.contains(key) && err.contains("line 2"), "{key} = {value}: {err}");
    }
}

#[test]
fn names_urls_and_files_that_would_be_misread_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = dir.path().join("a.wasm");
    std::fs::write(&wasm, b"\0asm").expect("write");
    let component = |extra: &str| format!("[[components]]\nname = \"a\"\nwasm = \"{}\"\n{extra}", wasm.display());
    let refused = |text: &str, says: &str| {
        let err = format!(
            "{:#}",
            Manifest::parse(text).and_then(|m| m.validate()).expect_err(text)
        );
        assert!(err.contains(says), "{text}: {err}");
    };
    assert!(Manifest::parse(&component("")).and_then(|m| m.validate()).is_ok());
    refused(&format!("[host]\nname = \"*\"\n{}", component("")), "[host] name");
    refused(&format!("[host]\nname = \"a.b\"\n{}", component("")), "[host] name");
    refused("[[components]]\nname = \">\"\nwasm = \"x\"\n", "component name");
    refused("[transports.amqp]\nurl = \"amqp://\\u0000\"\n", "not a valid URL");
    refused("[transports.nats]\nurl = \"nats://\"\n", "not a valid URL");
    let folder = format!("[[components]]\nname = \"a\"\nwasm = \"{}\"\n", dir.path().display());
    refused(&folder, "is a folder");
    refused(
        "[[components]]\nname = \"a\"\nwasm = \"/dev/zero\"\n",
        "not a regular file",
    );
    refused(
        "[[components]]\nname = \"a\"\nwasm = \"/nonexistent/a.wasm\"\n",
        "does not exist",
    );
}

#[test]
fn a_dead_letter_subject_with_a_wildcard_is_named() {
    let text = "[host]\ntransport = \"nats\"\n[[components]]\nname = \"a\"\nwasm = \"x\"\n\
                subscribe = [{ subject = \"a.>\", stream = \"S\", durable = \"d\", dead_letter = \"dead.*\" }]\n";
    let err = format!(
        "{:#}",
        Manifest::parse(text).expect("parses").validate().expect_err("bad")
    );
    assert!(err.contains("dead_letter") && err.contains("dead.*"), "{err}");
}

#[test]
fn admin_over_the_broker_needs_a_token() {
    let text = "[host]\nadmin = true\n";
    let err = format!(
        "{:#}",
        Manifest::parse(text).and_then(|m| m.validate()).expect_err("refused")
    );
    assert!(err.contains("admin_token") && err.contains("steer"), "{err}");
    let with = Manifest::parse("[host]\nadmin = true\nadmin_token = \"t\"\n").expect("parses");
    assert!(with.validate().is_ok());
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    /// A manifest that uses most keys, for the mutations to damage.
    const FULL: &str = r#"
[host]
name = "orders"
transport = "memory"
http = "127.0.0.1:8080"
data_dir = "./data"
admin = true
admin_token = "t"
http_max_connections = 10
[transports.nats]
url = "nats://127.0.0.1:4222, nats://127.0.0.1:4223"
[transports.amqp]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"
exchange = "berth"
prefetch = 64
[[components]]
name = "echo"
wasm = "echo.wasm"
subscribe = ["echo.>", { subject = "a.*", group = "g" }, { subject = "s.>", stream = "S", transport = "nats" }]
publish = ["events.>"]
request = []
max_concurrency = 64
max_batch = 32
timeout_ms = 1000
memory_mb = 64
fuel = 1000
max_deliver = 2
quarantine_ms = 10000
[components.env]
A = "b"
[components.config]
greeting = "hello"
"#;

    /// What a mutation puts in: TOML's own punctuation, numbers at and past
    /// every bound, names with wildcards, odd characters.
    fn splice() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("=".to_owned()),
            Just("\"".to_owned()),
            Just("[".to_owned()),
            Just("]]".to_owned()),
            Just("\n".to_owned()),
            Just("-1".to_owned()),
            Just("0".to_owned()),
            Just("9223372036854775807".to_owned()),
            Just("18446744073709551616".to_owned()),
            Just("1e308".to_owned()),
            Just("\"*\"".to_owned()),
            Just("\">\"".to_owned()),
            Just("\"amqp://\\u0000\"".to_owned()),
            Just("{ subject = \"\" }".to_owned()),
            "[ -~]{0,12}",
            "\\PC{0,4}",
        ]
    }

    proptest! {
        #[test]
        fn no_mutated_manifest_panics(
            at in any::<prop::sample::Index>(),
            len in 0usize..24,
            with in splice(),
        ) {
            let mut text = FULL.to_owned();
            let mut start = at.index(text.len());
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.replace_range(start..end, &with);
            let _ = Manifest::parse(&text).and_then(|mut m| {
                m.apply_env(|_| None);
                m.validate()
            });
        }
    }
}
