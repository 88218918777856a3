//! Calls into a component's `berth:backend/middleware` export: one link
//! of a chain in front of a route or a subscription (the router runs the
//! chain). Under the same deadline, memory cap and pool as its handler's
//! calls.

use bytes::Bytes;

use berth_frames::{Reader, Verdict as Frame};

use super::batch::{frame, guest_error};
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
    /// with the verdict: as a frame if the component takes frames
    /// (`batch-middleware`), else through the typed `handle`. The instance
    /// goes back to the pool only if the call returned normally.
    pub(super) async fn call_middleware(&self, message: Message) -> Result<(Verdict, Message), CallError> {
        if message.body.len() > self.env.max_message_bytes {
            return Err(self.too_large("message", message.body.len()));
        }
        let work = async {
            let trace = crate::core::trace::Context::child_of(&message.headers);
            let mut instance = self.ready_instance(trace).await?;
            let frames = self.export(&self.exports().batch_middleware, &mut instance, |l| {
                &mut l.batch_middleware
            })?;
            if let Some(link) = frames {
                let batch = frame(std::iter::once(&message), 1, message.body.len());
                let answer = match link.call_handle_batch(&mut instance.store, &batch).await {
                    Ok(answer) => answer,
                    Err(trap) => return Err(self.trapped(&instance, &trap)),
                };
                match read(answer) {
                    Ok(verdict) => {
                        self.give_back(instance);
                        return self.checked(verdict).map(|v| (v, message));
                    }
                    Err(why) => tracing::debug!(
                        component = %self.env.name,
                        %why,
                        "a middleware's verdict frame does not parse; asking its typed handle"
                    ),
                }
            }
            let Some(link) = self.export(&self.exports().middleware, &mut instance, |l| &mut l.middleware)? else {
                return Err(self.no_middleware());
            };
            let message = wit::Message::from(message);
            match link.call_handle(&mut instance.store, &message).await {
                Err(trap) => Err(self.trapped(&instance, &trap)),
                Ok(outcome) => {
                    self.give_back(instance);
                    let verdict = outcome.map(Verdict::from).map_err(CallError::from);
                    self.checked(verdict).map(|v| (v, Message::from(message)))
                }
            }
        };
        tokio::time::timeout(self.settings.timeout, work)
            .await
            .unwrap_or_else(|_| Err(self.timeout_error("middleware call")))
    }

    /// A verdict held to the limits: an answer larger than a reply may be
    /// is refused.
    fn checked(&self, verdict: Result<Verdict, CallError>) -> Result<Verdict, CallError> {
        match verdict {
            Ok(Verdict::Respond(reply)) if reply.body.len() > self.env.max_message_bytes => {
                Err(self.too_large("reply", reply.body.len()))
            }
            other => other,
        }
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

/// The one verdict of a middleware's answer frame: the link's own error
/// as `Err` inside `Ok`; the outer `Err` says why the frame is unusable.
fn read(answer: Vec<u8>) -> Result<Result<Verdict, CallError>, String> {
    let answer = Bytes::from(answer);
    let mut reader = Reader::verdicts(&answer).map_err(|e| e.to_string())?;
    if reader.remaining() != 1 {
        return Err(format!("{} verdicts for one message", reader.remaining()));
    }
    let verdict = match reader.verdict() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(e.to_string()),
        None => return Err("no verdict".to_owned()),
    };
    let owned = |headers: Vec<(&str, &str)>| -> Vec<(String, String)> {
        headers.into_iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect()
    };
    let verdict = match verdict {
        Frame::Pass { headers, mark } => Ok(Verdict::Pass {
            headers: owned(headers),
            mark: mark.map(|g| match g {
                berth_frames::Guard::Session => Guard::Session,
                berth_frames::Guard::Admin => Guard::Admin,
            }),
        }),
        Frame::Respond { body, headers } => Ok(Verdict::Respond(Reply {
            body: answer.slice_ref(body),
            headers: owned(headers),
        })),
        Frame::Error(e) => Err(guest_error(&e)),
    };
    reader.finish().map_err(|e| e.to_string())?;
    Ok(verdict)
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

#[cfg(test)]
mod tests {
    use berth_frames::Writer;

    use super::*;

    #[test]
    fn a_verdict_frame_reads_as_the_typed_verdict_would() {
        let mut w = Writer::verdicts(0);
        w.pass([("x-user", "ann")], Some(berth_frames::Guard::Admin));
        let Ok(Ok(Verdict::Pass { headers, mark })) = read(w.finish()) else {
            panic!("a pass")
        };
        assert_eq!(headers, [("x-user".to_owned(), "ann".to_owned())]);
        assert_eq!(mark, Some(Guard::Admin));

        let mut w = Writer::verdicts(0);
        w.reply(b"cached", [("content-type", "text/plain")]);
        let Ok(Ok(Verdict::Respond(reply))) = read(w.finish()) else {
            panic!("a respond")
        };
        assert_eq!(&reply.body[..], b"cached");

        let mut w = Writer::verdicts(0);
        w.error(&berth_frames::Error {
            code: 401,
            message: "no token",
            ..Default::default()
        });
        let Ok(Err(e)) = read(w.finish()) else {
            panic!("the link's error")
        };
        assert_eq!((e.code, e.message.as_str()), (401, "no token"));
    }

    #[test]
    fn an_answer_that_is_not_one_verdict_is_unusable_not_an_error_of_the_link() {
        assert!(read(Writer::verdicts(0).finish()).is_err_and(|why| why == "0 verdicts for one message"));
        let mut w = Writer::verdicts(0);
        w.pass([], None);
        w.pass([], None);
        assert!(read(w.finish()).is_err());
        let mut outcomes = Writer::outcomes(0);
        outcomes.done();
        assert!(read(outcomes.finish()).is_err_and(|why| why.contains("not a middleware's verdicts")));
        let mut w = Writer::verdicts(0);
        w.pass([], None);
        let mut trailing = w.finish();
        trailing.push(0);
        assert!(read(trailing).is_err_and(|why| why.contains("bytes after the last item")));
    }
}
