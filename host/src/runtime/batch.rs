//! Several queued messages in one call into a component that exports
//! `berth:backend/batch-handler`, or in one run of calls on one instance
//! into a component that does not ([`super::run`]).
//!
//! A call into a guest has a fixed cost (entering the sandbox, the async
//! fiber, the deadline, the instance's pool) that for a cheap handler is
//! most of the cost of a message (BENCHMARKS.md). A batch pays it once for
//! several messages. The messages stay independent: each has its own
//! outcome, and if the batch call fails as a whole (a trap, the deadline,
//! an answer of the wrong length) every message is run again in a call of
//! its own, so a bad message fails alone and its batchmates are answered.
//! Messages left over (from a failed batch, or a run that ended early) run
//! side by side, each in a call of its own, as they would have unbatched.
//!
//! Not batched, so that what the guest does is tied to the right message:
//! a message that carries a trace context (the guest's outbound calls are
//! made in its trace) and any message in `fresh` mode (one instance per
//! message is the point of it). A run keeps each message's trace, so a
//! traced message may join one.

use berth_frames::{Outcome as Frame, Reader, Writer};
use bytes::Bytes;

use super::bindings::{guest_kind, wit};
use super::component::{Call, WasmHandler};
use crate::core::error::{CallError, Disposition, ErrorKind};
use crate::core::handler::Reply;
use crate::core::limits::InstanceMode;
use crate::core::message::Message;

/// Most bytes of message bodies in one batch. Batching pays for small
/// messages, where the call costs more than the copy; past this the
/// messages go one call each, so a batch's replies also stay far below the
/// limit on what a guest may hand the host in one call.
pub const MAX_BATCH_BYTES: usize = 64 << 10;

/// One message's outcome: a request's reply, `None` for an event.
pub type Outcome = Result<Option<Reply>, CallError>;

impl WasmHandler {
    /// Most queued messages this component takes at once, in one batch or
    /// one run: 1 unless it runs pooled and its manifest allows more. A
    /// component that watches buckets takes one at a time: a change must
    /// reach its watcher, not its batch handler.
    pub fn batch_limit(&self) -> usize {
        match (&self.exports().watcher, self.mode()) {
            (None, InstanceMode::Pooled) => self.settings.max_batch.max(1),
            _ => 1,
        }
    }

    /// Handles `messages` with as few calls as it may, one outcome per
    /// message in their order.
    pub(super) async fn call_batch(&self, messages: &[Message]) -> Vec<Outcome> {
        let limit = self.batch_limit();
        let framed = self.exports().batch.is_some();
        let mut outcomes: Vec<Option<Outcome>> = messages.iter().map(|_| None).collect();
        // Which messages may share a call (or a run); the rest go one by one.
        let mut members: Vec<usize> = Vec::new();
        let mut bytes = 0;
        for (i, m) in messages.iter().enumerate() {
            let alone = m.body.len() > self.env.max_message_bytes
                || (framed
                    && (crate::core::trace::trace_id(&m.headers).is_some() || bytes + m.body.len() > MAX_BATCH_BYTES));
            if !alone && members.len() < limit {
                bytes += m.body.len();
                members.push(i);
            }
        }
        if members.len() > 1 && !framed {
            self.call_run(messages, &members, &mut outcomes).await;
        } else if members.len() > 1 {
            let batch = frame(members.iter().map(|&i| &messages[i]), members.len(), bytes);
            match self
                .one_call(batch)
                .await
                .and_then(|answer| read(answer, members.len()))
            {
                Ok(results) => {
                    self.env.counters.batch(Some(results.len()));
                    for (&i, result) in members.iter().zip(results) {
                        outcomes[i] = self.outcome(&messages[i], result);
                    }
                }
                Err(why) => {
                    self.env.counters.batch(None);
                    tracing::debug!(
                        component = %self.env.name,
                        messages = members.len(),
                        %why,
                        "a batch failed as a whole; running its messages one by one"
                    );
                }
            }
        }
        let left: Vec<usize> = (0..messages.len()).filter(|&i| outcomes[i].is_none()).collect();
        if !left.is_empty() {
            for (&i, outcome) in left.iter().zip(self.call_each(messages, &left).await) {
                outcomes[i] = Some(outcome);
            }
        }
        outcomes.into_iter().flatten().collect()
    }

    /// `messages[i]` for each `i` in `which`, each in a call of its own,
    /// side by side, as they would have run unbatched.
    pub(super) async fn call_each(&self, messages: &[Message], which: &[usize]) -> Vec<Outcome> {
        let calls = which
            .iter()
            .map(|&i| async move { self.call(Call::of(&messages[i])).await.map(|r| r.map(Reply::from)) });
        futures_util::future::join_all(calls).await
    }

    /// One `handle-batch` call on a warm instance, under the deadline of
    /// one call. `Err` says why the batch as a whole failed (its instance
    /// is then discarded); the guest's own errors are in its answer.
    async fn one_call(&self, batch: Vec<u8>) -> Result<Vec<u8>, String> {
        let work = async {
            let mut instance = self.ready_instance(None).await.map_err(|e| e.to_string())?;
            let found = self.export(&self.exports().batch, &mut instance, |l| &mut l.batch);
            let Some(guest) = found.map_err(|e| e.message)? else {
                return Err("the instance has no batch export".to_owned());
            };
            let answer = guest
                .call_handle_batch(&mut instance.store, &batch)
                .await
                .map_err(|trap| format!("{:#}", trap.root_cause()))?;
            self.check_in(instance);
            Ok(answer)
        };
        tokio::time::timeout(self.settings.timeout, work)
            .await
            .unwrap_or_else(|_| Err(format!("the batch did not finish within {:?}", self.settings.timeout)))
    }

    /// One message's outcome from what the guest returned for it, held to
    /// the same limits as a call of its own; `None` if the answer does not
    /// fit the message (no reply for a request), so it runs again alone.
    fn outcome(&self, message: &Message, result: Result<Option<Reply>, CallError>) -> Option<Outcome> {
        match (result, message.reply_to.is_some()) {
            (Err(e), _) if e.kind == ErrorKind::Unhandled => Some(Err(self.with_routes(e))),
            (Err(e), _) => Some(Err(e)),
            (Ok(Some(reply)), true) if reply.body.len() > self.env.max_message_bytes => {
                Some(Err(self.too_large("reply", reply.body.len())))
            }
            (Ok(reply @ Some(_)), true) => Some(Ok(reply)),
            (Ok(None), true) => None,
            // An event has no one to answer: a reply the guest made anyway
            // is dropped, as `handle-event` would have had none.
            (Ok(_), false) => Some(Ok(None)),
        }
    }
}

/// The outcomes in a guest's answer, one per message, with reply bodies
/// sharing the answer's buffer; `Err` if it does not parse or does not
/// hold exactly `count` outcomes.
fn read(answer: Vec<u8>, count: usize) -> Result<Vec<Result<Option<Reply>, CallError>>, String> {
    let answer = Bytes::from(answer);
    let mut reader = Reader::outcomes(&answer).map_err(|e| e.to_string())?;
    if reader.remaining() as usize != count {
        return Err(format!(
            "handle-batch returned {} outcomes for {count} messages",
            reader.remaining()
        ));
    }
    let mut results = Vec::with_capacity(count);
    while let Some(outcome) = reader.outcome() {
        results.push(match outcome.map_err(|e| e.to_string())? {
            Frame::Done => Ok(None),
            Frame::Reply { body, headers } => Ok(Some(Reply {
                body: answer.slice_ref(body),
                headers: headers.into_iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect(),
            })),
            Frame::Error(e) => Err(guest_error(&e)),
        });
    }
    reader.finish().map_err(|e| e.to_string())?;
    Ok(results)
}

/// The batch frame of `count` messages whose bodies add up to `bodies`
/// bytes.
pub(super) fn frame<'a>(messages: impl Iterator<Item = &'a Message>, count: usize, bodies: usize) -> Vec<u8> {
    // Room for the bodies and, per message, its subject, reply address and
    // lengths (an inbox subject is about 30 bytes).
    let mut w = Writer::batch(bodies + 128 * count);
    for m in messages {
        w.message(
            &m.subject,
            &m.body,
            m.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            m.reply_to.as_deref(),
            m.correlation_id.as_deref(),
        );
    }
    w.finish()
}

/// An error a guest returned in a batch, taken as [`CallError::from`] takes
/// one from `handle-request`.
pub(super) fn guest_error(e: &berth_frames::Error<'_>) -> CallError {
    CallError {
        kind: guest_kind(e.kind == wit::ErrorKind::Unhandled as u8),
        code: e.code,
        name: e.name.to_owned(),
        message: e.message.to_owned(),
        data: e.data.map(Bytes::copy_from_slice),
        disposition: if e.retry {
            Disposition::Retry
        } else {
            Disposition::Reject
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::ErrorKind;

    #[test]
    fn reply_bodies_share_the_answer_and_errors_keep_their_fields() {
        let mut w = Writer::outcomes(0);
        w.reply(b"pong", [("a", "1")]);
        w.done();
        w.error(&berth_frames::Error {
            kind: wit::ErrorKind::Unhandled as u8,
            code: 404,
            name: "Not Found",
            message: "no route",
            data: Some(b"{}"),
            retry: false,
        });
        w.error(&berth_frames::Error {
            kind: wit::ErrorKind::Forbidden as u8,
            code: 403,
            retry: true,
            ..Default::default()
        });
        let results = read(w.finish(), 4).expect("parses");
        let reply = results[0].as_ref().expect("ok").as_ref().expect("a reply");
        assert_eq!(
            (&reply.body[..], &reply.headers[..]),
            (&b"pong"[..], &[("a".to_owned(), "1".to_owned())][..])
        );
        assert!(matches!(results[1], Ok(None)));
        let e = results[2].as_ref().expect_err("an error");
        assert_eq!(
            (e.kind, e.code, e.message.as_str()),
            (ErrorKind::Unhandled, 404, "no route")
        );
        assert_eq!(
            (e.data.as_deref(), e.disposition),
            (Some(&b"{}"[..]), Disposition::Reject)
        );
        let e = results[3].as_ref().expect_err("an error");
        assert_eq!(e.kind, ErrorKind::Handler, "a guest cannot claim a host error");
        assert_eq!(e.disposition, Disposition::Retry);
    }

    #[test]
    fn an_answer_that_does_not_fit_the_batch_fails_it_as_a_whole() {
        let mut w = Writer::outcomes(0);
        w.done();
        let one = w.finish();
        assert_eq!(
            read(one.clone(), 2).expect_err("short"),
            "handle-batch returned 1 outcomes for 2 messages"
        );
        let mut cut = one.clone();
        cut.truncate(cut.len() - 1);
        assert!(read(cut, 1).expect_err("cut").contains("malformed batch frame"));
        assert!(
            read(b"not a frame".to_vec(), 1)
                .expect_err("garbage")
                .contains("not a batch's outcomes")
        );
    }
}
