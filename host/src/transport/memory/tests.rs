use super::*;

fn opts(pattern: &str, group: Option<&str>) -> SubscribeOptions {
    SubscribeOptions {
        pattern: pattern.into(),
        group: group.map(Into::into),
        capacity: 16,
        ..SubscribeOptions::default()
    }
}

/// Everything queued so far: publish has returned, so every delivery
/// it made is already in the queue.
fn drain(sub: &mut Subscription) -> Vec<String> {
    std::iter::from_fn(|| sub.try_next())
        .map(|d| d.message.subject)
        .collect()
}

#[tokio::test]
async fn fan_out_reaches_every_plain_subscriber() {
    let bus = MemoryTransport::default();
    let mut a = bus.subscribe(opts("a.>", None)).await.expect("sub");
    let mut b = bus.subscribe(opts("a.*", None)).await.expect("sub");
    bus.publish(Message::new("a.x", "1")).await.expect("publish");
    assert_eq!(drain(&mut a), ["a.x"]);
    assert_eq!(drain(&mut b), ["a.x"]);
}

#[tokio::test]
async fn literal_and_wildcard_subscriptions_both_receive_and_leave() {
    let bus = MemoryTransport::default();
    let mut exact = bus.subscribe(opts("a.x", None)).await.expect("sub");
    let mut twin = bus.subscribe(opts("a.x", None)).await.expect("sub");
    let mut wild = bus.subscribe(opts("a.*", None)).await.expect("sub");
    let mut other = bus.subscribe(opts("a.y", None)).await.expect("sub");
    bus.publish(Message::new("a.x", "1")).await.expect("publish");
    assert_eq!(drain(&mut exact), ["a.x"]);
    assert_eq!(drain(&mut twin), ["a.x"]);
    assert_eq!(drain(&mut wild), ["a.x"]);
    assert!(drain(&mut other).is_empty());
    drop(exact);
    bus.publish(Message::new("a.x", "2")).await.expect("publish");
    assert_eq!(drain(&mut twin), ["a.x"], "the twin of a dropped subscription stays");
    drop((twin, wild));
    let err = bus.request(Message::new("a.x", ""), Duration::from_secs(1)).await;
    assert!(matches!(err, Err(TransportError::NoResponders(_))));
}

#[tokio::test]
async fn queue_group_delivers_each_message_once() {
    let bus = MemoryTransport::default();
    let mut a = bus.subscribe(opts("q.>", Some("g"))).await.expect("sub");
    let mut b = bus.subscribe(opts("q.>", Some("g"))).await.expect("sub");
    for i in 0..10 {
        bus.publish(Message::new(format!("q.{i}"), "")).await.expect("publish");
    }
    let (got_a, got_b) = (drain(&mut a), drain(&mut b));
    assert_eq!(got_a.len() + got_b.len(), 10);
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "work is shared: {got_a:?} {got_b:?}"
    );
}

#[tokio::test]
async fn unsubscribe_on_drop() {
    let bus = MemoryTransport::default();
    let sub = bus.subscribe(opts("x", None)).await.expect("sub");
    drop(sub);
    let err = bus.request(Message::new("x", ""), Duration::from_secs(1)).await;
    assert!(matches!(err, Err(TransportError::NoResponders(_))));
}

#[tokio::test]
async fn request_reply_and_timeout() {
    let bus = MemoryTransport::default();
    let mut sub = bus.subscribe(opts("svc", None)).await.expect("sub");
    let responder = tokio::spawn(async move {
        let mut d = sub.next().await.expect("delivery");
        let reply = d.message.reply("pong", vec![]).expect("has reply_to");
        d.acker.reply(reply).await.expect("reply");
        // Second request: never answered.
        let _unanswered = sub.next().await;
        sub
    });
    let reply = bus
        .request(Message::new("svc", "ping"), Duration::from_secs(5))
        .await
        .expect("reply");
    assert_eq!(reply.body, "pong");
    let err = bus
        .request(Message::new("svc", "ping"), Duration::from_millis(50))
        .await;
    assert!(matches!(err, Err(TransportError::Timeout { .. })), "{err:?}");
    drop(responder.await);
}

#[tokio::test]
async fn a_cancelled_request_leaves_no_inbox_behind() {
    let bus = MemoryTransport::default();
    let _sub = bus.subscribe(opts("svc", None)).await.expect("sub");
    let request = bus.request(Message::new("svc", ""), Duration::from_secs(60));
    // Poll it once (it registers its inbox and waits), then drop it.
    assert!(futures_poll_once(request).await.is_none());
    assert!(bus.bus.inboxes.lock().expect("lock").is_empty());
}

/// Polls a future once; `None` if it is still pending.
async fn futures_poll_once<F: std::future::Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match f.as_mut().poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

#[tokio::test]
async fn full_subscriber_makes_publish_fail_as_overloaded() {
    let bus = MemoryTransport::new(Duration::from_millis(20));
    let _sub = bus
        .subscribe(SubscribeOptions {
            pattern: "slow".into(),
            group: None,
            capacity: 1,
            ..SubscribeOptions::default()
        })
        .await
        .expect("sub");
    bus.publish(Message::new("slow", "1")).await.expect("room for one");
    let err = bus.publish(Message::new("slow", "2")).await;
    assert!(matches!(err, Err(TransportError::Overloaded(_))), "{err:?}");
}

#[tokio::test]
async fn wildcard_subjects_are_refused_for_sending() {
    let bus = MemoryTransport::default();
    let err = bus.publish(Message::new("a.*", "")).await;
    assert!(matches!(err, Err(TransportError::Subject(_))), "{err:?}");
}
