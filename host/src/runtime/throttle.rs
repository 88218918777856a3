//! CPU fairness between components inside one process.
//!
//! Every guest yields to the executor at each epoch tick, so no call pins a
//! thread. That alone is not enough: two guests spinning on a two-core
//! machine would still take both cores in turns, and every other
//! component's latency would grow to a tick. So a call that has computed
//! for more than [`GRACE`] without returning is demoted: after each further
//! tick it sleeps for [`DEMOTED_SLEEP_TICKS`] ticks, running at a tenth of
//! a core. Ordinary calls (well under a tick) never notice; long
//! computations still finish, more slowly; an endless loop costs a tenth
//! of a core until its deadline ends it.
//!
//! What counts is time computing, not time since the call began: the time
//! a call spends waiting in the host (a request's reply, a key-value round
//! trip) and the time it waits for the executor after a yield are left
//! out. Counting wall time demoted every call that made a few network
//! round trips, which then slept 9 ms per tick it waited.
//!
//! A stretch of computing is first measured on the wall clock (18 ns a
//! reading); but a thread the OS set aside for a few milliseconds looks
//! like a guest computing. So once a call's stretches add up to
//! [`GRACE`], the clock switches to the thread's CPU time (190 ns a
//! reading, only in calls that long) and the call must compute a further
//! [`GRACE`] of CPU before it is demoted.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::time::{ClockId, clock_gettime};
use wasmtime::UpdateDeadline;

use super::EPOCH_TICK;

/// How long a call may compute at full speed.
pub const GRACE: Duration = Duration::from_millis(2);

/// Ticks a demoted call sleeps after each tick it runs.
pub const DEMOTED_SLEEP_TICKS: u32 = 9;

/// How long the current call has computed: the sum of the stretches
/// between the guest resuming (the call's start, a host call's end, the
/// end of a yield) and its next stop.
#[derive(Debug)]
pub struct CallClock {
    /// Computing time up to the guest's last stop, on the current clock.
    computed: Duration,
    /// When the guest last resumed, in nanoseconds on the current clock.
    /// Shared with the yield's future, which resumes it.
    resumed: Arc<AtomicU64>,
    /// Zero of the wall clock.
    base: Instant,
    /// Whether the clock is the thread's CPU time (see the module docs).
    cpu: bool,
    /// Whether the call has been demoted (counted once per call).
    demoted: bool,
}

impl Default for CallClock {
    fn default() -> Self {
        Self {
            computed: Duration::ZERO,
            resumed: Arc::new(AtomicU64::new(0)),
            base: Instant::now(),
            cpu: false,
            demoted: false,
        }
    }
}

impl CallClock {
    /// A new call starts now.
    pub fn restart(&mut self) {
        self.computed = Duration::ZERO;
        self.cpu = false;
        self.demoted = false;
        self.resumed.store(now(false, self.base), Ordering::Relaxed);
    }

    /// Runs a host call's wait; the guest computes again once it is over.
    pub async fn wait<T>(&mut self, work: impl Future<Output = T>) -> T {
        self.stop();
        let out = work.await;
        self.resumed.store(now(self.cpu, self.base), Ordering::Relaxed);
        out
    }

    /// The guest stops computing now: adds the stretch since it resumed,
    /// and returns it. A stretch starts and ends on one thread: nothing
    /// between them awaits.
    fn stop(&mut self) -> Duration {
        let since = now(self.cpu, self.base).saturating_sub(self.resumed.load(Ordering::Relaxed));
        let stretch = Duration::from_nanos(since);
        self.computed += stretch;
        stretch
    }
}

/// Nanoseconds on the thread's CPU clock, or on the wall clock since `base`.
fn now(cpu: bool, base: Instant) -> u64 {
    let elapsed = match cpu {
        true => Duration::try_from(clock_gettime(ClockId::ThreadCPUTime)).unwrap_or_default(),
        false => base.elapsed(),
    };
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

/// What to do at an epoch tick of the current call: yield, and if it has
/// computed past its grace, sleep first. `demoted` is told the first time
/// a call is demoted, to count it.
///
/// A guest that resumed less than a tick ago (most often from a host call
/// that waited across the tick) has not held its thread for long: it goes
/// on without yielding. Yielding there cost a wake-up and a reschedule
/// for every tick a waiting call crossed, a third of the key-value calls
/// of a busy component.
pub fn on_tick(clock: &mut CallClock, demoted: impl FnOnce()) -> UpdateDeadline {
    let stretch = clock.stop();
    if !clock.cpu && clock.computed > GRACE {
        // From here on, count only what the thread really computed.
        clock.cpu = true;
        clock.computed = Duration::ZERO;
    }
    let pause = (clock.cpu && clock.computed > GRACE).then_some(EPOCH_TICK * DEMOTED_SLEEP_TICKS);
    if pause.is_some() && !clock.demoted {
        clock.demoted = true;
        demoted();
    }
    if pause.is_none() && stretch < EPOCH_TICK {
        clock.resumed.store(now(clock.cpu, clock.base), Ordering::Relaxed);
        return UpdateDeadline::Continue(1);
    }
    let (resumed, cpu, base) = (clock.resumed.clone(), clock.cpu, clock.base);
    let resume: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
        match pause {
            Some(pause) => tokio::time::sleep(pause).await,
            None => tokio::task::yield_now().await,
        }
        resumed.store(now(cpu, base), Ordering::Relaxed);
    });
    UpdateDeadline::YieldCustom(1, resume)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(d: Duration) {
        let started = Instant::now();
        while started.elapsed() < d {
            std::hint::spin_loop();
        }
    }

    #[derive(Debug, PartialEq)]
    enum Tick {
        Continue,
        Yield,
        Sleep,
    }

    /// What the tick did, once its yield (if any) is over.
    async fn tick(deadline: UpdateDeadline) -> Tick {
        let resume = match deadline {
            UpdateDeadline::Continue(1) => return Tick::Continue,
            UpdateDeadline::YieldCustom(1, resume) => resume,
            _ => panic!("a tick continues or yields for one tick"),
        };
        let started = Instant::now();
        resume.await;
        match started.elapsed() >= EPOCH_TICK * DEMOTED_SLEEP_TICKS {
            true => Tick::Sleep,
            false => Tick::Yield,
        }
    }

    #[tokio::test]
    async fn computing_calls_are_demoted_once_waiting_ones_never() {
        let mut clock = CallClock::default();
        clock.restart();
        let mut demotions = 0;
        // Just resumed: no need to yield.
        assert_eq!(tick(on_tick(&mut clock, || demotions += 1)).await, Tick::Continue);
        // Waiting in the host is not computing.
        clock.wait(tokio::time::sleep(GRACE * 3)).await;
        assert_eq!(tick(on_tick(&mut clock, || demotions += 1)).await, Tick::Continue);
        // Computing yields at each tick, and past the grace, on the wall
        // clock and then on the thread's CPU clock, sleeps.
        spin(GRACE * 2);
        assert_eq!(tick(on_tick(&mut clock, || demotions += 1)).await, Tick::Yield);
        spin(GRACE * 2);
        assert_eq!(tick(on_tick(&mut clock, || demotions += 1)).await, Tick::Sleep);
        assert_eq!(tick(on_tick(&mut clock, || demotions += 1)).await, Tick::Sleep);
        assert_eq!(demotions, 1, "counted once per call");
        clock.restart();
        assert_eq!(tick(on_tick(&mut clock, || demotions += 1)).await, Tick::Continue);
    }
}
