//! The `berth` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::manifest::Manifest;

mod actions;
pub mod admin_client;
pub mod allocator;
pub mod build;
pub mod conformance;
mod dev;
pub mod discovery;
mod home;
mod host_url;
pub mod new;
mod output;
mod tail;

use actions::{admin, check, conformance, read_body, require_env, send, services, shutdown_signal, status, swap};
pub use admin_client::AdminCommand;
pub(crate) use output::say;
pub use output::{LogFormat, install_logging};

/// Run message backends compiled to WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log lines as human-readable text or as JSON objects (stderr).
    #[arg(long, global = true, env = "BERTH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the host described by a manifest until SIGINT or SIGTERM.
    Run {
        /// The manifest.
        #[arg(default_value = "berth.toml")]
        manifest: PathBuf,
        /// Swap a component in when its wasm file changes on disk.
        #[arg(long)]
        watch: bool,
        /// Refuse to start unless the deployment's environment is complete:
        /// SERVICE_NAME, DATA_DIR, and NATS_URL / AMQP_URL for the
        /// transports the manifest uses.
        #[arg(long, env = "BERTH_STRICT_ENV")]
        strict_env: bool,
        /// Refuse to start unless every component loads (`[host] strict`);
        /// otherwise a component that fails is reported and the rest serve.
        #[arg(long, env = "BERTH_STRICT")]
        strict: bool,
    },
    /// Make a project: a manifest, a component's source with one request
    /// and one event route, and what its language's toolchain needs.
    New {
        /// The project's name; it names its folder, component and subjects.
        name: String,
        /// The language of the component.
        #[arg(long, value_enum, default_value_t = crate::manifest::Lang::Rust)]
        lang: crate::manifest::Lang,
        /// Where to write it (default: ./NAME); must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The berth-sdk crate a Rust project depends on (default: the
        /// guest-sdk folder of the Berth checkout, BERTH_HOME).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build every component whose manifest entry names its `source`.
    Build {
        /// The manifest.
        #[arg(default_value = "berth.toml")]
        manifest: PathBuf,
        /// Only this component.
        #[arg(long)]
        component: Option<String>,
    },
    /// Build, run, and rebuild and swap in each change of the sources or
    /// the manifest; prints what the components publish.
    Dev {
        /// The manifest.
        #[arg(default_value = "berth.toml")]
        manifest: PathBuf,
    },
    /// Replace a running component with a new version, without a restart.
    Swap {
        /// The component's name in the manifest.
        name: String,
        /// The new version's wasm file.
        wasm: PathBuf,
        /// A name for the new version, shown beside its hash.
        #[arg(long)]
        label: Option<String>,
        /// A new config for its `init`, as a JSON object.
        #[arg(long)]
        config: Option<String>,
        /// The host's HTTP address [default: the `[host] http` of
        /// ./berth.toml, else http://127.0.0.1:8080].
        #[arg(long, env = "BERTH_URL")]
        url: Option<String>,
        /// The host's admin token, if it has one.
        #[arg(long, env = "BERTH_ADMIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// List every Berth host on a NATS server, with components and versions.
    Services {
        /// The NATS server.
        #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        /// Stop listening for answers after this long without one.
        #[arg(long, default_value_t = 500)]
        quiet_ms: u64,
        /// Print the hosts as one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Steer the hosts of a service over NATS (they need `[host] admin = true`);
    /// prints each host's answer as a JSON line.
    Admin {
        /// The service (`[host] name`) whose hosts get the command.
        service: String,
        /// What to do.
        #[command(subcommand)]
        command: AdminCommand,
        /// Only the host with this id (see `info`); default: every host.
        #[arg(long, global = true)]
        host: Option<String>,
        /// The hosts' admin token, if they have one.
        #[arg(long, global = true, env = "BERTH_ADMIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The NATS server.
        #[arg(long, global = true, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        /// Stop listening for answers after this long without one.
        #[arg(long, global = true, default_value_t = 500)]
        quiet_ms: u64,
        /// Print each host's answer as a JSON line.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Print the messages passing through a running host whose subject
    /// matches, as they pass (on any transport, the in-memory one too).
    Tail {
        /// The subject pattern (`*` one token, `>` the rest).
        pattern: String,
        /// The host's HTTP address [default: the `[host] http` of
        /// ./berth.toml, else http://127.0.0.1:8080].
        #[arg(long, env = "BERTH_URL")]
        url: Option<String>,
        /// The host's admin token, if it has one.
        #[arg(long, env = "BERTH_ADMIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Print the host's JSON lines as they come.
        #[arg(long)]
        json: bool,
    },
    /// Show a running host's components: version, state, counters.
    Status {
        /// The host's HTTP address [default: the `[host] http` of
        /// ./berth.toml, else http://127.0.0.1:8080].
        #[arg(long, env = "BERTH_URL")]
        url: Option<String>,
        /// Print what the host said, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Say whether a component fits the berth:backend contract, and why not.
    Check {
        /// The component file.
        wasm: PathBuf,
        /// Judge it as a component whose manifest sets
        /// `link_unused_sockets = true` (Python components need it).
        #[arg(long)]
        link_unused_sockets: bool,
    },
    /// Check that a component keeps the conformance contract
    /// (docs/conformance.md): one PASS/FAIL line per check, non-zero exit
    /// on any failure.
    Conformance {
        /// The component file.
        wasm: PathBuf,
        /// Serve it on this transport.
        #[arg(long, value_enum, default_value_t = crate::manifest::TransportKind::Memory)]
        transport: crate::manifest::TransportKind,
        /// The NATS server, for `--transport nats`.
        #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        /// The AMQP broker, for `--transport amqp`.
        #[arg(long, env = "AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
        amqp_url: String,
        /// Compile cache folder, kept between runs.
        #[arg(long, env = "DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Where the key-value checks' bucket lives (nats: on --nats-url).
        #[arg(long, value_enum, default_value_t = crate::manifest::KvBackend::Embedded)]
        keyvalue: crate::manifest::KvBackend,
    },
    /// Send a request through a running host and print the reply body.
    Request {
        /// Subject to send to.
        subject: String,
        /// Request body; `-` reads standard input; absent means empty.
        body: Option<String>,
        /// The host's HTTP address [default: the `[host] http` of
        /// ./berth.toml, else http://127.0.0.1:8080].
        #[arg(long, env = "BERTH_URL")]
        url: Option<String>,
        /// How long to wait for the reply.
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
    /// Publish a message through a running host.
    Publish {
        /// Subject to send to.
        subject: String,
        /// Message body; `-` reads standard input; absent means empty.
        body: Option<String>,
        /// The host's HTTP address [default: the `[host] http` of
        /// ./berth.toml, else http://127.0.0.1:8080].
        #[arg(long, env = "BERTH_URL")]
        url: Option<String>,
    },
}

impl Cli {
    /// Runs the command. `Ok(FAILURE)` means the command worked but its
    /// answer was negative (a misfit component, an error reply).
    pub async fn execute(self) -> Result<ExitCode> {
        match self.command {
            Command::Run {
                manifest,
                watch,
                strict_env,
                strict,
            } => {
                let mut manifest = Manifest::load(&manifest)?;
                if strict_env {
                    require_env(&manifest)?;
                }
                manifest.host.watch |= watch;
                manifest.host.strict |= strict;
                crate::control::run(manifest, shutdown_signal()).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::New { name, lang, dir, sdk } => {
                let dir = new::create(&name, lang, dir, sdk)?;
                // A JavaScript project's toolchain is its own npm package.
                let install = if lang == crate::manifest::Lang::Js {
                    "npm install && "
                } else {
                    ""
                };
                say(format_args!(
                    "made {}: a {lang} component `{name}`; next: cd {} && {install}berth build && berth run",
                    dir.display(),
                    dir.display()
                ));
                Ok(ExitCode::SUCCESS)
            }
            Command::Build { manifest, component } => {
                let manifest = Manifest::read(&manifest)?;
                for c in build::buildable(&manifest, component.as_deref())? {
                    let built = tokio::task::block_in_place(|| build::build(c))
                        .with_context(|| format!("building component `{}`", c.name))?;
                    say(format_args!("{built}"));
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Dev { manifest } => {
                dev::run(&manifest, shutdown_signal()).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Swap {
                name,
                wasm,
                label,
                config,
                url,
                token,
            } => swap(&host_url::resolve(url), &name, &wasm, label, config, token).await,
            Command::Status { url, json } => status(&host_url::resolve(url), json).await,
            Command::Tail {
                pattern,
                url,
                token,
                json,
            } => tail::tail(&host_url::resolve(url), &pattern, token.as_deref(), json).await,
            Command::Admin {
                service,
                command,
                host,
                token,
                nats_url,
                quiet_ms,
                json,
            } => {
                let command = command.to_json();
                admin(
                    &nats_url,
                    &service,
                    host.as_deref(),
                    &command,
                    token.as_deref(),
                    quiet_ms,
                    json,
                )
                .await
            }
            Command::Services {
                nats_url,
                quiet_ms,
                json,
            } => services(&nats_url, quiet_ms, json).await,
            Command::Check {
                wasm,
                link_unused_sockets,
            } => check(&wasm, link_unused_sockets),
            Command::Conformance {
                wasm,
                transport,
                nats_url,
                amqp_url,
                data_dir,
                keyvalue,
            } => {
                let options = crate::cli::conformance::Options {
                    wasm,
                    transport,
                    nats_url,
                    amqp_url,
                    data_dir: data_dir.unwrap_or_else(|| std::env::temp_dir().join("berth-conformance")),
                    keyvalue,
                };
                conformance(&options).await
            }
            Command::Request {
                subject,
                body,
                url,
                timeout_ms,
            } => {
                let url = format!(
                    "{}/v1/request/{subject}?timeout_ms={timeout_ms}",
                    host_url::resolve(url).trim_end_matches('/')
                );
                send(reqwest::Client::new().post(&url).body(read_body(body)?), &url).await
            }
            Command::Publish { subject, body, url } => {
                let url = format!("{}/v1/publish/{subject}", host_url::resolve(url).trim_end_matches('/'));
                send(reqwest::Client::new().post(&url).body(read_body(body)?), &url).await
            }
        }
    }
}
