//! Shared pieces of Berth's integration tests and benchmarks: the guest
//! components (built by `build.rs`) and a host started from manifest text.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use berth::control::auth::Auth;
use berth::control::http::Options;
use berth::manifest::Manifest;
use berth::transport::TransportError;
use berth::{Host, Message};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

pub mod bench;
pub mod certs;
pub mod direct;
pub mod jetstream;
pub mod keyvalue;
pub mod nats_server;
pub mod polyglot;
pub mod proxy;
pub mod rabbit_server;
pub mod redis_server;
pub mod swarm;

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// A host started for one test, with its own data folder.
pub struct TestHost {
    /// The running host.
    pub host: Host,
    /// Compile cache and component folders; removed on drop.
    pub data_dir: TempDir,
    /// The manifest: its `[host]` for the HTTP API's options, its routes.
    manifest: Manifest,
}

/// Replaces `{echo}`, `{gatekeeper}`, `{greeter}`, `{hostile}`,
/// `{http_hello}`, `{keeper}`, `{messaging_echo}`, `{probe}`,
/// `{swarm_node}`, `{wasmcloud_echo}`, `{watcher}` in manifest text with the paths of the
/// built guests.
pub fn with_guest_paths(text: &str) -> String {
    text.replace("{echo}", ECHO)
        .replace("{gatekeeper}", GATEKEEPER)
        .replace("{http_hello}", HTTP_HELLO)
        .replace("{wasmcloud_echo}", WASMCLOUD_ECHO)
        .replace("{messaging_echo}", MESSAGING_ECHO)
        .replace("{greeter}", GREETER)
        .replace("{hostile}", HOSTILE)
        .replace("{keeper}", KEEPER)
        .replace("{probe}", PROBE)
        .replace("{swarm_node}", SWARM_NODE)
        .replace("{watcher}", WATCHER)
}

/// Parses and validates manifest text the way `berth run` does (guest
/// placeholders filled in), with the data folder in a fresh temp dir.
pub fn manifest(text: &str) -> Result<(Manifest, TempDir)> {
    let data_dir = tempfile::tempdir()?;
    let mut manifest = Manifest::parse(&with_guest_paths(text))?;
    manifest.resolve_paths(Path::new("."));
    manifest.host.data_dir = data_dir.path().to_path_buf();
    manifest.validate()?;
    Ok((manifest, data_dir))
}

/// Starts a host from manifest text, with what answers for it on the
/// broker (health, the NATS service API, admin), as `berth run` does.
pub async fn start(text: &str) -> Result<TestHost> {
    let (manifest, data_dir) = manifest(text)?;
    let host = berth::control::start(&manifest).await?;
    Ok(TestHost {
        host,
        data_dir,
        manifest,
    })
}

/// Starts a host from a loaded manifest, with the data folder in a fresh
/// temp dir: a project's own `berth.toml`, say. Its `[host] http` address
/// is not bound (`serve_http` listens where a test says), and is moved to
/// any free port on loopback so that the manifest stays valid.
pub async fn start_manifest(mut manifest: Manifest) -> Result<TestHost> {
    let data_dir = tempfile::tempdir()?;
    manifest.host.data_dir = data_dir.path().to_path_buf();
    if manifest.host.http.is_some() {
        manifest.host.http = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    manifest.validate()?;
    let host = berth::control::start(&manifest).await?;
    Ok(TestHost {
        host,
        data_dir,
        manifest,
    })
}

impl TestHost {
    /// A fan-out subscription to `pattern` on the host's transport, to see
    /// what goes by.
    pub async fn watch(&self, pattern: &str) -> berth::transport::Subscription {
        self.host
            .transport()
            .subscribe(berth::transport::SubscribeOptions {
                pattern: pattern.into(),
                capacity: 1024,
                ..berth::transport::SubscribeOptions::default()
            })
            .await
            .expect("subscribe")
    }

    /// Serves the host's HTTP API on `addr` (a free port if it names port
    /// 0) until the returned guard is dropped; returns its base URL, on
    /// 127.0.0.1 whatever the address it listens on.
    pub async fn serve_http(&self, addr: &str) -> (String, DropGuard) {
        let listener = TcpListener::bind(addr).await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stop = CancellationToken::new();
        let host = &self.manifest.host;
        let options = Options::new(host, Auth::new(host.admin_token.clone()));
        let routes =
            berth::ingress::http::Routes::new(&self.manifest, &self.host.app()).expect("the manifest's routes");
        tokio::spawn(berth::control::http::serve(
            listener,
            self.host.app(),
            std::sync::Arc::new(berth::ingress::Ingress { routes, gateway: None }),
            options,
            stop.clone(),
        ));
        (format!("http://127.0.0.1:{port}"), stop.drop_guard())
    }

    /// Sends a request on the host's transport (5 s timeout).
    pub async fn request(&self, subject: &str, body: impl Into<bytes::Bytes>) -> Result<Message, TransportError> {
        self.host
            .transport()
            .request(Message::new(subject, body), Duration::from_secs(5))
            .await
    }

    /// Sends a request and returns the reply body as text; panics with the
    /// error if the reply is an error, so assertions read simply.
    pub async fn ask(&self, subject: &str, body: impl Into<bytes::Bytes>) -> String {
        let reply = self
            .request(subject, body)
            .await
            .expect("transport delivers the request");
        if let Some(e) = berth::CallError::from_reply(&reply) {
            panic!("request to {subject} failed: {e}");
        }
        String::from_utf8_lossy(&reply.body).into_owned()
    }
}

/// `text` with `[host] reply_headers = true`, so replies say which
/// component and version answered.
pub fn with_reply_headers(text: &str) -> String {
    match text.find("[host]\n") {
        Some(at) => {
            let end = at + "[host]\n".len();
            format!("{}reply_headers = true\n{}", &text[..end], &text[end..])
        }
        None => format!("[host]\nreply_headers = true\n{text}"),
    }
}

/// The component at `path` with a custom section appended: the same code
/// and behaviour under a different content hash, so a test can tell two
/// "versions" apart by the `Berth-Version` reply header.
pub fn relabel(path: &str, tag: &str) -> Vec<u8> {
    let mut wasm = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let name = b"berth-test-version";
    let mut payload = leb128(name.len());
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    wasm.push(0); // custom section id
    wasm.extend(leb128(payload.len()));
    wasm.extend(payload);
    wasm
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// The machine's NATS server (with JetStream), which the broker tests share.
pub const NATS: &str = "127.0.0.1:4222";

/// A client of [`NATS`]; fails (never skips) with how to start the server
/// when it is not running.
pub async fn nats_client() -> async_nats::Client {
    match async_nats::connect(NATS).await {
        Ok(c) => c,
        Err(e) => panic!(
            "NATS is not reachable on {NATS} ({e}). Start it (with JetStream) with:\n  start-stop-daemon --start --oknodo \
             --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log"
        ),
    }
}

/// The text a host's `/metrics` serves at `base` (its HTTP address).
pub async fn scrape_metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("the metrics page")
        .text()
        .await
        .expect("the metrics text")
}

/// A plain HTTP server on 127.0.0.1 that answers `GET /` with `pong`, for
/// components' outbound requests; its address.
pub async fn pong_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "pong" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr.to_string()
}

/// Waits until something listens on 127.0.0.1:`port` (a private server a
/// test started: it has no "ready" signal but its port); panics naming
/// `what` after `within`.
pub fn wait_for_port(port: u16, within: Duration, what: &str) {
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < within,
            "{what} did not listen on {port} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The machine's Redis server, which the key-value tests share.
pub const REDIS: &str = "redis://127.0.0.1:6379";

/// Fails (never skips) with how to start Redis when it is not running on
/// [`REDIS`].
pub fn require_redis() {
    if std::net::TcpStream::connect("127.0.0.1:6379").is_err() {
        panic!(
            "Redis is not reachable on 127.0.0.1:6379. Start it with:\n  redis-server --daemonize yes --port 6379 --save ''"
        );
    }
}

/// A name no other test or test run uses: `tag`, the process id and the
/// time (also valid as a subject token and a stream name).
pub fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{tag}{}n{nanos}", std::process::id())
}
