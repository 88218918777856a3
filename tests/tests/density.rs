//! Many components on one host: idle ones hold no instance, warm ones stay
//! within `[host] max_warm_mb`, and more components than the instance pool
//! has slots all load and answer, because idle instances give way.

use std::fmt::Write as _;

use berth_tests::start;

/// `n` echo components, `echo<i>` answering on `d.<i>`.
fn echoes(n: usize, host: &str) -> String {
    let mut text = format!("[host]\n{host}\n");
    for i in 0..n {
        let _ = write!(
            text,
            "[[components]]\nname = \"echo{i}\"\nwasm = \"{{echo}}\"\nsubscribe = [\"d.{i}\"]\n"
        );
    }
    text
}

#[tokio::test]
async fn warm_instances_stay_within_the_budget_and_cold_components_still_answer() {
    let t = start(&echoes(20, "max_warm_mb = 3")).await.expect("host");
    let app = t.host.app();
    // An echo instance holds ~1.1 MiB of linear memory: two fit in 3 MiB.
    let warm = app.warm();
    assert_eq!(warm.budget, 3 << 20);
    assert!(warm.bytes <= warm.budget, "{warm:?}");
    assert!((1..=2).contains(&warm.instances), "{warm:?}");
    for i in 0..20 {
        assert_eq!(
            t.ask(&format!("d.{i}"), format!("hello {i}")).await,
            format!("hello {i}")
        );
    }
    let after = app.warm();
    assert!(after.bytes <= after.budget, "{after:?}");
    assert!(
        after.evictions > warm.evictions,
        "cold components pushed older ones out: {after:?}"
    );

    let (url, _stop) = t.serve_http("127.0.0.1:0").await;
    let metrics = berth_tests::scrape_metrics(&url).await;
    assert!(
        metrics.contains(&format!("berth_warm_budget_bytes{{service=\"berth\"}} {}", 3 << 20)),
        "{metrics}"
    );
    assert!(
        metrics.contains("berth_warm_evictions_total{service=\"berth\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("berth_instance_slots{service=\"berth\"} 2560"),
        "twenty components of max_concurrency 64: twice the sum: {metrics}"
    );
}

#[tokio::test]
async fn no_budget_keeps_no_instance_and_every_call_makes_one() {
    let t = start(&echoes(3, "max_warm_mb = 0")).await.expect("host");
    for round in 0..3 {
        for i in 0..3 {
            assert_eq!(t.ask(&format!("d.{i}"), format!("{round}")).await, format!("{round}"));
        }
    }
    let warm = t.host.app().warm();
    assert_eq!((warm.instances, warm.bytes), (0, 0), "{warm:?}");
}

/// The pool is as large as `[host] instance_slots`: with a budget that
/// would keep them all, 300 components on 100 slots still load and answer,
/// because the pool's exhaustion evicts the instances used longest ago.
#[tokio::test]
async fn more_components_than_pool_slots_load_and_answer() {
    let t = start(&echoes(300, "max_warm_mb = 100000\ninstance_slots = 100"))
        .await
        .expect("host");
    let app = t.host.app();
    assert!(app.failed.is_empty(), "{:?}", app.failed);
    for i in (0..300).rev().step_by(3) {
        assert_eq!(t.ask(&format!("d.{i}"), "x").await, "x");
    }
    let warm = app.warm();
    assert!(warm.evictions > 0, "the pool made room: {warm:?}");
    assert!(warm.instances <= 100, "no more instances than slots: {warm:?}");
    assert_eq!(app.capacity().slots, 100);
}
