//! Acks of one consumer channel, coalesced into `multiple` acks.
//!
//! Every ack is a round trip to lapin's I/O thread, which is most of what
//! an AMQP message costs the host (BENCHMARKS.md). When several deliveries
//! of a channel are settled, one `basic.ack` with `multiple = true` for the
//! highest of them settles them all: that is safe only if every delivery
//! below it is settled too, because the broker acks *everything*
//! outstanding up to that tag.
//!
//! So the ledger knows every delivery of its channel from the moment the
//! consumer hands it over, and an ack only ever covers deliveries that are
//! all settled. Acks go out as a group commit: whoever acks while no ack
//! is on its way sends, in one `multiple` ack, everything that may go;
//! acks made while one is on its way are sent by that sender as soon as it
//! is back, together. No timer and no added wait: an ack waits at most one
//! round trip to lapin's I/O thread, or for an older delivery still being
//! handled. At most `hold` acks wait behind such a slow one; past that
//! they go out one by one, so it never shrinks the prefetch window by
//! more than `hold`. Requeues and dead-letters are sent by the caller as
//! they happen and only recorded here.
//!
//! With `coalesce_acks = false` every ack goes out alone as it is made,
//! and the ledger only keeps count.
//!
//! RabbitMQ closes the channel on a `multiple` ack whose own tag is no
//! longer outstanding, so acks are decided and sent by one sender at a
//! time, in order. Recording takes only the ledger's short lock, so the
//! consumer never waits for an ack in flight (a tag recorded meanwhile is
//! higher than any ack being sent, so no ack covers it).

use std::collections::BTreeSet;

use lapin::Channel;
use lapin::options::BasicAckOptions;

/// One `basic.ack` to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Ack {
    pub tag: u64,
    pub multiple: bool,
}

/// Which acks to send when: the decisions, without the channel.
#[derive(Clone, Debug, Default)]
pub(super) struct Ledger {
    /// Delivered and not settled.
    unsettled: BTreeSet<u64>,
    /// Acked by the host, not yet sent: each is younger than an unsettled
    /// delivery.
    held: BTreeSet<u64>,
    /// Most acks that may wait.
    hold: usize,
}

impl Ledger {
    /// A ledger letting at most `hold` acks wait.
    pub fn new(hold: usize) -> Self {
        Self {
            hold,
            ..Self::default()
        }
    }

    /// The consumer handed `tag` over (tags only grow on a channel).
    pub fn delivered(&mut self, tag: u64) {
        self.unsettled.insert(tag);
    }

    /// `tag` was handled and may be acked.
    pub fn ack(&mut self, tag: u64) {
        if self.unsettled.remove(&tag) {
            self.held.insert(tag);
        }
    }

    /// `tag` was settled another way (requeued, rejected), already sent.
    pub fn settled(&mut self, tag: u64) {
        self.unsettled.remove(&tag);
    }

    /// The oldest unsettled delivery: a `multiple` ack must stay below it.
    fn floor(&self) -> u64 {
        self.unsettled.first().copied().unwrap_or(u64::MAX)
    }

    /// Whether [`Self::release`] would send something.
    pub fn releasable(&self) -> bool {
        self.held.first().is_some_and(|&t| t < self.floor()) || self.held.len() > self.hold
    }

    /// The acks that may go out now, in order; they are no longer held.
    pub fn release(&mut self) -> Vec<Ack> {
        let floor = self.floor();
        let mut out = Vec::new();
        // Everything held below the oldest unsettled delivery: one ack.
        let younger = self.held.split_off(&floor);
        if let Some(&highest) = self.held.last() {
            out.push(Ack {
                tag: highest,
                multiple: true,
            });
        }
        self.held = younger;
        // Too many waiting behind a slow one: send them singly.
        if self.held.len() > self.hold {
            out.extend(
                std::mem::take(&mut self.held)
                    .into_iter()
                    .map(|tag| Ack { tag, multiple: false }),
            );
        }
        out
    }
}

/// The ledger of one consumer channel, and the channel to send on (held
/// open for as long as a delivery's acker holds these acks).
pub(super) struct Acks {
    channel: Channel,
    ledger: std::sync::Mutex<Ledger>,
    /// Held by the one sender, from deciding acks until they are sent.
    sending: tokio::sync::Mutex<()>,
    /// `false`: each ack goes out alone, at once.
    coalesce: bool,
}

impl Acks {
    /// Acks for the consumer channel of `spec`, holding back at most a
    /// quarter of its prefetch (none when prefetch is below 4: then every
    /// ack goes out at once and the window never shrinks).
    pub fn new(channel: Channel, spec: &super::QueueSpec) -> Self {
        Self {
            channel,
            ledger: std::sync::Mutex::new(Ledger::new(usize::from(spec.prefetch / 4))),
            sending: tokio::sync::Mutex::new(()),
            coalesce: spec.coalesce_acks,
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a delivery before it is handed to the router.
    pub fn delivered(&self, tag: u64) {
        self.ledger().delivered(tag);
    }

    /// Acks `tag`: sends it (with whatever else may go) unless an ack is on
    /// its way, whose sender then takes this one too.
    pub async fn ack(&self, tag: u64) {
        if !self.coalesce {
            self.ledger().settled(tag);
            self.send(&[Ack { tag, multiple: false }]).await;
            return;
        }
        self.ledger().ack(tag);
        self.flush().await;
    }

    /// Records `tag` as settled by a requeue or reject the caller sent,
    /// and sends what that releases.
    pub async fn settled(&self, tag: u64) {
        self.ledger().settled(tag);
        self.flush().await;
    }

    /// Sends what may go until nothing is left, unless another sender is
    /// at it. After letting go, looks once more: an ack recorded while
    /// this sender was finishing found the lock taken and left it here.
    async fn flush(&self) {
        loop {
            let Ok(_sending) = self.sending.try_lock() else {
                return;
            };
            loop {
                let acks = self.ledger().release();
                if acks.is_empty() || !self.send(&acks).await {
                    break;
                }
            }
            drop(_sending);
            if !self.ledger().releasable() {
                return;
            }
        }
    }

    /// Sends in order; the caller holds `sending` (unless every ack goes
    /// alone, where order does not matter). `false` once the
    /// channel is gone (the broker has requeued what was unacked).
    async fn send(&self, acks: &[Ack]) -> bool {
        for ack in acks {
            let options = BasicAckOptions { multiple: ack.multiple };
            if let Err(e) = self.channel.basic_ack(ack.tag, options).await {
                tracing::debug!(error = %e, tag = ack.tag, "ack on a channel that is gone; the broker redelivers");
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multiple(tag: u64) -> Ack {
        Ack { tag, multiple: true }
    }

    fn single(tag: u64) -> Ack {
        Ack { tag, multiple: false }
    }

    fn ledger(hold: usize, tags: std::ops::RangeInclusive<u64>) -> Ledger {
        let mut l = Ledger::new(hold);
        tags.for_each(|t| l.delivered(t));
        l
    }

    /// Acks `tag` and releases, as a sender with nothing on its way does.
    fn ack(l: &mut Ledger, tag: u64) -> Vec<Ack> {
        l.ack(tag);
        assert_eq!(l.releasable(), !l.clone().release().is_empty());
        l.release()
    }

    #[test]
    fn in_order_acks_go_out_at_once() {
        let mut l = ledger(8, 1..=3);
        assert_eq!(ack(&mut l, 1), [multiple(1)]);
        assert_eq!(ack(&mut l, 2), [multiple(2)]);
        assert_eq!(ack(&mut l, 3), [multiple(3)]);
    }

    #[test]
    fn acks_made_while_one_is_on_its_way_go_out_as_one() {
        let mut l = ledger(8, 1..=5);
        // The sender of 1 is away; 2, 3 and 4 are recorded meanwhile.
        assert_eq!(ack(&mut l, 1), [multiple(1)]);
        for t in 2..=4 {
            l.ack(t);
        }
        assert!(l.releasable());
        assert_eq!(l.release(), [multiple(4)]);
        assert!(!l.releasable());
    }

    #[test]
    fn younger_acks_wait_for_the_oldest_and_go_out_as_one() {
        let mut l = ledger(8, 1..=4);
        assert_eq!(ack(&mut l, 3), []);
        assert_eq!(ack(&mut l, 2), []);
        assert_eq!(ack(&mut l, 1), [multiple(3)]);
        assert_eq!(ack(&mut l, 4), [multiple(4)]);
    }

    #[test]
    fn a_multiple_ack_never_covers_an_unsettled_delivery() {
        let mut l = ledger(8, 1..=5);
        assert_eq!(ack(&mut l, 1), [multiple(1)]);
        assert_eq!(ack(&mut l, 4), []);
        assert_eq!(ack(&mut l, 5), []);
        // 2 is requeued (sent by the caller): 3 still holds 4 and 5 back.
        l.settled(2);
        assert_eq!(l.release(), []);
        assert_eq!(ack(&mut l, 3), [multiple(5)]);
    }

    #[test]
    fn a_requeue_of_the_oldest_releases_what_waited_behind_it() {
        let mut l = ledger(8, 1..=3);
        assert_eq!(ack(&mut l, 2), []);
        assert_eq!(ack(&mut l, 3), []);
        l.settled(1);
        assert_eq!(l.release(), [multiple(3)]);
    }

    #[test]
    fn past_the_hold_limit_waiting_acks_go_out_singly() {
        let mut l = ledger(2, 1..=5);
        assert_eq!(ack(&mut l, 2), []);
        assert_eq!(ack(&mut l, 3), []);
        assert_eq!(ack(&mut l, 4), [single(2), single(3), single(4)]);
        assert_eq!(ack(&mut l, 1), [multiple(1)]);
        assert_eq!(ack(&mut l, 5), [multiple(5)]);
    }

    #[test]
    fn with_no_hold_every_ack_goes_out() {
        let mut l = ledger(0, 1..=2);
        assert_eq!(ack(&mut l, 2), [single(2)]);
        assert_eq!(ack(&mut l, 1), [multiple(1)]);
    }

    #[test]
    fn an_unknown_or_repeated_tag_sends_nothing_twice() {
        let mut l = ledger(8, 1..=1);
        assert_eq!(ack(&mut l, 1), [multiple(1)]);
        assert_eq!(ack(&mut l, 1), []);
        assert_eq!(ack(&mut l, 7), []);
    }
}
