//! CPU fairness between components inside one process.
//!
//! Every guest yields to the executor at each epoch tick, so no call pins a
//! thread. That alone is not enough: two guests spinning on a two-core
//! machine would still take both cores in turns, and every other
//! component's latency would grow to a tick. So a call that has computed
//! through [`GRACE_TICKS`] ticks without returning is demoted: after each
//! further tick it sleeps for [`DEMOTED_SLEEP_TICKS`] ticks, running at a
//! tenth of a core. Ordinary calls (well under a tick) never notice; long
//! computations still finish, more slowly; an endless loop costs a tenth
//! of a core until its deadline ends it.

use std::future::Future;
use std::pin::Pin;

use wasmtime::UpdateDeadline;

use super::EPOCH_TICK;

/// Ticks a call may run at full speed.
pub const GRACE_TICKS: u32 = 2;

/// Ticks a demoted call sleeps after each tick it runs.
pub const DEMOTED_SLEEP_TICKS: u32 = 9;

/// What to do at an epoch tick of a call that has run `ticks` ticks so far
/// (the counter is advanced here and reset when a call starts).
pub fn on_tick(ticks: &mut u32) -> UpdateDeadline {
    *ticks = ticks.saturating_add(1);
    if *ticks <= GRACE_TICKS {
        return UpdateDeadline::Yield(1);
    }
    let pause: Pin<Box<dyn Future<Output = ()> + Send>> =
        Box::pin(tokio::time::sleep(EPOCH_TICK * DEMOTED_SLEEP_TICKS));
    UpdateDeadline::YieldCustom(1, pause)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn short_calls_yield_and_long_calls_are_demoted() {
        let mut ticks = 0;
        for _ in 0..GRACE_TICKS {
            assert!(matches!(on_tick(&mut ticks), UpdateDeadline::Yield(1)));
        }
        assert!(matches!(on_tick(&mut ticks), UpdateDeadline::YieldCustom(1, _)));
    }
}
