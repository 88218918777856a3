//! A component that attacks its host, one attack per subject. Berth must
//! end each attack's call with a clear error and keep everything else
//! serving. See guests/README.md.

use std::time::Duration;

use berth_sdk::{Config, Level, Message, Reply, Router};

/// Recurses until the wasm stack runs out (on purpose). Scalars only, so
/// the frames live on the wasm stack rather than Rust's shadow stack in
/// linear memory; the work after the call keeps it from becoming a loop.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    recurse(depth.wrapping_add(1)).wrapping_mul(3) ^ depth
}

fn routes(_: &Config) -> Router {
    Router::new()
        .request("hostile.ok", |_| Ok(Reply::text("fine")))
        .event("hostile.poison.*", |_| panic!("hostile traps on this event every time"))
        .request("hostile.loop", |_| {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        })
        .request("hostile.memory", |_| {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        })
        .request("hostile.stack", |_| Ok(Reply::text(recurse(0).to_string())))
        .request("hostile.panic", |_| panic!("hostile panics on purpose"))
        .request("hostile.publish", |_| {
            berth_sdk::publish("secrets.leak", "stolen")?;
            Ok(Reply::text("leaked"))
        })
        .request("hostile.file", |_| {
            Ok(Reply::text(match std::fs::read_to_string("/etc/passwd") {
                Ok(_) => "read /etc/passwd".to_owned(),
                Err(e) => format!("denied: {e}"),
            }))
        })
        .request("hostile.socket", |_| {
            Ok(Reply::text(match std::net::TcpStream::connect("127.0.0.1:5672") {
                Ok(_) => "connected".to_owned(),
                Err(e) => format!("denied: {e}"),
            }))
        })
        .request("hostile.huge-reply", |_| Ok(Reply::new(vec![b'x'; 8 << 20])))
        .request("hostile.oversleep", |_| {
            std::thread::sleep(Duration::from_secs(60));
            Ok(Reply::text("woke up"))
        })
        .request("hostile.huge-log", |msg: &Message| {
            let mib: usize = msg.text()?.trim().parse().unwrap_or(8);
            berth_sdk::log(Level::Info, &"A".repeat(mib << 20));
            Ok(Reply::text("logged"))
        })
}

berth_sdk::export!(routes);
