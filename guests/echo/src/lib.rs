//! Replies with the request's body and headers, byte for byte; accepts
//! every event.

use berth_sdk::{Config, Message, Reply, Router};

fn routes(_: &Config) -> Router {
    Router::new()
        .request(">", |msg: &Message| Ok(Reply::new(msg.body.clone()).with_headers(msg.headers.clone())))
        .event(">", |_| Ok(()))
}

berth_sdk::export!(routes);
