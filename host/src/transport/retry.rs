//! What becomes of a settled delivery on a broker that redelivers: the one
//! retry and dead-letter policy that JetStream and AMQP both carry out.
//!
//! A failed event with a retry disposition (or a trap, or a timeout) is
//! delivered again until it has been tried `max_deliver` times, then
//! dead-lettered with every try's count in the reason; a rejected event is
//! dead-lettered at once. Redeliveries wait longer each time, where the
//! broker can wait (JetStream's delayed nak; AMQP requeues at once).

use std::time::Duration;

use super::Settlement;

/// First redelivery delay; it doubles per delivery up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest redelivery delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What the transport does with the delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Done: remove it from the broker.
    Ack,
    /// Not handled through no fault of its own: give it back as if never
    /// delivered.
    Release,
    /// Deliver it again, after `delay` where the broker can wait.
    Redeliver {
        /// How long the broker should hold it first.
        delay: Duration,
    },
    /// Publish it to the dead-letter destination with this reason, then
    /// remove it.
    DeadLetter(String),
}

/// The policy: `attempt` is which delivery of the message this was (from
/// 1), `max_deliver` how many it may have.
pub fn next(settlement: Settlement, attempt: u32, max_deliver: u32) -> Next {
    match settlement {
        Settlement::Ack => Next::Ack,
        Settlement::Release => Next::Release,
        Settlement::Retry(reason) if attempt >= max_deliver.max(1) => {
            let tries = if attempt == 1 {
                "1 delivery".to_owned()
            } else {
                format!("{attempt} deliveries")
            };
            Next::DeadLetter(format!("failed on each of {tries}: {reason}"))
        }
        Settlement::Retry(_) => Next::Redeliver {
            delay: backoff(attempt),
        },
        Settlement::Reject(reason) => Next::DeadLetter(reason),
    }
}

/// The wait before the delivery after `attempt`.
pub fn backoff(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(10);
    (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_until_the_last_delivery_then_dead_letters_with_the_count() {
        let retry = || Settlement::Retry("boom".into());
        assert_eq!(next(retry(), 1, 3), Next::Redeliver { delay: FIRST_BACKOFF });
        assert_eq!(
            next(retry(), 2, 3),
            Next::Redeliver {
                delay: FIRST_BACKOFF * 2
            }
        );
        assert_eq!(
            next(retry(), 3, 3),
            Next::DeadLetter("failed on each of 3 deliveries: boom".into())
        );
        assert_eq!(
            next(retry(), 1, 1),
            Next::DeadLetter("failed on each of 1 delivery: boom".into())
        );
        assert_eq!(
            next(Settlement::Reject("bad".into()), 1, 3),
            Next::DeadLetter("bad".into())
        );
        assert_eq!(next(Settlement::Release, 3, 3), Next::Release);
        assert_eq!(next(Settlement::Ack, 3, 3), Next::Ack);
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        assert_eq!(backoff(1), FIRST_BACKOFF);
        assert_eq!(backoff(4), FIRST_BACKOFF * 8);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
