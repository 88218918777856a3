//! Hostile components are contained: each attack ends its own call with a
//! clear error within its limit, and a well-behaved component on the same
//! host answers every request sent to it during the attack.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth::{CallError, ErrorKind, Message};
use berth_tests::{TestHost, start};

const MANIFEST: &str = r#"
[[components]]
name = "hostile"
wasm = "{hostile}"
subscribe = ["hostile.>"]
link_unused_sockets = true
timeout_ms = 300
memory_mb = 16
max_message_kb = 1024
max_hostcall_kb = 4096
quarantine_after = 0
max_concurrency = 4

[[components]]
name = "echo"
wasm = "{echo}"
subscribe = ["echo.>"]
"#;

/// Slack on top of a limit for a loaded CI machine.
const MARGIN: Duration = Duration::from_millis(1500);

/// Sends requests to the echo component until stopped; counts answers and
/// failures.
struct Bystander {
    answered: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Bystander {
    fn start(t: &TestHost) -> Self {
        let (answered, failed, stop) = (Arc::default(), Arc::default(), Arc::new(AtomicBool::new(false)));
        let transport = t.host.transport();
        let task = tokio::spawn({
            let (answered, failed, stop): (Arc<AtomicU64>, Arc<AtomicU64>, Arc<AtomicBool>) =
                (Arc::clone(&answered), Arc::clone(&failed), Arc::clone(&stop));
            async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let body = format!("ping {i}");
                    let ok = match transport
                        .request(Message::new("echo.ping", body.clone()), Duration::from_secs(2))
                        .await
                    {
                        Ok(reply) => CallError::from_reply(&reply).is_none() && reply.body == body,
                        Err(_) => false,
                    };
                    let counter = if ok { &answered } else { &failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Self {
            answered,
            failed,
            stop,
            task,
        }
    }

    /// Waits until `n` more requests were answered (bounded by 10 s).
    async fn await_answers(&self, n: u64) {
        let target = self.answered.load(Ordering::Relaxed) + n;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.answered.load(Ordering::Relaxed) < target {
            assert!(Instant::now() < deadline, "the bystander stopped getting answers");
            tokio::task::yield_now().await;
        }
    }

    async fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("bystander task");
        (
            self.answered.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

enum Expect {
    Error(ErrorKind, u16, &'static str),
    Reply(&'static str),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_is_contained_and_the_neighbour_keeps_serving() {
    let t = start(MANIFEST).await.expect("start");
    let bystander = Bystander::start(&t);
    bystander.await_answers(1).await;

    let timeout = Duration::from_millis(300);
    let attacks = [
        (
            "hostile.loop",
            Expect::Error(ErrorKind::Timeout, 504, "did not finish"),
            timeout,
        ),
        (
            "hostile.oversleep",
            Expect::Error(ErrorKind::Timeout, 504, "did not finish"),
            timeout,
        ),
        (
            "hostile.memory",
            Expect::Error(ErrorKind::Trap, 500, "trapped"),
            timeout,
        ),
        ("hostile.stack", Expect::Error(ErrorKind::Trap, 500, "stack"), timeout),
        (
            "hostile.panic",
            Expect::Error(ErrorKind::Trap, 500, "unreachable"),
            timeout,
        ),
        (
            "hostile.huge-reply",
            Expect::Error(ErrorKind::TooLarge, 413, "max_hostcall_kb"),
            timeout,
        ),
        (
            "hostile.huge-log",
            Expect::Error(ErrorKind::TooLarge, 413, "max_hostcall_kb"),
            timeout,
        ),
        // The guest propagates the host's refusal with `?`.
        (
            "hostile.publish",
            Expect::Error(ErrorKind::Handler, 403, "may not publish to `secrets.leak`"),
            timeout,
        ),
        ("hostile.file", Expect::Reply("denied"), timeout),
        ("hostile.socket", Expect::Reply("denied"), timeout),
    ];
    for (subject, expect, limit) in attacks {
        let started = Instant::now();
        let reply = t
            .request(subject, "")
            .await
            .unwrap_or_else(|e| panic!("{subject}: {e}"));
        let elapsed = started.elapsed();
        assert!(elapsed <= limit + MARGIN, "{subject} took {elapsed:?}");
        match (expect, CallError::from_reply(&reply)) {
            (Expect::Error(kind, code, needle), Some(e)) => {
                assert_eq!((e.kind, e.code), (kind, code), "{subject}: {e}");
                assert!(e.message.contains(needle), "{subject}: {}", e.message);
            }
            (Expect::Reply(prefix), None) => {
                let text = String::from_utf8_lossy(&reply.body);
                assert!(text.starts_with(prefix), "{subject}: {text}");
            }
            (_, other) => panic!("{subject}: unexpected outcome {other:?} / {:?}", reply.body),
        }
        // The neighbour answered during and after the attack.
        bystander.await_answers(1).await;
        // And the attacker itself serves again.
        assert_eq!(t.ask("hostile.ok", "").await, "fine", "after {subject}");
    }

    let (answered, failed) = bystander.finish().await;
    assert_eq!(failed, 0, "the neighbour never failed ({answered} answered)");
    let hostile = t.host.route("hostile").expect("route").stats.snapshot();
    assert_eq!(hostile.forbidden, 1, "the forbidden publish was counted");
    assert!(hostile.demotions >= 1, "the endless loop was slowed down");
}

#[tokio::test]
async fn incoming_message_over_the_limit_is_refused_before_the_call() {
    let t = start("[[components]]\nname = \"echo\"\nwasm = \"{echo}\"\nsubscribe = [\"echo.>\"]\nmax_message_kb = 1\n")
        .await
        .expect("start");
    assert_eq!(t.ask("echo.small", vec![b'a'; 1024]).await.len(), 1024);
    let reply = t.request("echo.big", vec![b'a'; 1025]).await.expect("reply");
    let error = CallError::from_reply(&reply).expect("error");
    assert_eq!((error.kind, error.code), (ErrorKind::TooLarge, 413), "{error}");
}

#[tokio::test]
async fn fuel_limit_stops_a_loop_as_a_trap() {
    let t = start(
        "[[components]]\nname = \"hostile\"\nwasm = \"{hostile}\"\nsubscribe = [\"hostile.>\"]\nlink_unused_sockets = true\nfuel = 1000000\ntimeout_ms = 10000\n",
    )
    .await
    .expect("start");
    let started = Instant::now();
    let reply = t.request("hostile.loop", "").await.expect("reply");
    let error = CallError::from_reply(&reply).expect("error");
    assert_eq!(error.kind, ErrorKind::Trap, "{error}");
    assert!(error.message.contains("fuel"), "{}", error.message);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fuel, not the 10 s deadline, stopped it"
    );
    assert_eq!(t.ask("hostile.ok", "").await, "fine");
}
