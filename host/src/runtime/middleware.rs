//! Calls into a component's `berth:backend/middleware` export: one link
//! of a chain in front of a route or a subscription (the router runs the
//! chain). Under the same deadline, memory cap and pool as its handler's
//! calls.

use bytes::Bytes;

use super::bindings::{middleware, wit};
use super::component::WasmHandler;
use crate::core::error::{CallError, ErrorKind};
use crate::core::handler::{Guard, Reply, Verdict};
use crate::core::message::Message;

impl WasmHandler {
    /// Whether it exports `berth:backend/middleware`.
    pub fn is_middleware(&self) -> bool {
        self.exports().middleware.is_some()
    }

    /// Asks the middleware about one message, and gives the message back
    /// with the verdict. The instance goes back to the pool only if the
    /// call returned normally.
    pub(super) async fn call_middleware(&self, message: wit::Message) -> Result<(Verdict, Message), CallError> {
        if message.body.len() > self.env.max_message_bytes {
            return Err(self.too_large("message", message.body.len()));
        }
        let work = async {
            let trace = crate::core::trace::Context::child_of(&message.headers);
            let mut instance = self.ready_instance(trace).await?;
            let Some(link) = instance.middleware.clone() else {
                return Err(self.no_middleware());
            };
            match link.call_handle(&mut instance.store, &message).await {
                Err(trap) => {
                    let panic = instance.store.data().panic.take(&self.env.name);
                    Err(self.wasm_error(&trap, panic))
                }
                Ok(outcome) => {
                    if self.settings.mode == crate::core::limits::InstanceMode::Pooled {
                        self.check_in(instance);
                    }
                    match outcome {
                        Ok(middleware::Verdict::Respond(reply)) if reply.body.len() > self.env.max_message_bytes => {
                            Err(self.too_large("reply", reply.body.len()))
                        }
                        Ok(verdict) => Ok((verdict.into(), Message::from(message))),
                        Err(e) => Err(CallError::from(e)),
                    }
                }
            }
        };
        tokio::time::timeout(self.settings.timeout, work)
            .await
            .unwrap_or_else(|_| Err(self.timeout_error("middleware call")))
    }

    /// What a component named as middleware but exporting none answers.
    fn no_middleware(&self) -> CallError {
        CallError::new(
            ErrorKind::Unhandled,
            format!(
                "component `{}` is used as middleware but exports no berth:backend/middleware",
                self.env.name
            ),
        )
    }
}

impl From<middleware::Verdict> for Verdict {
    fn from(v: middleware::Verdict) -> Self {
        match v {
            middleware::Verdict::Pass(pass) => Self::Pass {
                headers: pass.headers,
                mark: pass.mark.map(|g| match g {
                    middleware::Guard::Session => Guard::Session,
                    middleware::Guard::Admin => Guard::Admin,
                }),
            },
            middleware::Verdict::Respond(reply) => Self::Respond(Reply {
                body: Bytes::from(reply.body),
                headers: reply.headers,
            }),
        }
    }
}
