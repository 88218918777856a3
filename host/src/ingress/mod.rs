//! Ways in for clients that are not brokers: HTTP routes with their
//! middleware chains ([`http`]). Above the app layer, which it sends
//! requests through; below the control layer, whose HTTP listener serves
//! the routes beside the host's own API.

pub mod http;
