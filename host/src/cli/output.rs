//! What a command writes: its output on stdout ([`say`]) and its log on
//! stderr, as a service logs (a host) or as a tool does (untimed, Berth's
//! own lines only).

use super::{Cli, Command};

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event, for log collectors.
    Json,
}

/// Prints one line of a command's output on stdout, where a pipe or a
/// person reads it (logs go to stderr). A closed stdout is not the
/// command's failure.
pub(crate) fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Logs to stderr as `format` says, at the level `RUST_LOG` sets (default
/// `info`). What a running host installs; benchmarks install it too, so
/// they pay what a running host pays.
pub fn install_logging(format: LogFormat) {
    install_logging_as(format, "info", true);
}

/// Logs to stderr: `default` filters unless `RUST_LOG` is set; `timed`
/// lines carry a timestamp and their target, as a service's log does.
/// Colours only on a terminal.
fn install_logging_as(format: LogFormat, default: &str, timed: bool) {
    use std::io::IsTerminal;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match (format, timed) {
        (LogFormat::Text, true) => logs.init(),
        (LogFormat::Text, false) => logs.without_time().with_target(false).init(),
        (LogFormat::Json, _) => logs.json().init(),
    }
}

impl Cli {
    /// Installs logging for this command: a host (`run`, `conformance`)
    /// logs as a service does; the other commands are tools whose stderr
    /// carries only Berth's own lines, untimed, and not the client
    /// libraries' connection chatter.
    pub fn install_logging(&self) {
        match self.is_host() {
            true => install_logging(self.log_format),
            false => install_logging_as(self.log_format, "berth=info", false),
        }
    }

    /// Whether the command runs a host, whose failures are log records
    /// (JSON with `--log-format json`) rather than one plain line.
    pub fn is_host(&self) -> bool {
        matches!(
            self.command,
            Command::Run { .. } | Command::Dev { .. } | Command::Conformance { .. }
        )
    }
}
