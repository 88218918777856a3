//! `{{name}}.hello` answers `{"name": "Ada"}` with `{"message": "Hello, Ada!"}`;
//! `{{name}}.note` passes each event on to `audit.{{name}}`.

use berth_sdk::{Config, Error, Message, Reply, Router, publish};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Hello {
    name: String,
}

#[derive(Serialize)]
struct Greeting {
    message: String,
}

fn routes(config: &Config) -> Router {
    let greeting = config.get_str("greeting").unwrap_or("Hello").to_owned();
    Router::new()
        .request("{{name}}.hello", move |msg: &Message| {
            let Hello { name } = msg.json()?; // bad JSON: 400
            if name.is_empty() {
                return Err(Error::bad_request("`name` must not be empty"));
            }
            Reply::json(&Greeting {
                message: format!("{greeting}, {name}!"),
            })
        })
        .event("{{name}}.note", |msg: &Message| publish("audit.{{name}}", msg.body.as_slice()))
}

berth_sdk::export!(routes);
