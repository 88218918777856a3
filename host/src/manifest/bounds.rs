//! Numbers in a manifest are checked as they are read, so an error names
//! the key and shows its line (the TOML parser quotes it), and nothing out
//! of range ever reaches the runtime: a concurrency past what a semaphore
//! holds, or a timeout that never ends, would panic or hang the host.

use serde::Deserialize;
use serde::de::{Deserializer, Error};

/// Reads an unsigned integer within `LO..=HI` as a `T`.
pub(super) fn within<'de, D, T, const LO: u64, const HI: u64>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let value = u64::deserialize(d)?;
    check::<D::Error, T, LO, HI>(value)
}

/// As [`within`], for a key that may be absent.
pub(super) fn within_opt<'de, D, T, const LO: u64, const HI: u64>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    match Option::<u64>::deserialize(d)? {
        Some(value) => check::<D::Error, T, LO, HI>(value).map(Some),
        None => Ok(None),
    }
}

fn check<E: Error, T: TryFrom<u64>, const LO: u64, const HI: u64>(value: u64) -> Result<T, E> {
    if !(LO..=HI).contains(&value) {
        return Err(E::custom(format!("must be between {LO} and {HI}, not {value}")));
    }
    T::try_from(value).map_err(|_| E::custom(format!("{value} does not fit on this machine")))
}

/// One hour: the longest call, and the longest wait of any kind.
pub(super) const HOUR_MS: u64 = 3_600_000;
/// One day: the longest probation or quarantine.
pub(super) const DAY_MS: u64 = 86_400_000;
