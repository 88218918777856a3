//! The types every layer speaks: messages, errors, subjects, header names,
//! shared limits, trace context, and the traits that join the layers
//! ([`handler::Handler`], what the router calls; [`outbound::Outbound`],
//! where a component's messages go; [`keyvalue::Bucket`], where its state
//! lives; [`gateway::Nodes`], how it reaches WebSocket clients). Nothing here imports another Berth
//! module.

pub mod error;
pub mod gateway;
pub mod handler;
pub mod headers;
pub mod keyvalue;
pub mod limits;
pub mod message;
pub mod outbound;
pub mod subject;
pub mod trace;
