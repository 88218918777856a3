//! Hosts join and leave a queue group under load, on the machine's NATS
//! server: a host that starts takes a share of the requests at once, and
//! a host that stops (a drain) first stops its subscriptions at the server,
//! serves what was already on its way to it, and finishes: no request
//! fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_tests::{NATS, TestHost, start, unique};

/// At most this many requests (the load stops earlier once the hosts came
/// and went).
const REQUESTS: usize = 200_000;
const IN_FLIGHT: usize = 16;

async fn host(service: &str, subject: &str) -> TestHost {
    start(&format!(
        r#"
        [host]
        name = "{service}"
        transport = "nats"
        [transports.nats]
        url = "nats://{NATS}"

        [[components]]
        name = "echo"
        wasm = "{{echo}}"
        subscribe = ["{subject}"]
        "#
    ))
    .await
    .expect("host starts")
}

fn served(t: &TestHost) -> u64 {
    t.host.route("echo").expect("echo").stats.snapshot().requests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_joins_takes_work_and_one_that_drains_fails_no_request() {
    let client = berth_tests::nats_client().await;
    let service = unique("hosts");
    let subject = format!("{service}.echo");
    let first = host(&service, &subject).await;
    let leaving = host(&service, &subject).await;

    let sent = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (client, sent, subject, done) = (client.clone(), sent.clone(), subject.clone(), done.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                loop {
                    let n = sent.fetch_add(1, Ordering::Relaxed);
                    if done.load(Ordering::Relaxed) || n >= REQUESTS {
                        break;
                    }
                    let answer =
                        tokio::time::timeout(Duration::from_secs(5), client.request(subject.clone(), "x".into())).await;
                    match answer {
                        Ok(Ok(m))
                            if m.payload == "x"
                                && m.headers.as_ref().and_then(|h| h.get("Nats-Service-Error")).is_none() => {}
                        other => failures.push(format!("request {n}: {other:?}")),
                    }
                }
                failures
            })
        })
        .collect();
    let past = |n: usize| {
        let sent = sent.clone();
        async move {
            while sent.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    past(1000).await;
    let joining = host(&service, &subject).await;
    // The new host shares the work at once: wait for its first hundred.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while served(&joining) < 100 {
        assert!(
            std::time::Instant::now() < deadline,
            "the host that joined took no work"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let left_at = served(&leaving);
    let leaving_at = sent.load(Ordering::Relaxed);
    let leaving_route = leaving.host.route("echo").expect("echo").clone();
    leaving.host.shutdown(Duration::from_secs(10)).await;
    let after = sent.load(Ordering::Relaxed);
    eprintln!("the host left between requests {leaving_at} and {after}");
    past(after + 2000).await;
    done.store(true, Ordering::Relaxed);

    let mut failures = Vec::new();
    for l in load {
        failures.extend(l.await.expect("load"));
    }
    assert!(
        failures.is_empty(),
        "{} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    assert!(left_at > 0, "the host that left had served before");
    eprintln!(
        "first {}, leaving {} (stopped at {left_at}), joining {} of {} requests",
        served(&first),
        leaving_route.stats.snapshot().requests,
        served(&joining),
        sent.load(Ordering::Relaxed)
    );
}
