//! A private `redis-server` for tests that stop one, on a free loopback
//! port and keeping nothing on disk, so the shared server on 6379 is never
//! touched.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running private server; killed on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts one on `port` and returns once it accepts connections.
    pub fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); it comes with the machine's Redis: apt-get install redis-server")
            });
        crate::wait_for_port(port, Duration::from_secs(10), "private redis-server");
        Self { child, port }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL) and waits until it is gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
