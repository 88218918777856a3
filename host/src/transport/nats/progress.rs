//! In-progress acks for JetStream deliveries.
//!
//! The server delivers a message again once it has gone unacked for the
//! consumer's ack wait, to this host or another. A call that runs longer
//! than that (a slow handler, retries inside it, a machine under load), or
//! a message that waits that long for a permit behind `max_concurrency`,
//! would then be worked on twice at once. So every message the host holds
//! unsettled is reported as in progress (`+WPI` on its ack subject, which
//! restarts the server's ack-wait clock) before its ack wait runs out. A
//! host that dies stops reporting, and its messages are delivered again
//! after one ack wait, as before.
//!
//! One task per subscription does this, every third of the ack wait, for
//! the messages it held at its previous tick (the others are younger than
//! a third of the ack wait): a message is reported by the time it is two
//! thirds of the ack wait old. Tracking a message is a map insert and a
//! remove; nothing is sent for a message settled within a third of the ack
//! wait, which is nearly all of them.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::Subject;
use rustc_hash::FxHashMap;

/// The shortest time between two rounds of reports.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// The payload of an in-progress ack (JetStream's `AckKind::Progress`).
const IN_PROGRESS: &[u8] = b"+WPI";

/// The unsettled messages of one subscription.
pub(super) struct InProgress {
    client: async_nats::Client,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    /// Ticks so far: a message tracked at tick `t` is reported from tick
    /// `t + 2` on.
    tick: u64,
    next_id: u64,
    /// Each message's ack subject and the tick it arrived in.
    messages: FxHashMap<u64, (u64, Subject)>,
}

/// A message being tracked; untracked when dropped (settled, or given up
/// to be delivered again).
pub(super) struct Tracked {
    set: Arc<InProgress>,
    id: u64,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.set.lock().messages.remove(&self.id);
    }
}

impl InProgress {
    pub(super) fn new(client: async_nats::Client) -> Arc<Self> {
        Arc::new(InProgress {
            client,
            open: Mutex::new(Open::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // The map stays consistent whatever panicked while holding it.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tracks a message until the returned guard is dropped.
    pub(super) fn track(self: &Arc<Self>, ack_subject: Subject) -> Tracked {
        let mut open = self.lock();
        let (id, tick) = (open.next_id, open.tick);
        open.next_id += 1;
        open.messages.insert(id, (tick, ack_subject));
        Tracked { set: self.clone(), id }
    }

    /// Messages held since before the previous tick, as of a new tick.
    fn due(&self) -> Vec<Subject> {
        let mut open = self.lock();
        open.tick += 1;
        let tick = open.tick;
        open.messages
            .values()
            .filter(|(arrived, _)| arrived + 2 <= tick)
            .map(|(_, subject)| subject.clone())
            .collect()
    }

    /// Reports the messages still held, every third of `ack_wait`, until
    /// dropped (with the subscription's task).
    pub(super) async fn keep_alive(self: Arc<Self>, ack_wait: Duration) {
        // (An ack wait is at least 100 ms; the floor keeps the period
        // from ever being zero, which `interval` refuses.)
        let mut ticks = tokio::time::interval((ack_wait / 3).max(MIN_PERIOD));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            for subject in self.due() {
                // Queued on the connection; a failure is the connection's,
                // and the server delivers the message again as it would
                // have without this report.
                if let Err(e) = self.client.publish(subject, IN_PROGRESS.into()).await {
                    tracing::debug!(error = %e, "could not report a JetStream message as in progress");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_message_is_due_from_the_second_tick_after_it_arrived_until_dropped() {
        // A client that never connects: `due` does not touch it.
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect("nats://127.0.0.1:1")
            .await
            .expect("a client that connects later");
        let set = InProgress::new(client);
        let first = set.track("$JS.ACK.a".into());
        assert!(set.due().is_empty(), "tick 1: one tick old at most");
        let second = set.track("$JS.ACK.b".into());
        assert_eq!(set.due(), vec![Subject::from("$JS.ACK.a")], "tick 2");
        drop(first);
        assert_eq!(
            set.due(),
            vec![Subject::from("$JS.ACK.b")],
            "tick 3: the first was settled"
        );
        drop(second);
        assert!(set.due().is_empty());
        assert!(set.lock().messages.is_empty());
    }
}
