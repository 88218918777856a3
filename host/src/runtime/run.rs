//! A run: queued messages for a component that takes one message per call
//! (a wasmCloud or wasi:messaging component, or a Berth one that does not
//! export `batch-handler`), handed to one instance one call after another.
//!
//! A batch saves a call's fixed cost by handing the guest several messages
//! at once, and a guest of those worlds has no export that takes several.
//! What a run saves is the part of that cost outside the guest: the
//! instance's checkout and return, its deadline's timer made anew, and the
//! router's work per call (a run is one future on the subscription's
//! loop, not one per message). Each message is still a call of its own,
//! with its own fuel, clock, trace and deadline, so a run answers what
//! the same calls made one by one would. A trap or a deadline ends the run
//! at the message that met it (its instance is dropped, as a single call's
//! is); the messages after it are left for calls of their own.
//!
//! A run is for calls that compute and return. A call that does not finish
//! when first polled waits on something (a request's reply, a key-value
//! round trip, the executor after an epoch tick), and in a run the messages
//! after it would wait in turn: they start at once instead, beside it,
//! each in a call of its own, as they would have run unbatched.

use std::future::Future;
use std::task::Poll;

use tokio::time::Instant;

use super::batch::Outcome;
use super::component::{Call, WasmHandler, call_on};
use crate::core::handler::Reply;
use crate::core::message::Message;

impl WasmHandler {
    /// Calls the component for `messages[i]`, for each `i` in `members` in
    /// turn, on one instance, and sets each one's outcome. A member left
    /// `None` was not called (an instance could not be had, or an earlier
    /// member trapped or ran out of time).
    pub(super) async fn call_run(&self, messages: &[Message], members: &[usize], outcomes: &mut [Option<Outcome>]) {
        // Not having one is left to the members' own calls, which report
        // why.
        let Ok(mut instance) = self.taken_instance().await else {
            return;
        };
        let deadline = tokio::time::sleep(self.settings.timeout);
        tokio::pin!(deadline);
        let mut served = 0;
        for (n, &i) in members.iter().enumerate() {
            let message = &messages[i];
            self.prepare(&mut instance, crate::core::trace::Context::child_of(&message.headers));
            deadline.as_mut().reset(Instant::now() + self.settings.timeout);
            let called = {
                let call = async { call_on!(self, &mut instance, Call::of(message)) };
                tokio::pin!(call);
                match std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await {
                    Poll::Ready(called) => Some(called),
                    Poll::Pending => {
                        // It waits: the rest start now, beside it.
                        let rest = &members[n + 1..];
                        let finished = async {
                            tokio::select! {
                                biased;
                                called = &mut call => Some(called),
                                () = &mut deadline => None,
                            }
                        };
                        let (called, alone) = tokio::join!(finished, self.call_each(messages, rest));
                        for (&j, outcome) in rest.iter().zip(alone) {
                            outcomes[j] = Some(outcome);
                        }
                        called
                    }
                }
            };
            let last = n + 1 == members.len() || outcomes[members[n + 1]].is_some();
            match called {
                None => {
                    outcomes[i] = Some(Err(self.timeout_error("call")));
                    break;
                }
                Some(Err(trap)) => {
                    outcomes[i] = Some(Err(self.trapped(&instance, &trap)));
                    break;
                }
                Some(Ok(outcome)) => {
                    outcomes[i] = Some(self.answered(outcome).map(|r| r.map(Reply::from)));
                    served += 1;
                    if last {
                        self.give_back(instance);
                        break;
                    }
                }
            }
        }
        if served > 1 {
            self.env.counters.batch(Some(served));
        }
    }
}
