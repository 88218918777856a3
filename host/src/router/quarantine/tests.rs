use super::*;

fn trap() -> CallError {
    CallError::new(ErrorKind::Trap, "boom")
}

fn policy() -> Policy {
    Policy {
        threshold: 2,
        cooldown: Duration::from_millis(30),
        max_cooldown: Duration::from_millis(100),
    }
}

#[test]
fn faults_in_a_row_slow_the_next_call_down_and_success_clears_it() {
    let b = Breaker::new(Policy {
        threshold: u32::MAX,
        ..policy()
    });
    assert_eq!(b.backoff(), None);
    let waits: Vec<_> = (0..9)
        .map(|_| {
            b.record(Err(&trap()), "c");
            b.backoff().expect("held after a fault")
        })
        .collect();
    assert_eq!(waits[0], Duration::from_millis(1));
    assert_eq!(waits[1], Duration::from_millis(2));
    assert_eq!(waits[8], MAX_FAULT_BACKOFF, "capped");
    b.record(Ok(()), "c");
    assert_eq!(b.backoff(), None);
}

/// `is_clear` reads a flag kept beside the state: it must follow every
/// change of the state.
#[tokio::test]
async fn is_clear_follows_every_change() {
    let b = Breaker::new(policy());
    assert!(b.is_clear());
    b.record(Err(&trap()), "c");
    assert!(!b.is_clear(), "a fault holds the next call");
    b.record(Ok(()), "c");
    assert!(b.is_clear(), "a success clears it");
    b.suspend("operator");
    assert!(!b.is_clear());
    b.record(Ok(()), "c"); // a call that started before the suspension
    assert!(!b.is_clear(), "a late success does not end a suspension");
    b.resume();
    assert!(b.is_clear());
    b.record(Err(&trap()), "c");
    assert!(b.record(Err(&trap()), "c"), "quarantined");
    assert!(!b.is_clear());
    b.admit().await;
    assert!(!b.is_clear(), "probing");
    b.record(Ok(()), "c");
    assert!(b.is_clear());
}

#[tokio::test]
async fn handler_errors_do_not_count() {
    let b = Breaker::new(policy());
    let handler = CallError::new(ErrorKind::Handler, "no");
    for _ in 0..10 {
        assert!(!b.record(Err(&handler), "c"));
    }
    assert_eq!(b.status().state, "serving");
}

#[tokio::test]
async fn faults_in_a_row_quarantine_then_a_trial_call_closes() {
    let b = Breaker::new(policy());
    assert!(!b.record(Err(&trap()), "c"));
    assert!(!b.record(Ok(()), "c"), "a success resets the count");
    assert!(!b.record(Err(&trap()), "c"));
    assert!(b.record(Err(&trap()), "c"));
    let status = b.status();
    assert_eq!(status.state, "quarantined");
    assert!(status.reason.as_deref().is_some_and(|r| r.contains("boom")));
    b.admit().await; // waits out the cooldown, then admits one trial
    assert_eq!(b.status().state, "probing");
    b.record(Ok(()), "c");
    assert_eq!(b.status().state, "serving");
    assert_eq!(b.status().quarantines, 1);
}

#[tokio::test]
async fn only_one_trial_at_a_time() {
    let b = Breaker::new(policy());
    b.record(Err(&trap()), "c");
    b.record(Err(&trap()), "c");
    b.admit().await;
    let second = tokio::time::timeout(Duration::from_millis(50), b.admit()).await;
    assert!(second.is_err(), "a second call waits while the trial runs");
    b.record(Err(&trap()), "c");
    assert_eq!(b.status().state, "quarantined", "failed trial quarantines again");
}

#[tokio::test]
async fn resume_ends_a_suspension() {
    let b = std::sync::Arc::new(Breaker::new(policy()));
    b.suspend("operator");
    assert_eq!(b.status().state, "suspended");
    let waiting = tokio::spawn({
        let b = b.clone();
        async move { b.admit().await }
    });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    b.resume();
    waiting.await.expect("admitted after resume");
    assert_eq!(b.status().state, "serving");
}
