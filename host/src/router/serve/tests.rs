//! The serve loop: waiting calls, panics, stopping, parallel expensive
//! calls and fairness to its neighbours.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::core::handler::{NativeHandler, Reply};
use crate::core::message::Message;
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
        acker: Box::new(Nothing) as Box<dyn crate::transport::Acker>,
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
impl crate::core::handler::Handler for Gated {
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

/// Takes messages in batches of four, records each batch's size, and
/// makes its first batch take `first_takes` (as an instance's first call
/// does).
struct Batching {
    sizes: std::sync::Mutex<Vec<usize>>,
    first_takes: Duration,
}

impl Batching {
    fn new(first_takes: Duration) -> Arc<Self> {
        Arc::new(Self {
            sizes: std::sync::Mutex::new(Vec::new()),
            first_takes,
        })
    }
}

#[async_trait::async_trait]
impl crate::core::handler::Handler for Batching {
    async fn handle_request(&self, _message: Message) -> Result<Reply, CallError> {
        Ok(Reply::default())
    }

    async fn handle_event(&self, _message: Message) -> Result<(), CallError> {
        Ok(())
    }

    fn batch_limit(&self) -> usize {
        4
    }

    async fn handle_batch(&self, messages: &[Message]) -> Vec<Result<Option<Reply>, CallError>> {
        let first = {
            let mut sizes = self.sizes.lock().expect("sizes");
            sizes.push(messages.len());
            sizes.len() == 1
        };
        if first {
            std::thread::sleep(self.first_takes);
        }
        messages.iter().map(|_| Ok(None)).collect()
    }
}

/// One slow batch is one outlier, however many messages it carried: the
/// component stays on its loop, and so keeps taking batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slow_batch_does_not_move_a_component_off_its_loop() {
    // 3 ms for four messages: 750 µs each, past the cap on one sample.
    let handler = Batching::new(Duration::from_millis(3));
    let route = Arc::new(Route::native("r", &["r.>"], 8, handler.clone()));
    let (bus, tasks, stop) = serve_on_memory(route.clone()).await;
    route.breaker.suspend("filling the queue");
    for i in 0..16 {
        bus.publish(Message::new(format!("r.{i}"), "x")).await.expect("queued");
    }
    route.breaker.resume();
    assert!(
        route
            .stats
            .wait_until(Duration::from_secs(10), |s| s.events == 16)
            .await,
        "all handled: {:?}",
        route.stats.snapshot()
    );
    assert_eq!(*handler.sizes.lock().expect("sizes"), [4, 4, 4, 4]);
    assert!(route.runs_inline());
    stop.cancel();
    tasks.close();
    tasks.wait().await;
}

/// Replies only once every reply of its batch is on its way, as four
/// publisher confirms arriving together would.
struct Together(Arc<tokio::sync::Barrier>);

#[async_trait::async_trait]
impl crate::transport::Acker for Together {
    async fn reply(&mut self, _: Message) -> Result<(), crate::transport::TransportError> {
        self.0.wait().await;
        Ok(())
    }

    async fn settle(self: Box<Self>, _: Settlement) -> Result<(), crate::transport::TransportError> {
        Ok(())
    }

    fn waits_for_broker(&self) -> bool {
        true
    }
}

/// Where replies wait for the broker, a batch's replies wait side by
/// side: one after the other, a batch on AMQP waited for one publisher
/// confirm per message in turn.
#[tokio::test]
async fn a_batch_sends_its_replies_side_by_side() {
    let route = Arc::new(Route::native("r", &["r.>"], 8, Batching::new(Duration::ZERO)));
    let together = Arc::new(tokio::sync::Barrier::new(4));
    let batch = (0..4)
        .map(|i| {
            let mut message = Message::new(format!("r.{i}"), "x");
            message.reply_to = Some(format!("inbox.{i}"));
            let delivery = Delivery {
                message,
                acker: Box::new(Together(together.clone())) as Box<dyn crate::transport::Acker>,
            };
            let permit = route.limit.clone().try_acquire_owned().expect("a permit");
            (delivery, permit)
        })
        .collect();
    tokio::time::timeout(
        Duration::from_secs(5),
        dispatch_batch(route.clone(), "memory", route.endpoints()[0].clone(), batch),
    )
    .await
    .expect("the replies waited for each other in turn");
    assert_eq!(route.stats.snapshot().requests, 4);
    assert_eq!(route.limit.available_permits(), 8, "every permit came back");
}
