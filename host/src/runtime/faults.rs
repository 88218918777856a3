//! What a failed call into a component means to its caller: a trap (with
//! the panic that caused it, if the guest reported one), a deadline, a
//! message over the limits, or no instance slot left.

use wasmtime::{PoolConcurrencyLimitError, Trap};

use super::component::WasmHandler;
use crate::core::error::{CallError, Disposition, ErrorKind};

impl WasmHandler {
    pub(super) fn too_large(&self, what: &str, len: usize) -> CallError {
        CallError::new(
            ErrorKind::TooLarge,
            format!(
                "{what} of {len} bytes for component `{}` is over its limit of {} bytes",
                self.env.name, self.env.max_message_bytes
            ),
        )
        .with_disposition(Disposition::Reject)
    }

    pub(super) fn timeout_error(&self, what: &str) -> CallError {
        CallError::new(
            ErrorKind::Timeout,
            format!(
                "component `{}` did not finish its {what} within {:?}; the instance was discarded",
                self.env.name, self.settings.timeout
            ),
        )
    }

    /// What a failed wasm call means to the caller; `panic` is the report
    /// the instance made on stderr before it trapped, if any.
    pub(super) fn wasm_error(&self, error: &wasmtime::Error, panic: Option<String>) -> CallError {
        if let Some(limit) = error.downcast_ref::<PoolConcurrencyLimitError>() {
            // Not the component's fault: the host has no instance slot left.
            return CallError::new(
                ErrorKind::Overloaded,
                format!("no instance slot for component `{}`: {limit}", self.env.name),
            );
        }
        // wasmtime's type for this is private; its message is pinned by the
        // hostile-guest test.
        if format!("{:#}", error.root_cause()).contains("fuel allocated for hostcalls") {
            return CallError::new(
                ErrorKind::TooLarge,
                format!(
                    "component `{}` tried to hand the host more than its max_hostcall_kb ({} bytes) in one call; the instance was discarded",
                    self.env.name, self.settings.max_hostcall_bytes
                ),
            )
            .with_disposition(Disposition::Reject);
        }
        let what = match error.downcast_ref::<Trap>() {
            Some(trap) => trap.to_string(),
            None => format!("{:#}", error.root_cause()),
        };
        let what = match panic {
            Some(panic) => format!("{panic} ({what})"),
            None => what,
        };
        // `{:#}`: the chain of causes on one line, never a captured backtrace.
        tracing::warn!(component = %self.env.name, error = %format!("{error:#}"), "component trapped");
        CallError::new(
            ErrorKind::Trap,
            format!(
                "component `{}` trapped: {what}; the instance was discarded",
                self.env.name
            ),
        )
    }
}
