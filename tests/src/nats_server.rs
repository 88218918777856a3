//! A private `nats-server` for tests that must stop, restart or configure
//! the server (auth), on a free loopback port with its own JetStream
//! store, so the shared server on 4222 is never touched; and a private
//! cluster of them.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running private server; killed on drop.
pub struct NatsServer {
    child: Child,
    port: u16,
    store: tempfile::TempDir,
    args: Vec<String>,
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl NatsServer {
    /// Starts one with JetStream and `args` (e.g. `--auth TOKEN`) and
    /// returns once it accepts connections. The server picks its own port
    /// and names it in a ports file: a port picked here could be taken by
    /// a test running alongside before the server binds it.
    pub fn start(args: &[&str]) -> Self {
        let store = tempfile::tempdir().expect("tempdir");
        Self::spawn(None, store, args.iter().map(|a| (*a).to_owned()).collect())
    }

    /// Runs nats-server on `port` (or one it picks) and waits until it
    /// accepts clients.
    fn spawn(port: Option<u16>, store: tempfile::TempDir, args: Vec<String>) -> Self {
        let ports = store.path().join("ports");
        std::fs::create_dir_all(&ports).expect("ports dir");
        let asked = port.map_or_else(|| "-1".to_owned(), |p| p.to_string());
        let mut child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &asked, "--ports_file_dir"])
            .arg(&ports)
            .args(["-js", "-sd"])
            .arg(store.path().join("js"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run nats-server ({e}); it comes with the machine's NATS: apt-get install nats-server")
            });
        let port = listening_port(&mut child, &ports);
        crate::wait_for_port(port, Duration::from_secs(10), "private nats-server");
        Self {
            child,
            port,
            store,
            args,
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops it as an orchestrator does (SIGTERM: JetStream flushes its
    /// store), then starts it again on the same port and store.
    pub fn restart(mut self) -> Self {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
        let store = std::mem::replace(&mut self.store, tempfile::tempdir().expect("tempdir"));
        Self::spawn(Some(self.port), store, std::mem::take(&mut self.args))
    }
}

/// The client port a starting server writes to its ports file
/// (`{"client": ["nats://127.0.0.1:PORT"], …}`), within 10 s; fails if
/// the server exits first (a port in use, a bad argument).
fn listening_port(child: &mut Child, dir: &std::path::Path) -> u16 {
    let started = std::time::Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the private nats-server exited at start ({status}); run it by hand to see why");
        }
        let written = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .find(|e| e.path().extension().is_some_and(|x| x == "ports"));
        let port = written
            .and_then(|e| std::fs::read(e.path()).ok())
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .and_then(|ports| {
                let url = ports["nats"][0].as_str()?.to_owned();
                url.rsplit(':').next()?.parse().ok()
            });
        if let Some(port) = port {
            return port;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the private nats-server wrote no ports file in {} within 10 s",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private cluster: servers with JetStream, routed to each other on
/// loopback ports of their own. Killed on drop.
pub struct NatsCluster {
    /// Its servers, `None` once killed.
    pub servers: Vec<Option<NatsServer>>,
}

impl NatsCluster {
    /// Starts `size` servers in one cluster and returns once each accepts
    /// clients (JetStream may still be electing its leader).
    pub fn start(size: usize) -> Self {
        let routes: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let all = routes
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let servers = routes
            .iter()
            .enumerate()
            .map(|(i, route)| {
                let args = vec![
                    "--server_name".to_owned(),
                    format!("berth-test-{i}"),
                    "--cluster_name".to_owned(),
                    "berth-test".to_owned(),
                    "--cluster".to_owned(),
                    format!("nats://127.0.0.1:{route}"),
                    "--routes".to_owned(),
                    all.clone(),
                ];
                Some(NatsServer::spawn(None, tempfile::tempdir().expect("tempdir"), args))
            })
            .collect();
        Self { servers }
    }

    /// Every server's URL, comma-separated, as `[transports.nats] url`
    /// takes them.
    pub fn urls(&self) -> String {
        self.servers
            .iter()
            .flatten()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Kills server `i` at once (SIGKILL: no goodbye to clients or peers).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut server) = self.servers[i].take() {
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
    }
}
