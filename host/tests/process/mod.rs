//! A `berth run` process for the binary's tests, with its log followed.

#![allow(dead_code)] // each test binary uses part of it

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The binary under test.
pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Writes `berth.toml` into `dir`: HTTP on a port the host picks (read it
/// with [`Host::http`]: a port chosen here could be taken by another test
/// before the host binds it), then `components` (manifest text); returns
/// its path.
pub fn manifest_with_http(dir: &std::path::Path, components: &str) -> std::path::PathBuf {
    let manifest = dir.join("berth.toml");
    std::fs::write(&manifest, format!("[host]\nhttp = \"127.0.0.1:0\"\n{components}")).expect("write");
    manifest
}

/// Swaps the probe guest in as component `probe` every 100 ms over the
/// host's HTTP API at `http` until aborted, counting the swaps answered in
/// `done`: the fault checkers' hot-swap storm.
pub async fn swap_storm(http: String, done: std::sync::Arc<std::sync::atomic::AtomicU32>) {
    let wasm = std::fs::read(berth_tests::PROBE).expect("probe");
    let client = reqwest::Client::new();
    for i in 0.. {
        let swapped = client
            .put(format!("{http}/v1/components/probe?label=storm-{i}"))
            .body(wasm.clone())
            .send()
            .await;
        if swapped.is_ok_and(|r| r.status().is_success()) {
            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `berth run` process whose log the test follows; killed if the test
/// fails half-way.
pub struct Host {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Where its HTTP listener bound, once it has logged it.
    http: std::cell::RefCell<Option<String>>,
}

impl Host {
    pub fn run(manifest: &std::path::Path) -> Self {
        Self::run_with(manifest, &[])
    }

    /// [`Host::run`] with more environment variables.
    pub fn run_with(manifest: &std::path::Path, env: &[(&str, &str)]) -> Self {
        Self::spawn(Command::new(BERTH).arg("run").arg(manifest).envs(env.iter().copied()))
    }

    /// Any `berth` command, its stdout and stderr followed line by line.
    pub fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn berth");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let out = tx.clone();
        std::thread::spawn(move || follow(stdout, out));
        std::thread::spawn(move || follow(stderr, tx));
        Self {
            child,
            lines,
            http: std::cell::RefCell::default(),
        }
    }

    /// Waits for the next log line containing `needle` (30 s at most).
    pub fn wait_for(&self, needle: &str) {
        self.line_with(needle);
    }

    /// Every log line up to and including the next one containing
    /// `needle` (30 s at most).
    pub fn lines_until(&self, needle: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self
                .next_line()
                .unwrap_or_else(|_| panic!("no log line `{needle}` in time; got:\n{}", lines.join("\n")));
            let done = line.contains(needle);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// The next log line containing `needle` (30 s at most), whole.
    pub fn line_with(&self, needle: &str) -> String {
        let mut seen = Vec::new();
        loop {
            match self.next_line() {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the host exited before logging `{needle}`; it said:\n{}",
                        seen.join("\n")
                    )
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "no log line `{needle}` in 30 s (is the broker running? nats-server on 4222, RabbitMQ on 5672); the host said:\n{}",
                    seen.join("\n")
                ),
            }
        }
    }

    /// The URL of its HTTP listener (`http://127.0.0.1:<port>`), waiting
    /// for the line that names it.
    pub fn http(&self) -> String {
        if self.http.borrow().is_none() {
            self.wait_for("HTTP admin and ingress listening");
        }
        self.http
            .borrow()
            .clone()
            .expect("the listening line names its address")
    }

    /// The next log line (30 s at most), noting the HTTP address on the way.
    fn next_line(&self) -> Result<String, mpsc::RecvTimeoutError> {
        let line = self.lines.recv_timeout(Duration::from_secs(30))?;
        if line.contains("HTTP admin and ingress listening")
            && let Some(addr) = line.split_whitespace().find_map(|w| w.strip_prefix("addr="))
        {
            *self.http.borrow_mut() = Some(format!("http://{addr}"));
        }
        Ok(line)
    }

    /// Sends `signal` (`-TERM`, `-KILL`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .expect("kill")
                .success()
        );
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn follow(from: impl std::io::Read, to: mpsc::Sender<String>) {
    for line in BufReader::new(from).lines().map_while(Result::ok) {
        if to.send(line).is_err() {
            break;
        }
    }
}
