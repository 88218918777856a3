//! A private RabbitMQ node for tests that need a broker configured
//! otherwise than the machine's (a TLS listener), on free ports with its
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
    /// Its AMQP-over-TLS port.
    pub tls_port: u16,
    _dir: tempfile::TempDir,
}

impl RabbitServer {
    /// Starts a node whose only listener is AMQP over TLS with the given
    /// PEM files, and returns once that port accepts connections.
    pub fn start_tls(ca: &Path, cert: &Path, key: &Path) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tls_port, dist_port) = (free_port(), free_port());
        let config = dir.path().join("rabbitmq.conf");
        std::fs::write(
            &config,
            format!(
                "listeners.tcp = none\nlisteners.ssl.default = {tls_port}\n\
                 ssl_options.cacertfile = {}\nssl_options.certfile = {}\nssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n",
                ca.display(),
                cert.display(),
                key.display()
            ),
        )
        .expect("write rabbitmq.conf");
        let plugins = dir.path().join("enabled_plugins");
        std::fs::write(&plugins, "[].\n").expect("write enabled_plugins");
        let node = format!("berth-test-{}-{tls_port}@localhost", std::process::id());
        // The Debian wrapper in /usr/sbin switches to the rabbitmq user, who
        // could not read this test's folder: run the server script itself.
        let child = Command::new(SERVER)
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", &config)
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", &plugins)
            .env("RABBITMQ_MNESIA_BASE", dir.path().join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.path().join("log"))
            .env("RABBITMQ_PID_FILE", dir.path().join("pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run rabbitmq-server ({e}); it comes with the machine's RabbitMQ: apt-get install rabbitmq-server")
            });
        let what = format!(
            "private RabbitMQ node {node} (logs: {})",
            dir.path().join("log").display()
        );
        crate::wait_for_port(tls_port, Duration::from_secs(60), &what);
        Self {
            child,
            tls_port,
            _dir: dir,
        }
    }
}

impl Drop for RabbitServer {
    fn drop(&mut self) {
        // rabbitmq-server is a script; the Erlang VM is its child, in its
        // process group: stop them all.
        let pid = self.child.id().to_string();
        let _ = Command::new("pkill").args(["-TERM", "-P", &pid]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
