//! What the broker RPC benches share: the measuring loop, CPU time of the
//! responder's process, starting a responder as a child process, the table.

/// The allocator the `berth` binary runs with, for both responders.
#[global_allocator]
static ALLOCATOR: berth::cli::allocator::Allocator = berth::cli::allocator::Allocator;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Each figure is the median of this many rounds, unless
/// `BERTH_BENCH_ROUNDS` says otherwise: on a shared machine the paired
/// ratio of one round moves by ±10 points, so its median needs more than a
/// handful.
pub const ROUNDS: usize = 9;

/// [`ROUNDS`], or `BERTH_BENCH_ROUNDS` if it is set to a positive number.
pub fn rounds() -> usize {
    std::env::var("BERTH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(ROUNDS)
}
/// Requests in flight at each level: 1, 64 and 256.
const IN_FLIGHT: [usize; 3] = [1, 64, 256];

/// One round's figures.
pub struct Phase {
    pub throughput: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cpu_us_per_msg: f64,
    /// The broker's CPU time per message, if its process was found.
    pub broker_us_per_msg: Option<f64>,
    /// This process's (the load generator's) CPU time per message.
    pub load_us_per_msg: f64,
}

/// user + sys CPU time of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after `(comm) `: state is the 1st, utime and stime the 12th and 13th.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0 // USER_HZ
}

/// The process whose command name is `comm` (`nats-server`, RabbitMQ's
/// `beam.smp`), if one runs on this machine: the broker, whose CPU time
/// per message the tables show beside the responder's.
pub fn find_process(comm: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        (name.trim() == comm).then_some(pid)
    })
}

/// Keeps `in_flight` calls going until `total` were made; `pid` is the
/// responder whose CPU time is charged to the messages, `broker` the
/// broker's process if known.
pub async fn measure<F, Fut>(call: F, in_flight: usize, total: usize, pid: u32, broker: Option<u32>) -> Phase
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let issued = Arc::new(AtomicUsize::new(0));
    let cpu_before = cpu_seconds(pid);
    let broker_before = broker.map(cpu_seconds);
    let load_before = cpu_seconds(std::process::id());
    let started = Instant::now();
    let loops: Vec<_> = (0..in_flight)
        .map(|_| {
            let (call, issued) = (call.clone(), issued.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while issued.fetch_add(1, Ordering::Relaxed) < total {
                    let sent = Instant::now();
                    call().await;
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all: Vec<Duration> = Vec::with_capacity(total);
    for l in loops {
        all.extend(l.await.unwrap());
    }
    let elapsed = started.elapsed();
    let cpu = cpu_seconds(pid) - cpu_before;
    let count = all.len() as f64;
    let per_message = |seconds: f64| seconds * 1e6 / count;
    let broker_us_per_msg = broker
        .zip(broker_before)
        .map(|(broker, before)| per_message(cpu_seconds(broker) - before));
    let load_us_per_msg = per_message(cpu_seconds(std::process::id()) - load_before);
    all.sort();
    Phase {
        throughput: all.len() as f64 / elapsed.as_secs_f64(),
        p50_us: all[all.len() / 2].as_secs_f64() * 1e6,
        p99_us: all[all.len() * 99 / 100].as_secs_f64() * 1e6,
        cpu_us_per_msg: per_message(cpu),
        broker_us_per_msg,
        load_us_per_msg,
    }
}

/// This bench binary again, as `--serve KIND`, once it printed `ready`.
pub fn spawn_responder(kind: &str) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--serve", kind])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "{kind} responder started");
    child
}

pub fn median(v: Vec<f64>) -> f64 {
    quartiles(v).1
}

/// The first quartile, the median and the third quartile of `v`: the
/// middle half of the rounds lies between the first and the last.
pub fn quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 4], v[v.len() / 2], v[(v.len() * 3) / 4])
}

/// One responder under test: its name in the table, its process (for CPU
/// time) and how to send it one request.
struct Responder<F> {
    name: &'static str,
    pid: u32,
    call: F,
}

/// Runs every level against every responder and returns their rows,
/// responder by responder.
///
/// The rounds are interleaved (native, Berth, native, Berth, ...) rather
/// than run responder after responder: on a shared machine the load from
/// elsewhere drifts over minutes, and interleaving lets both feel the same
/// drift. "vs native" is the median of each round's ratio to the first
/// responder's round just before it, not a ratio of medians.
///
/// `requests[i]` is how many requests a round sends at `IN_FLIGHT[i]`:
/// enough for a round to last about a second, so that the CPU time (read
/// in 10 ms ticks) is not rounded away.
///
/// Through a broker on a machine this small, throughput is bounded by the
/// CPU of all three processes (responder, broker, load generator), and
/// how a responder answers changes what the other two spend: so each row
/// also charges the broker's and the load generator's CPU to its messages.
async fn run_levels<F, Fut>(responders: &[Responder<F>], requests: [usize; 3], broker: Option<u32>) -> Vec<Row>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    for r in responders {
        measure(r.call.clone(), 64, 5_000, r.pid, broker).await; // warm-up
    }
    let mut rows: Vec<Vec<Row>> = responders.iter().map(|_| Vec::new()).collect();
    for (in_flight, total) in IN_FLIGHT.into_iter().zip(requests) {
        let mut phases: Vec<Vec<Phase>> = responders.iter().map(|_| Vec::new()).collect();
        for _ in 0..rounds() {
            for (r, phases) in responders.iter().zip(&mut phases) {
                phases.push(measure(r.call.clone(), in_flight, total, r.pid, broker).await);
            }
        }
        for ((r, own), rows) in responders.iter().zip(&phases).zip(&mut rows) {
            let pick = |f: fn(&Phase) -> f64| median(own.iter().map(f).collect());
            let ratios = own.iter().zip(&phases[0]).map(|(p, n)| p.throughput / n.throughput);
            rows.push(Row {
                name: r.name,
                in_flight,
                throughput: pick(|p| p.throughput),
                vs_native: quartiles(ratios.collect()),
                p50_us: pick(|p| p.p50_us),
                p99_us: pick(|p| p.p99_us),
                cpu_us: pick(|p| p.cpu_us_per_msg),
                broker_us: broker.map(|_| pick(|p| p.broker_us_per_msg.unwrap_or(f64::NAN))),
                load_us: pick(|p| p.load_us_per_msg),
            });
        }
    }
    rows.into_iter().flatten().collect()
}

/// One line of the table.
pub struct Row {
    pub name: &'static str,
    pub in_flight: usize,
    pub throughput: f64,
    /// Quartiles (first, median, third) of the per-round throughput
    /// ratios to the first responder.
    pub vs_native: (f64, f64, f64),
    pub p50_us: f64,
    pub p99_us: f64,
    pub cpu_us: f64,
    pub broker_us: Option<f64>,
    pub load_us: f64,
}

/// Starts each responder (`--serve KIND`, given with its name and how to
/// call it), runs every level against all of them side by side, stops them.
/// `broker` is the broker's command name, for its CPU time.
pub async fn run_responders<F, Fut>(
    responders: Vec<(&'static str, &str, F)>,
    requests: [usize; 3],
    broker: &str,
) -> Vec<Row>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let mut children = Vec::new();
    let mut under_test = Vec::new();
    for (name, kind, call) in responders {
        let child = spawn_responder(kind);
        under_test.push(Responder {
            name,
            pid: child.id(),
            call,
        });
        children.push(child);
    }
    let broker = find_process(broker);
    let rows = run_levels(&under_test, requests, broker).await;
    for mut child in children {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    rows
}

/// Prints the rows as a Markdown table.
pub fn print(rows: &[Row]) {
    println!(
        "| responder | in flight | req/s | vs native (paired rounds: median, middle half) | p50 | p99 | CPU per message: responder | broker | load generator |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        let (low, median, high) = r.vs_native;
        println!(
            "| {} | {} | {:.0} | {:.0}% ({:.0}-{:.0}%) | {:.0} µs | {:.0} µs | {:.2} µs | {} | {:.2} µs |",
            r.name,
            r.in_flight,
            r.throughput,
            100.0 * median,
            100.0 * low,
            100.0 * high,
            r.p50_us,
            r.p99_us,
            r.cpu_us,
            r.broker_us.map_or("—".to_owned(), |us| format!("{us:.2} µs")),
            r.load_us
        );
    }
}

/// Berth's own path (its transport, the router, settling) with a native
/// Rust echo handler where the wasm guest would be: what the host costs
/// apart from the wasm call. Serves `subscription` (for `pattern`) until
/// the process is killed; on NATS a core subscription with its acker as
/// itself, as the host serves one.
pub async fn serve_host_only<A: berth::transport::Settle>(
    kind: &'static str,
    subscription: berth::transport::Subscription<A>,
    pattern: &str,
) {
    use berth::router::{self, Route};
    let echo = berth::NativeHandler(|m: berth::Message| {
        Ok(berth::Reply {
            body: m.body,
            headers: m.headers,
        })
    });
    let route = Route::native("echo", &[pattern], 256, Arc::new(echo)).without_reply_headers();
    let tasks = tokio_util::task::TaskTracker::new();
    let stop = tokio_util::sync::CancellationToken::new();
    router::serve(Arc::new(route), 0, kind, subscription, &tasks, stop);
    println!("ready");
    std::future::pending::<()>().await;
}

/// The subscription options the host-only responders share with Berth's.
pub fn host_only_options(pattern: &str, group: &str) -> berth::transport::SubscribeOptions {
    berth::transport::SubscribeOptions {
        pattern: pattern.to_owned(),
        group: Some(group.to_owned()),
        capacity: 256,
        ..Default::default()
    }
}

/// Handles the child-process modes of a bench binary: `--serve native`,
/// `--serve berth` (Berth as configured by default), `--serve
/// berth-headers` (with `[host] reply_headers = true`), `--serve
/// host-only` (Berth with a native handler, [`serve_host_only`]) and
/// cargo's `--list`. Returns `true` if it did (the caller then returns),
/// `false` for a normal run.
pub fn child_mode<N, B, H>(
    rt: &tokio::runtime::Runtime,
    native: impl FnOnce() -> N,
    berth: impl FnOnce(Berth) -> B,
    host_only: impl FnOnce() -> H,
) -> bool
where
    N: Future<Output = ()>,
    B: Future<Output = ()>,
    H: Future<Output = ()>,
{
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        match args.get(i + 1).map(String::as_str) {
            Some("native") => rt.block_on(native()),
            Some("host-only") => rt.block_on(host_only()),
            Some(kind) if let Some(options) = Berth::of(kind) => rt.block_on(berth(options)),
            other => panic!("--serve native|berth|berth-single|berth-headers|host-only, not {other:?}"),
        }
        return true;
    }
    // `cargo bench -- --list` asks for benchmark names.
    args.iter().any(|a| a == "--list")
}

/// How a `--serve berth…` child runs Berth with the echo guest.
#[derive(Clone, Copy, Debug)]
pub struct Berth {
    /// The responder's kind, used as its subject prefix and component name.
    pub kind: &'static str,
    /// `[host] reply_headers`.
    pub reply_headers: bool,
    /// The component's `max_batch`.
    pub max_batch: usize,
    /// The echo guest: `{echo}` (the Rust SDK's) or `{wasmcloud_echo}`
    /// (written for wasmCloud's messaging world).
    pub guest: &'static str,
    /// The component's `instance_mode`.
    pub mode: &'static str,
    /// `[transports.amqp] coalesce_acks` (AMQP only).
    #[allow(dead_code)] // read by the AMQP bench, not the NATS one
    pub coalesce_acks: bool,
}

impl Berth {
    /// `berth` (the defaults), `berth-single` (`max_batch = 1`: one call
    /// per message), `berth-headers` (`reply_headers = true`) or
    /// `berth-wasmcloud` (the wasmCloud echo instead of Berth's) or
    /// `berth-fresh` (`instance_mode = "fresh"`: a new instance per message)
    /// or `berth-each-ack` (`coalesce_acks = false`, AMQP).
    pub fn of(kind: &str) -> Option<Self> {
        let (kind, reply_headers, max_batch, guest, mode) = match kind {
            "berth" => ("berth", false, 32, "{echo}", "pooled"),
            "berth-single" => ("berth-single", false, 1, "{echo}", "pooled"),
            "berth-headers" => ("berth-headers", true, 32, "{echo}", "pooled"),
            "berth-wasmcloud" => ("berth-wasmcloud", false, 32, "{wasmcloud_echo}", "pooled"),
            "berth-fresh" => ("berth-fresh", false, 1, "{echo}", "fresh"),
            "berth-each-ack" => ("berth-each-ack", false, 32, "{echo}", "pooled"),
            _ => return None,
        };
        let coalesce_acks = kind != "berth-each-ack";
        Some(Self {
            kind,
            reply_headers,
            max_batch,
            guest,
            mode,
            coalesce_acks,
        })
    }
}
