//! A private RabbitMQ node for tests that need a broker configured
//! otherwise than the machine's (a TLS listener, a restart), on free ports with its
//! own data and log folders, so the shared broker on 5672 is never
//! touched. An Erlang node takes a few seconds to start.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::nats_server::free_port;

/// The server script, under the wrapper that Debian puts on the PATH.
const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// A running private node; stopped on drop.
pub struct RabbitServer {
    child: Child,
    /// Its AMQP port: plain (`start`) or TLS (`start_tls`).
    pub port: u16,
    node: String,
    dist_port: u16,
    dir: tempfile::TempDir,
}

impl RabbitServer {
    /// Starts a node with one plain AMQP listener, and returns once it
    /// accepts connections.
    pub fn start() -> Self {
        let port = free_port();
        Self::start_with(port, &format!("listeners.tcp.default = {port}\n"))
    }

    /// Starts a node whose only listener is AMQP over TLS with the given
    /// PEM files, and returns once that port accepts connections.
    pub fn start_tls(ca: &Path, cert: &Path, key: &Path) -> Self {
        let port = free_port();
        Self::start_with(
            port,
            &format!(
                "listeners.tcp = none\nlisteners.ssl.default = {port}\n\
                 ssl_options.cacertfile = {}\nssl_options.certfile = {}\nssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n",
                ca.display(),
                cert.display(),
                key.display()
            ),
        )
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f` (a plain node's).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The pid of its Erlang VM (the server script's child), whose CPU
    /// time is the broker's.
    pub fn vm_pid(&self) -> Option<u32> {
        let out = Command::new("pgrep")
            .args(["-P", &self.child.id().to_string(), "beam.smp"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).lines().next()?.trim().parse().ok()
    }

    fn start_with(port: u16, config: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("rabbitmq.conf"), config).expect("write rabbitmq.conf");
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").expect("write enabled_plugins");
        let node = format!("berth-test-{}-{port}@localhost", std::process::id());
        let dist_port = free_port();
        let child = spawn(dir.path(), &node, dist_port, port);
        Self {
            child,
            port,
            node,
            dist_port,
            dir,
        }
    }

    /// Stops the node (its Erlang VM terminated, as a crash would leave
    /// it) and starts it again on the same ports with the same data:
    /// durable queues and persistent messages survive.
    pub fn restart(mut self) -> Self {
        self.stop();
        self.child = spawn(self.dir.path(), &self.node, self.dist_port, self.port);
        self
    }

    fn stop(&mut self) {
        // rabbitmq-server is a script; the Erlang VM is its child, in its
        // process group: stop them all.
        let pid = self.child.id().to_string();
        let _ = Command::new("pkill").args(["-KILL", "-P", &pid]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Erlang's port mapper daemon outlives the node; the AMQP port is
        // free once the VM is gone.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs the node's server script with its folders in `dir`, and waits
/// until `port` accepts connections.
fn spawn(dir: &Path, node: &str, dist_port: u16, port: u16) -> Child {
    // The Debian wrapper in /usr/sbin switches to the rabbitmq user, who
    // could not read this test's folder: run the server script itself.
    let child = Command::new(SERVER)
        .env("RABBITMQ_NODENAME", node)
        .env("RABBITMQ_DIST_PORT", dist_port.to_string())
        .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
        .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
        .env("RABBITMQ_LOG_BASE", dir.join("log"))
        .env("RABBITMQ_PID_FILE", dir.join("pid"))
        // Schedulers that wait for work do not spin: the node shares two
        // cores with the tests (and in `scale_out`, with the hosts it
        // serves), where spinning takes CPU they need. RabbitMQ's own
        // advice for machines it shares.
        .env(
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
            "+sbwt none +sbwtdcpu none +sbwtdio none",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run rabbitmq-server ({e}); it comes with the machine's RabbitMQ: apt-get install rabbitmq-server")
        });
    let what = format!("private RabbitMQ node {node} (logs: {})", dir.join("log").display());
    crate::wait_for_port(port, Duration::from_secs(60), &what);
    child
}

impl Drop for RabbitServer {
    fn drop(&mut self) {
        self.stop();
    }
}
