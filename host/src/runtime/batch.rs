//! Several queued messages in one call into a component that exports
//! `berth:backend/batch-handler`.
//!
//! A call into a guest has a fixed cost (entering the sandbox, the async
//! fiber, the deadline, the instance's pool) that for a cheap handler is
//! most of the cost of a message (BENCHMARKS.md). A batch pays it once for
//! several messages. The messages stay independent: each has its own
//! outcome, and if the batch call fails as a whole (a trap, the deadline,
//! an answer of the wrong length) every message is run again in a call of
//! its own, so a bad message fails alone and its batchmates are answered.
//!
//! Not batched, so that what the guest does is tied to the right message:
//! a message that carries a trace context (the guest's outbound calls are
//! made in its trace) and any message in `fresh` mode (one instance per
//! message is the point of it).

use super::bindings::wit;
use super::component::{Call, InstanceMode, WasmHandler};
use crate::error::{CallError, ErrorKind};

/// Most bytes of message bodies in one batch. Batching pays for small
/// messages, where the call costs more than the copy; past this the
/// messages go one call each, so a batch's replies also stay far below the
/// limit on what a guest may hand the host in one call.
pub const MAX_BATCH_BYTES: usize = 64 << 10;

/// One message's outcome: a request's reply, `None` for an event.
pub type Outcome = Result<Option<wit::Reply>, CallError>;

impl WasmHandler {
    /// Most messages this component takes in one call: 1 unless it exports
    /// `batch-handler`, runs pooled and its manifest allows more.
    pub fn batch_limit(&self) -> usize {
        match (&self.exports.batch, self.mode()) {
            (Some(_), InstanceMode::Pooled) => self.settings.max_batch.max(1),
            _ => 1,
        }
    }

    /// Handles `messages` with as few calls as it may, one outcome per
    /// message in their order.
    pub(super) async fn call_batch(&self, messages: Vec<wit::Message>) -> Vec<Outcome> {
        let limit = self.batch_limit();
        let mut slots: Vec<Option<wit::Message>> = messages.into_iter().map(Some).collect();
        let mut outcomes: Vec<Option<Outcome>> = slots.iter().map(|_| None).collect();
        // Which messages may share a call; the rest go one by one.
        let mut members: Vec<usize> = Vec::new();
        let mut bytes = 0;
        for (i, m) in slots.iter().flatten().enumerate() {
            let alone = m.body.len() > self.env.max_message_bytes
                || crate::trace::trace_id(&m.headers).is_some()
                || bytes + m.body.len() > MAX_BATCH_BYTES;
            if !alone && members.len() < limit {
                bytes += m.body.len();
                members.push(i);
            }
        }
        if members.len() > 1 {
            let batch: Vec<wit::Message> = members.iter().filter_map(|&i| slots[i].take()).collect();
            match self.one_call(&batch).await {
                Ok(results) => {
                    self.env.stats.batch(Some(results.len()));
                    for ((&i, message), result) in members.iter().zip(batch).zip(results) {
                        match self.outcome(&message, result) {
                            Some(outcome) => outcomes[i] = Some(outcome),
                            None => slots[i] = Some(message),
                        }
                    }
                }
                Err(why) => {
                    self.env.stats.batch(None);
                    tracing::debug!(
                        component = %self.env.name,
                        messages = members.len(),
                        %why,
                        "a batch failed as a whole; running its messages one by one"
                    );
                    for (&i, message) in members.iter().zip(batch) {
                        slots[i] = Some(message);
                    }
                }
            }
        }
        let mut done = Vec::with_capacity(slots.len());
        for (message, outcome) in slots.into_iter().zip(outcomes) {
            done.push(match (outcome, message) {
                (Some(outcome), _) => outcome,
                (None, Some(m)) if m.reply_to.is_some() => self.call(Call::Request(m)).await,
                (None, Some(m)) => self.call(Call::Event(m)).await,
                // Every slot holds its message or its outcome.
                (None, None) => Err(CallError::new(
                    ErrorKind::Trap,
                    "a batched message was lost (a bug in the host)",
                )),
            });
        }
        done
    }

    /// One `handle-batch` call on a warm instance, under the deadline of
    /// one call. `Err` says why the batch as a whole failed (its instance
    /// is then discarded); the guest's own errors are outcomes.
    async fn one_call(&self, batch: &[wit::Message]) -> Result<Vec<Result<Option<wit::Reply>, wit::Error>>, String> {
        let work = async {
            let mut instance = self.ready_instance(None).await.map_err(|e| e.to_string())?;
            let Some(guest) = instance.batch.take() else {
                return Err("the instance has no batch export".to_owned());
            };
            let results = guest
                .call_handle_batch(&mut instance.store, batch)
                .await
                .map_err(|trap| format!("{:#}", trap.root_cause()))?;
            if results.len() != batch.len() {
                return Err(format!(
                    "handle-batch returned {} outcomes for {} messages",
                    results.len(),
                    batch.len()
                ));
            }
            instance.batch = Some(guest);
            self.check_in(instance);
            Ok(results)
        };
        tokio::time::timeout(self.settings.timeout, work)
            .await
            .unwrap_or_else(|_| Err(format!("the batch did not finish within {:?}", self.settings.timeout)))
    }

    /// One message's outcome from what the guest returned for it, held to
    /// the same limits as a call of its own; `None` if the answer does not
    /// fit the message (no reply for a request), so it runs again alone.
    fn outcome(&self, message: &wit::Message, result: Result<Option<wit::Reply>, wit::Error>) -> Option<Outcome> {
        match (result, message.reply_to.is_some()) {
            (Err(e), _) => Some(Err(CallError::from(e))),
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
