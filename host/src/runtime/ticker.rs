//! The engine's epoch, advanced every [`EPOCH_TICK`] while guest code may
//! run, and not at all while none can.
//!
//! Epoch interruption is how a computing guest is made to yield and how a
//! deadline reaches it, so whenever a guest may run the epoch must move.
//! But a thread woken a thousand times a second costs a host ~1.5% of a
//! core while it serves nothing (18 ms of CPU a second, measured on this
//! project's machine), and a machine running many quiet hosts pays that for
//! each. So every instance holds a [`Hold`] on the ticker, started while
//! guest code may run in it (while it is made and its `init` runs, and for
//! a call from its checkout until it is put back or dropped), and once every
//! hold has stayed stopped for [`IDLE_BEFORE_PARKING`] the ticker parks
//! until one starts.
//!
//! Starting a hold is an atomic add and stopping it a subtract; only the
//! first started while the ticker is parked wakes it. Parked, it still
//! wakes once a second to see whether its engine is gone.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use wasmtime::Engine;

use super::EPOCH_TICK;

/// How long no guest may run before the ticker parks.
pub const IDLE_BEFORE_PARKING: Duration = Duration::from_secs(1);

/// How often a parked ticker looks whether its engine was dropped.
const PARKED_CHECK: Duration = Duration::from_secs(1);

/// The ticker of one engine. Cheap to clone.
#[derive(Clone)]
pub struct Ticker {
    shared: Arc<Shared>,
}

struct Shared {
    /// Stretches in which guest code may run, now.
    running: AtomicUsize,
    /// Whether the ticker is parked (or about to park).
    parked: AtomicBool,
    /// Epochs advanced so far.
    ticks: AtomicU64,
    thread: OnceLock<Thread>,
}

/// An instance's hold on the ticker: while it is started, guest code may
/// run in the instance and the epoch moves. An instance keeps its hold for
/// life (one clone of the ticker when it is made, none per call) and
/// starts and stops it around each stretch; dropped, it stops.
pub struct Hold {
    ticker: Ticker,
    started: bool,
}

impl Ticker {
    /// Starts advancing `engine`'s epoch, on a thread of its own that ends
    /// once the engine is dropped.
    pub fn start(engine: &Engine) -> std::io::Result<Self> {
        Self::start_with(engine, IDLE_BEFORE_PARKING)
    }

    /// [`Ticker::start`], parking after `idle` without a guest.
    pub fn start_with(engine: &Engine, idle: Duration) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            running: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
            thread: OnceLock::new(),
        });
        let idle_ticks = u64::try_from(idle.as_micros() / EPOCH_TICK.as_micros().max(1))
            .unwrap_or(u64::MAX)
            .max(1);
        let (weak, ticking) = (engine.weak(), shared.clone());
        let thread = std::thread::Builder::new().name("berth-epoch".into()).spawn(move || {
            let mut idle: u64 = 0;
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                ticking.ticks.fetch_add(1, Ordering::Relaxed);
                if ticking.running.load(Ordering::Relaxed) > 0 {
                    idle = 0;
                } else {
                    idle += 1;
                }
                if idle < idle_ticks {
                    std::thread::sleep(EPOCH_TICK);
                    continue;
                }
                // Parked only if no guest started since the count was read:
                // whoever starts one reads `parked` after counting itself,
                // and so either is seen here or sees the flag and unparks.
                ticking.parked.store(true, Ordering::SeqCst);
                if ticking.running.load(Ordering::SeqCst) == 0 {
                    std::thread::park_timeout(PARKED_CHECK);
                }
                ticking.parked.store(false, Ordering::SeqCst);
            }
        })?;
        let _ = shared.thread.set(thread.thread().clone());
        Ok(Self { shared })
    }

    /// A hold on this ticker, started: guest code may run from now.
    pub fn hold(&self) -> Hold {
        self.enter();
        Hold {
            ticker: self.clone(),
            started: true,
        }
    }

    /// A stretch in which guest code may run begins: the epoch moves (and
    /// a parked ticker wakes) until it ends.
    fn enter(&self) {
        let before = self.shared.running.fetch_add(1, Ordering::SeqCst);
        if before == 0
            && self.shared.parked.load(Ordering::SeqCst)
            && let Some(thread) = self.shared.thread.get()
        {
            thread.unpark();
        }
    }

    fn leave(&self) {
        self.shared.running.fetch_sub(1, Ordering::Release);
    }

    /// Whether the ticker is parked now.
    #[cfg(test)]
    pub fn is_parked(&self) -> bool {
        self.shared.parked.load(Ordering::SeqCst)
    }

    /// Epochs advanced so far.
    #[cfg(test)]
    pub fn ticks(&self) -> u64 {
        self.shared.ticks.load(Ordering::Relaxed)
    }
}

impl Hold {
    /// Guest code may run in its instance from now (a call begins).
    pub fn start(&mut self) {
        if !self.started {
            self.ticker.enter();
            self.started = true;
        }
    }

    /// No guest code runs in its instance until the next start (the
    /// instance is put back).
    pub fn stop(&mut self) {
        if self.started {
            self.ticker.leave();
            self.started = false;
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use wasmtime::{Config, Module, Store};

    use super::*;

    /// `(module (func (export "spin") (loop (br 0))))`.
    const SPIN: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
        0x03, 0x02, 0x01, 0x00, // func 0 of type 0
        0x07, 0x08, 0x01, 0x04, b's', b'p', b'i', b'n', 0x00, 0x00, // export "spin"
        0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop br 0
    ];

    fn engine() -> Engine {
        let mut config = Config::new();
        config.epoch_interruption(true);
        Engine::new(&config).expect("an engine")
    }

    /// Waits (bounded) until `done` holds.
    fn until(what: &str, done: impl Fn() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{what} did not happen within 5 s"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn an_idle_ticker_parks_and_a_guest_that_starts_wakes_it() {
        let engine = engine();
        let ticker = Ticker::start_with(&engine, Duration::from_millis(20)).expect("a ticker");
        until("parking", || ticker.is_parked());
        let parked_at = ticker.ticks();

        // A guest stuck in a loop from a parked start is still interrupted.
        let mut hold = ticker.hold();
        let module = Module::new(&engine, SPIN).expect("the module");
        let (done, outcome) = std::sync::mpsc::channel();
        let spinning = engine.clone();
        std::thread::spawn(move || {
            let mut store = Store::new(&spinning, ());
            store.set_epoch_deadline(1);
            let result = wasmtime::Instance::new(&mut store, &module, &[])
                .and_then(|i| i.get_typed_func::<(), ()>(&mut store, "spin"))
                .and_then(|spin| spin.call(&mut store, ()));
            let _ = done.send(result.is_err());
        });
        let trapped = outcome
            .recv_timeout(Duration::from_secs(5))
            .expect("the loop was interrupted within 5 s");
        assert!(trapped, "the loop ended by its epoch deadline");
        assert!(ticker.ticks() > parked_at, "the ticker advanced the epoch again");

        // While a guest may run it does not park, however long.
        let busy_from = ticker.ticks();
        until("fifty ticks", || ticker.ticks() >= busy_from + 50);
        assert!(!ticker.is_parked(), "parked while a guest may run");
        hold.stop();
        until("parking again", || ticker.is_parked());
        hold.start();
        until("waking again", || !ticker.is_parked());
        drop(hold);
        until("parking once dropped", || ticker.is_parked());
    }

    #[test]
    fn the_ticker_ends_with_its_engine() {
        let engine = engine();
        let ticker = Ticker::start_with(&engine, Duration::from_millis(10)).expect("a ticker");
        until("parking", || ticker.is_parked());
        drop(engine);
        // The thread holds the shared state until it ends.
        until("the ticker's end", || Arc::strong_count(&ticker.shared) == 1);
    }
}
