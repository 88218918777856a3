//! [`Error`]: what a handler returns when it cannot answer, and what the
//! host returns when a `publish` or `request` fails.
//!
//! An error has an HTTP-style code, a short name, a message and optional
//! data. Its [`ErrorKind`] says who made it: `Handler` for errors a handler
//! returned, anything else for errors the host made (timeout, forbidden,
//! no responders ...). For events, its [`Disposition`] tells the broker to
//! redeliver (`Retry`) or dead-letter (`Reject`) the message; the
//! constructors choose `Retry` for 5xx codes and `Reject` for 4xx.

use serde::Serialize;

pub use crate::__private::bindings::berth::backend::types::{Disposition, Error, ErrorKind};

impl Error {
    /// An error with any code; 5xx codes are retried, others rejected.
    pub fn new(code: u16, name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Handler,
            code,
            name: name.into(),
            message: message.into(),
            data: None,
            disposition: if code >= 500 {
                Disposition::Retry
            } else {
                Disposition::Reject
            },
        }
    }

    /// 400: the message is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "Bad Request", message)
    }

    /// 401: the caller is not authenticated.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "Unauthorized", message)
    }

    /// 403: the caller may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 404: what the message refers to does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "Not Found", message)
    }

    /// 409: the message conflicts with the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "Conflict", message)
    }

    /// 422: well-formed but semantically wrong.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, "Unprocessable Entity", message)
    }

    /// 500: something went wrong in the handler.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "Internal Server Error", message)
    }

    /// 503: a dependency is unavailable; worth retrying.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "Service Unavailable", message)
    }

    /// No route takes this subject.
    pub fn unhandled(subject: &str) -> Self {
        Self {
            kind: ErrorKind::Unhandled,
            ..Self::new(404, "Not Found", format!("no handler for subject `{subject}`"))
        }
    }

    /// Attaches machine-readable details.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = Some(data.into());
        self
    }

    /// Attaches details as JSON.
    pub fn with_json_data<T: Serialize + ?Sized>(self, data: &T) -> Self {
        match serde_json::to_vec(data) {
            Ok(bytes) => self.with_data(bytes),
            Err(_) => self,
        }
    }

    /// Asks the broker to redeliver a failed event.
    pub fn retry(mut self) -> Self {
        self.disposition = Disposition::Retry;
        self
    }

    /// Asks the broker to dead-letter a failed event.
    pub fn reject(mut self) -> Self {
        self.disposition = Disposition::Reject;
        self
    }

    /// Whether the host made this error (as opposed to a handler).
    pub fn is_from_host(&self) -> bool {
        !matches!(self.kind, ErrorKind::Handler | ErrorKind::Unhandled)
    }
}

impl From<serde_json::Error> for Error {
    /// Bad JSON from a caller is the caller's fault: 400.
    fn from(e: serde_json::Error) -> Self {
        Self::bad_request(format!("invalid JSON: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_follow_the_code() {
        assert_eq!(Error::bad_request("x").disposition, Disposition::Reject);
        assert_eq!(Error::unavailable("x").disposition, Disposition::Retry);
        assert_eq!(Error::not_found("x").retry().disposition, Disposition::Retry);
    }

    #[test]
    fn unhandled_is_its_own_kind() {
        let e = Error::unhandled("a.b");
        assert_eq!(e.kind, ErrorKind::Unhandled);
        assert!(e.message.contains("a.b"));
        assert!(!e.is_from_host());
    }
}
