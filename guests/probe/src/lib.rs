//! A test component that exercises the host: instance reuse, concurrency,
//! traps, deadlines, grants, outbound requests, event failures, config and
//! a slow `init` (`init_sleep_ms`).
//! (Socket attempts live in `hostile`, which must opt in to load at all.)
//! Each route's subject says what it does.

use std::cell::Cell;
use std::time::Duration;

use berth_sdk::{Config, Error, Message, Reply, Router};

thread_local! {
    /// Survives between calls only while the instance is reused.
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

fn routes(config: &Config) -> Result<Router, Error> {
    if config.get_bool("fail_init") == Some(true) {
        return Err(Error::internal("init refused: fail_init is set"));
    }
    // A slow start, as a large component's first compile is: for the
    // host's start-up tests.
    if let Some(ms) = config.get_i64("init_sleep_ms") {
        std::thread::sleep(Duration::from_millis(ms.max(0) as u64));
    }
    if config.get_bool("trap_all") == Some(true) {
        // A broken version: traps on every message it gets.
        return Ok(Router::new()
            .request(">", |_| panic!("trap_all is set"))
            .event(">", |_| panic!("trap_all is set")));
    }
    let config_json = serde_json::to_vec(&config.parse_as::<serde_json::Value>()?)?;
    Ok(Router::new()
        // How many calls this instance has served, this one included.
        .request("probe.count", |_| {
            let n = CALLS.with(|c| {
                c.set(c.get() + 1);
                c.get()
            });
            Ok(Reply::text(n.to_string()))
        })
        // Sleeps for the number of milliseconds in the body.
        .request("probe.sleep", |msg: &Message| {
            let ms: u64 = msg.text()?.trim().parse().map_err(|_| Error::bad_request("body must be milliseconds"))?;
            std::thread::sleep(Duration::from_millis(ms));
            Ok(Reply::text("slept"))
        })
        // Computes for the number of rounds in the body (a million take
        // a few milliseconds) and replies with the result: CPU-bound work.
        .request("probe.work", |msg: &Message| {
            let rounds: u64 = msg.text()?.trim().parse().map_err(|_| Error::bad_request("body must be a number of rounds"))?;
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            for _ in 0..rounds {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x = std::hint::black_box(x);
            }
            Ok(Reply::text(x.to_string()))
        })
        .request("probe.panic", |_| panic!("probe was asked to panic"))
        .request("probe.spin", |_| {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        })
        // Publishes the body to the subject named in the `to` header.
        .request("probe.publish", |msg: &Message| {
            let to = msg.header("to").ok_or_else(|| Error::bad_request("missing `to` header"))?;
            berth_sdk::publish(to, msg.body.clone())?;
            Ok(Reply::text("published"))
        })
        // Requests the subject named in the body and returns the reply
        // body, or `error <kind> <code>` describing what the guest saw.
        .request("probe.request", |msg: &Message| {
            match berth_sdk::request(msg.text()?, "from probe", Duration::from_millis(500)) {
                Ok(reply) => Ok(Reply::new(reply.body)),
                Err(e) => Ok(Reply::text(format!("error {:?} {}", e.kind, e.code))),
            }
        })
        .request("probe.config", move |_| Ok(Reply::new(config_json.clone())))
        // Returns the value of the environment variable named in the body.
        .request("probe.env", |msg: &Message| {
            Ok(Reply::text(std::env::var(msg.text()?).unwrap_or_else(|_| "<unset>".into())))
        })
        // Prints the body to stdout and stderr.
        .request("probe.print", |msg: &Message| {
            println!("out: {}", msg.text()?);
            eprintln!("err: {}", msg.text()?);
            Ok(Reply::text("printed"))
        })
        // Tries to read the file named in the body.
        .request("probe.read-file", |msg: &Message| {
            Ok(Reply::text(match std::fs::read(msg.text()?) {
                Ok(bytes) => format!("read {} bytes", bytes.len()),
                Err(e) => format!("denied: {e}"),
            }))
        })
        // Writes the body to /data/note.txt and reads it back.
        .request("probe.write-file", |msg: &Message| {
            let written = std::fs::write("/data/note.txt", &msg.body).and_then(|()| std::fs::read("/data/note.txt"));
            Ok(Reply::new(match written {
                Ok(bytes) => bytes,
                Err(e) => format!("denied: {e}").into_bytes(),
            }))
        })
        // An error with a code from the body, and data.
        .request("probe.error", |msg: &Message| {
            let code: u16 = msg.text()?.trim().parse().unwrap_or(418);
            Err(Error::new(code, "Probe Error", "the probe failed on request").with_data(vec![0, 159, 146, 150]))
        })
        // Re-publishes every event to `probe.seen.<last token>`.
        .event("probe.event.*", seen)
        // Fails (to be retried) on its first delivery, then behaves like
        // `probe.event.*`; `probe.flaky3.*` fails the first two.
        .event("probe.flaky.*", |msg: &Message| flaky(msg, 2))
        .event("probe.flaky3.*", |msg: &Message| flaky(msg, 3))
        // Sleeps for the milliseconds in its body, then behaves like
        // `probe.event.*`: events that are in flight for a while.
        .event("probe.slow.*", |msg: &Message| {
            let ms: u64 = msg.text()?.trim().parse().map_err(|_| Error::bad_request("body must be milliseconds"))?;
            std::thread::sleep(Duration::from_millis(ms));
            seen(msg)
        })
        // Always fails with a retry disposition (a 5xx).
        .event("probe.fail.*", |_| Err(Error::internal("probe always fails")))
        // Always fails for good (a 4xx: reject, do not retry).
        .event("probe.reject.*", |_| Err(Error::bad_request("probe rejects this event"))))
}

/// Fails until the broker's `berth-attempt` header reaches `succeed_on`.
fn flaky(msg: &Message, succeed_on: u32) -> Result<(), Error> {
    let attempt: u32 = msg.header("berth-attempt").and_then(|a| a.parse().ok()).unwrap_or(1);
    if attempt < succeed_on {
        return Err(Error::internal(format!("flaky: delivery {attempt} fails")));
    }
    seen(msg)
}

/// Re-publishes an event to `probe.seen.<last token of its subject>`.
fn seen(msg: &Message) -> Result<(), Error> {
    let last = msg.subject.rsplit('.').next().unwrap_or("");
    berth_sdk::publish(&format!("probe.seen.{last}"), msg.body.clone())
}

berth_sdk::export!(routes);
