//! JSON in, JSON out: `{"name": "Ada"}` gets `{"message": "Hello, Ada!"}`,
//! with the greeting word from config, and publishes `events.greeted` for
//! each greeting. Bad JSON gets a 400 error.

use berth_sdk::{Config, Error, Message, Reply, Router, publish_json};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Greet {
    name: String,
}

#[derive(Serialize)]
struct Greeting {
    message: String,
}

fn routes(config: &Config) -> Router {
    let greeting = config.get_str("greeting").unwrap_or("Hello").to_owned();
    Router::new().request("greet.>", move |msg: &Message| {
        let Greet { name } = msg.json()?;
        if name.trim().is_empty() {
            return Err(Error::bad_request("`name` must not be empty"));
        }
        publish_json("events.greeted", &serde_json::json!({ "name": name }))?;
        Reply::json(&Greeting {
            message: format!("{greeting}, {name}!"),
        })
    })
}

berth_sdk::export!(routes);
