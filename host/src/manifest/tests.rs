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
        let err = format!(
            "{:#}",
            Manifest::parse(&text)
                .expect("parses")
                .validate()
                .expect_err("out of range")
        );
        assert!(
            err.contains("component `a`") && err.contains("max_batch must be between 1 and 1024"),
            "{err}"
        );
    }
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
