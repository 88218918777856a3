//! Health on the broker: `berth.health.<service>` answers with the same
//! JSON as `GET /health` on every transport, and with `[host] telestion =
//! true` so does `__telestion__/health`, as Telestion services do. These
//! are broadcasts: a request gets the first host's answer, a discovery tool
//! collects them all.

use std::sync::Arc;

use anyhow::Result;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::answer::answer_on;
use crate::app::App;

/// The health subject of a service.
pub fn health_subject(service: &str) -> String {
    format!("berth.health.{service}")
}

/// Telestion's health subject.
pub const TELESTION_HEALTH: &str = "__telestion__/health";

/// Answers the health subjects on every transport until `stop`.
pub(super) async fn start(
    app: &Arc<App>,
    telestion: bool,
    tasks: &TaskTracker,
    stop: &CancellationToken,
) -> Result<()> {
    let mut subjects = vec![health_subject(&app.name)];
    if telestion {
        subjects.push(TELESTION_HEALTH.to_owned());
    }
    for transport in &app.transports {
        for subject in &subjects {
            let app = app.clone();
            answer_on(transport, subject.clone(), tasks, stop, move |_| {
                let body = app.health().1;
                async move { Ok(body) }
            })
            .await?;
        }
    }
    Ok(())
}
