//! The loop that serves one subscription, and one delivery's call.
//!
//! The loop takes a concurrency permit *before* it pulls the next delivery,
//! so a component at its limit stops pulling and its broker-side queue
//! (bounded) fills instead of host memory.
//!
//! Cheap calls stay on the loop. A call is polled once where it was pulled;
//! if it has to wait (its reply's broker confirm, an ack, a guest's
//! outbound request) the loop keeps it among its waiting calls and polls it
//! again when it is woken, instead of giving it a task. A broker client
//! that completes many waits at once (lapin's I/O thread resolving a batch
//! of confirms) then wakes one task, not one per message: each wake-up
//! from another thread costs a futex or eventfd round trip, which on the
//! AMQP path was most of the host's CPU per message. A component whose
//! calls take longer than [`INLINE_BUDGET`](super::INLINE_BUDGET) gets a
//! task per call instead, so its calls use every core and do not hold up
//! the loop.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::{COMPONENT_HEADER, Route, VERSION_HEADER};
use crate::error::{CallError, Disposition, ErrorKind};
use crate::message::Message;
use crate::transport::{Delivery, Settlement, Subscription};

/// Serves one subscription (the route's `index`th subject) until `stop` is
/// cancelled or the transport closes. The spawned task and every call it
/// starts are tracked by `tasks`, so shutdown can wait for in-flight calls;
/// calls waiting on the loop are finished by the loop before it ends.
pub fn serve(
    route: Arc<Route>,
    index: usize,
    transport: &'static str,
    mut subscription: Subscription,
    tasks: &TaskTracker,
    stop: CancellationToken,
) {
    let calls = tasks.clone();
    tasks.spawn(async move {
        let mut waiting: FuturesUnordered<Guarded> = FuturesUnordered::new();
        // The check at the top sees a stop even while deliveries keep
        // coming: the selects below poll work first.
        while !stop.is_cancelled() {
            let ready = match waiting.is_empty() {
                true => try_pull(&route, &mut subscription).await,
                false => None,
            };
            let pulled = match ready {
                Some(ready) => Some(ready),
                None => {
                    let pull = pull(&route, &mut subscription, &stop);
                    tokio::pin!(pull);
                    loop {
                        tokio::select! {
                            biased;
                            // Finishing calls first frees their permits.
                            Some(()) = waiting.next(), if !waiting.is_empty() => {}
                            pulled = &mut pull => break pulled,
                        }
                    }
                }
            };
            let Some((delivery, permit)) = pulled else { break };
            if let Some(n) = route.received.get(index) {
                n.fetch_add(1, Ordering::Relaxed);
            }
            if route.runs_inline() {
                // Built in its box, not moved there: the call's future is
                // about a kilobyte.
                let mut call = Guarded {
                    call: Box::pin(dispatch(route.clone(), transport, delivery, permit)),
                    component: route.clone(),
                };
                if std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut call).poll(cx)))
                    .await
                    .is_pending()
                {
                    waiting.push(call);
                }
            } else {
                calls.spawn(dispatch(route.clone(), transport, delivery, permit));
            }
        }
        // Whatever is queued but not started is handed back: requests get a
        // clear error, events go back to the broker.
        while let Some(d) = subscription.try_next() {
            refuse(d, &route.name).await;
        }
        while waiting.next().await.is_some() {}
    });
}

/// A delivery that is already queued, with its permit, if the component
/// may take it at once; `None` if anything would have to wait, and then
/// [`pull`] waits for it.
///
/// Under load this is how most deliveries arrive, and it builds none of
/// `pull`'s futures (the permit's, the stop's, the breaker's and the
/// backoff's: together most of a kilobyte written and moved per message).
/// It spends the task's cooperative budget like an await would, so a loop
/// that always finds work still yields to the other tasks on its thread.
async fn try_pull(route: &Route, subscription: &mut Subscription) -> Option<(Delivery, OwnedSemaphorePermit)> {
    tokio::task::coop::consume_budget().await;
    if !route.breaker.is_clear() {
        return None;
    }
    let permit = route.limit.clone().try_acquire_owned().ok()?;
    let delivery = subscription.try_next()?;
    Some((delivery, permit))
}

/// The next delivery with its permit, once the component may take it;
/// `None` when the loop should end (stopped, or the transport closed).
///
/// Cancel-safe where the loop drops it: at the permit or while waiting for
/// a delivery (a subscription's `next` loses nothing when dropped). Once a
/// delivery is pulled, a stop refuses it rather than dropping it.
async fn pull(
    route: &Route,
    subscription: &mut Subscription,
    stop: &CancellationToken,
) -> Option<(Delivery, OwnedSemaphorePermit)> {
    // `biased`, work first: polling `stop` registers a waiter under a
    // lock, which costs more per message than the rest of the loop.
    let permit = tokio::select! {
        biased;
        permit = route.limit.clone().acquire_owned() => permit.ok()?,
        _ = stop.cancelled() => return None,
    };
    let delivery = tokio::select! {
        biased;
        d = subscription.next() => d?,
        _ = stop.cancelled() => return None,
    };
    // A quarantined or suspended component takes nothing: this one
    // delivery waits unsettled (on a broker: unacked, so it is not lost if
    // the host dies) and the rest stay at the broker.
    tokio::select! {
        biased;
        _ = route.breaker.admit() => {}
        _ = stop.cancelled() => {
            refuse(delivery, &route.name).await;
            return None;
        }
    }
    // A component that keeps trapping or timing out is slowed down (its
    // messages wait at the broker), so it cannot burn the CPU its
    // neighbours need.
    if let Some(pause) = route.breaker.backoff() {
        tokio::select! {
            _ = stop.cancelled() => {
                refuse(delivery, &route.name).await;
                return None;
            }
            _ = tokio::time::sleep(pause) => {}
        }
    }
    Some((delivery, permit))
}

/// A call kept on the loop. A panic in it (a bug in the host) would
/// otherwise end the loop, not just the call, as a spawned call's panic
/// ends only its task; here it ends the call, whose message is left
/// unsettled for the broker to redeliver.
struct Guarded {
    call: Pin<Box<dyn Future<Output = ()> + Send>>,
    component: Arc<Route>,
}

impl Future for Guarded {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let call = &mut self.call;
        match std::panic::catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(_) => {
                tracing::error!(
                    component = %self.component.name,
                    "a call panicked in the host (a bug); its message was left unsettled for the broker to redeliver"
                );
                Poll::Ready(())
            }
        }
    }
}

/// Runs one delivery's call and settles it, in a `berth.handle` span.
///
/// The span is at DEBUG level, as per-request spans are in tower-http: at
/// INFO the log subscriber formats its fields for every message, which
/// cost ~15% of the host's CPU under load (BENCHMARKS.md). Warnings about
/// one message therefore name the component and subject themselves.
async fn dispatch(route: Arc<Route>, transport: &'static str, delivery: Delivery, _permit: OwnedSemaphorePermit) {
    let span = tracing::debug_span!(
        "berth.handle",
        otel.kind = "consumer",
        messaging.system = transport,
        messaging.destination.name = %delivery.message.subject,
        messaging.operation.type = "process",
        component = %route.name,
        trace_id = tracing::field::Empty,
    );
    if !span.is_disabled()
        && let Some(trace_id) = crate::trace::trace_id(&delivery.message.headers)
    {
        span.record("trace_id", trace_id);
    }
    route.stats.enter();
    let Delivery { message, mut acker } = delivery;
    // Loaded once: this message is handled by this version, whatever
    // swaps happen meanwhile.
    let version = route.versions.active();
    let started = Instant::now();
    async {
        let settlement = match message.reply_to.is_some().then(|| envelope(&message)) {
            Some(envelope) => {
                let result = version.handler.handle_request(message).await;
                route.record(&version, true, result.as_ref().map(drop), started);
                let reply = match result {
                    Ok(r) => {
                        let mut headers = r.headers;
                        if route.reply_headers {
                            headers.push((COMPONENT_HEADER.to_owned(), route.name.clone()));
                            headers.push((VERSION_HEADER.to_owned(), version.hash.clone()));
                        }
                        envelope.reply(r.body, headers)
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "request failed");
                        e.to_reply(&envelope)
                    }
                };
                // Ack only once the reply is handed to the broker.
                match reply {
                    Some(reply) => match acker.reply(reply).await {
                        Ok(()) => Settlement::Ack,
                        Err(e) => {
                            tracing::warn!(component = %route.name, error = %e, "could not send reply; asking for redelivery");
                            Settlement::Retry(format!("could not send the reply: {e}"))
                        }
                    },
                    None => Settlement::Ack,
                }
            }
            None => {
                let subject = message.subject.clone();
                let result = version.handler.handle_event(message).await;
                route.record(&version, false, result.as_ref().map(drop), started);
                match result {
                    Ok(()) => Settlement::Ack,
                    Err(e) => {
                        tracing::warn!(component = %route.name, %subject, error = %e, "event failed");
                        match e.disposition {
                            Disposition::Retry => Settlement::Retry(e.to_string()),
                            Disposition::Reject => Settlement::Reject(e.to_string()),
                        }
                    }
                }
            }
        };
        settle(acker, settlement, &route.name).await;
    }
    .instrument(span)
    .await;
}

/// What a reply needs of its request (where to, which correlation), kept
/// after the body has moved into the call.
fn envelope(message: &Message) -> Message {
    Message {
        reply_to: message.reply_to.clone(),
        correlation_id: message.correlation_id.clone(),
        ..Message::default()
    }
}

async fn settle(acker: Box<dyn crate::transport::Acker>, settlement: Settlement, component: &str) {
    if let Err(e) = acker.settle(settlement).await {
        tracing::warn!(component, error = %e, "could not settle delivery; the broker will redeliver it");
    }
}

async fn refuse(delivery: Delivery, component: &str) {
    let Delivery { message, mut acker } = delivery;
    let error = CallError::new(
        ErrorKind::Overloaded,
        format!("component `{component}` is shutting down"),
    );
    // A request is answered (and so done); an event goes back to the broker.
    let settlement = match error.to_reply(&message) {
        Some(reply) => match acker.reply(reply).await {
            Ok(()) => Settlement::Ack,
            Err(_) => Settlement::Release,
        },
        None => Settlement::Release,
    };
    settle(acker, settlement, component).await;
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;
    use crate::handler::{NativeHandler, Reply};
    use crate::transport::memory::MemoryTransport;
    use crate::transport::{SubscribeOptions, Transport};

    fn route(handler: impl Fn(Message) -> Result<Reply, CallError> + Send + Sync + 'static) -> Arc<Route> {
        Arc::new(Route::native("r", &["r.>"], 8, Arc::new(NativeHandler(handler))))
    }

    /// Serves `route` on `r.>` of a fresh memory bus.
    async fn serve_on_memory(route: Arc<Route>) -> (MemoryTransport, TaskTracker, CancellationToken) {
        let bus = MemoryTransport::default();
        let sub = bus
            .subscribe(SubscribeOptions {
                pattern: "r.>".into(),
                capacity: 16,
                ..SubscribeOptions::default()
            })
            .await
            .expect("subscribe");
        let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
        serve(route, 0, "memory", sub, &tasks, stop.clone());
        (bus, tasks, stop)
    }

    /// Calls that keep a thread busy (the worst case for running on the
    /// loop) must still run side by side once the route sees their cost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn expensive_calls_run_in_parallel() {
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let r = {
            let (now, most) = (now.clone(), most.clone());
            route(move |_| {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(3));
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(Reply::default())
            })
        };
        let (bus, tasks, stop) = serve_on_memory(r.clone()).await;
        let requests: Vec<_> = (0..48)
            .map(|i| {
                let bus = bus.clone();
                tokio::spawn(async move {
                    bus.request(Message::new(format!("r.{i}"), "x"), Duration::from_secs(10))
                        .await
                })
            })
            .collect();
        for request in requests {
            request.await.expect("request task").expect("reply");
        }
        assert!(!r.runs_inline());
        assert!(
            most.load(Ordering::SeqCst) >= 2,
            "expensive calls ran one at a time on the loop"
        );
        stop.cancel();
        tasks.close();
        tasks.wait().await;
    }

    /// An acker with nothing behind it, for deliveries made by hand.
    struct Nothing;

    #[async_trait::async_trait]
    impl crate::transport::Acker for Nothing {
        async fn reply(&mut self, _: Message) -> Result<(), crate::transport::TransportError> {
            Ok(())
        }

        async fn settle(self: Box<Self>, _: Settlement) -> Result<(), crate::transport::TransportError> {
            Ok(())
        }
    }

    /// A loop that always finds work queued, on a stream that never makes
    /// it wait (nothing in it spends tokio's cooperative budget), must
    /// still let the other tasks on its thread run long before the queue
    /// is empty.
    #[tokio::test(flavor = "current_thread")]
    async fn a_loop_with_work_queued_still_yields_to_its_neighbours() {
        const QUEUED: usize = 1000;
        let handled = Arc::new(AtomicUsize::new(0));
        let r = {
            let handled = handled.clone();
            route(move |_| {
                handled.fetch_add(1, Ordering::SeqCst);
                Ok(Reply::default())
            })
        };
        let deliveries = (0..QUEUED).map(|_| Delivery {
            message: Message::new("r.event", "x"),
            acker: Box::new(Nothing),
        });
        let sub = Subscription::from_stream(futures_util::stream::iter(deliveries));
        let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
        serve(r, 0, "memory", sub, &tasks, stop.clone());
        let neighbour = {
            let handled = handled.clone();
            tokio::spawn(async move { handled.load(Ordering::SeqCst) })
        };
        let seen = neighbour.await.expect("neighbour task");
        // The stream ends after the last delivery, and so does the loop.
        tasks.close();
        tasks.wait().await;
        assert_eq!(handled.load(Ordering::SeqCst), QUEUED);
        assert!(
            seen < QUEUED,
            "the neighbour ran only after the loop had handled all {QUEUED} deliveries"
        );
    }

    /// A handler whose calls report that they started, then wait until
    /// the test opens the gate; `r.boom` panics once let through.
    struct Gated {
        arrived: tokio::sync::mpsc::UnboundedSender<String>,
        gate: Arc<tokio::sync::Semaphore>,
    }

    #[async_trait::async_trait]
    impl crate::handler::Handler for Gated {
        async fn handle_request(&self, message: Message) -> Result<Reply, CallError> {
            let _ = self.arrived.send(message.subject.clone());
            if let Ok(permit) = self.gate.acquire().await {
                permit.forget();
            }
            assert_ne!(message.subject, "r.boom", "a bug in a call");
            Ok(Reply {
                body: message.body,
                headers: vec![],
            })
        }

        async fn handle_event(&self, _message: Message) -> Result<(), CallError> {
            Ok(())
        }
    }

    struct Served {
        bus: MemoryTransport,
        arrived: tokio::sync::mpsc::UnboundedReceiver<String>,
        gate: Arc<tokio::sync::Semaphore>,
        tasks: TaskTracker,
        stop: CancellationToken,
    }

    impl Served {
        /// Stops the loop and waits until it has ended.
        async fn shut_down(self) {
            self.stop.cancel();
            self.tasks.close();
            self.tasks.wait().await;
        }
    }

    async fn serve_gated(max_concurrency: usize) -> Served {
        let (sender, arrived) = tokio::sync::mpsc::unbounded_channel();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let handler = Gated {
            arrived: sender,
            gate: gate.clone(),
        };
        let route = Arc::new(Route::native("r", &["r.>"], max_concurrency, Arc::new(handler)));
        let (bus, tasks, stop) = serve_on_memory(route).await;
        Served {
            bus,
            arrived,
            gate,
            tasks,
            stop,
        }
    }

    type Answer = tokio::task::JoinHandle<Result<Message, crate::transport::TransportError>>;

    fn request(bus: &MemoryTransport, subject: &str) -> Answer {
        request_within(bus, subject, Duration::from_secs(10))
    }

    /// A request whose body is its subject, sent from a task of its own.
    fn request_within(bus: &MemoryTransport, subject: &str, timeout: Duration) -> Answer {
        let bus = bus.clone();
        let message = Message::new(subject, subject.to_owned());
        tokio::spawn(async move { bus.request(message, timeout).await })
    }

    /// Calls that have to wait are kept by the loop (no task each), still
    /// hold their permits, and free them when they finish.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_calls_stay_on_the_loop_and_release_their_permits() {
        let mut s = serve_gated(2).await;
        let requests: Vec<_> = (0..6).map(|i| request(&s.bus, &format!("r.{i}"))).collect();
        for _ in 0..2 {
            s.arrived.recv().await.expect("a call started");
        }
        assert_eq!(s.tasks.len(), 1, "a waiting call got a task of its own");
        assert!(s.arrived.try_recv().is_err(), "more calls than permits started");
        s.gate.add_permits(6);
        for (i, r) in requests.into_iter().enumerate() {
            let reply = r.await.expect("request task").expect("reply");
            assert_eq!(reply.body.as_ref(), format!("r.{i}").as_bytes());
        }
        assert_eq!(s.tasks.len(), 1);
        s.shut_down().await;
    }

    /// A panic in a call the loop keeps ends that call only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_in_a_waiting_call_does_not_end_the_loop() {
        let mut s = serve_gated(4).await;
        let boom = request_within(&s.bus, "r.boom", Duration::from_millis(500));
        assert_eq!(s.arrived.recv().await.as_deref(), Some("r.boom"));
        s.gate.add_permits(1);
        assert!(
            boom.await.expect("request task").is_err(),
            "a panicked call was answered"
        );
        s.gate.add_permits(1);
        let after = request(&s.bus, "r.after").await.expect("request task");
        assert_eq!(after.expect("the loop still serves").body.as_ref(), b"r.after");
        s.shut_down().await;
    }

    /// Stopping does not drop the calls the loop keeps: it finishes them
    /// before it ends, and shutdown waits for the loop.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopping_finishes_the_waiting_calls() {
        let mut s = serve_gated(4).await;
        let requests: Vec<_> = (0..3).map(|i| request(&s.bus, &format!("r.{i}"))).collect();
        for _ in 0..3 {
            s.arrived.recv().await.expect("a call started");
        }
        s.stop.cancel();
        s.tasks.close();
        let done = {
            let tasks = s.tasks.clone();
            tokio::spawn(async move { tasks.wait().await })
        };
        assert!(
            !done.is_finished() && s.tasks.len() == 1,
            "the loop ended with calls waiting"
        );
        s.gate.add_permits(3);
        for r in requests {
            r.await
                .expect("request task")
                .expect("a waiting call was dropped at stop");
        }
        done.await.expect("shutdown waits for the loop");
    }
}
