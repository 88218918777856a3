//! A wasmCloud messaging component, as wasmCloud's echo-messaging example
//! is written: it answers a request by publishing to its reply-to.
//!
//! - `*.echo`: publishes the body back to the reply address, after the
//!   `prefix` from its config (`wasi:config`);
//! - `*.call`: sends the body as a request to its config's `call_subject`
//!   and publishes that reply back;
//! - `*.publish`: publishes the body to its config's `publish_subject`,
//!   then answers `published`;
//! - `*.fail`: returns an error (`Err(string)`).

wit_bindgen::generate!({ world: "echo", path: "wit", generate_all });

use wasi::config::store;
use wasi::logging::logging::{Level, log};
use wasmcloud::messaging::consumer;
use wasmcloud::messaging::types::BrokerMessage;

struct Echo;

fn config(key: &str) -> String {
    store::get(key).ok().flatten().unwrap_or_default()
}

fn reply(to: &Option<String>, body: Vec<u8>) -> Result<(), String> {
    let Some(to) = to else { return Ok(()) };
    consumer::publish(&BrokerMessage {
        subject: to.clone(),
        body,
        reply_to: None,
    })
}

impl exports::wasmcloud::messaging::handler::Guest for Echo {
    fn handle_message(msg: BrokerMessage) -> Result<(), String> {
        log(Level::Info, "echo", &format!("message on {}", msg.subject));
        let action = msg.subject.rsplit('.').next().unwrap_or_default();
        match action {
            "fail" => Err(format!("failing on purpose on {}", msg.subject)),
            "call" => {
                let answer = consumer::request(&config("call_subject"), &msg.body, 1000)?;
                reply(&msg.reply_to, answer.body)
            }
            "publish" => {
                consumer::publish(&BrokerMessage {
                    subject: config("publish_subject"),
                    body: msg.body.clone(),
                    reply_to: None,
                })?;
                reply(&msg.reply_to, b"published".to_vec())
            }
            _ => {
                let mut body = config("prefix").into_bytes();
                body.extend(&msg.body);
                reply(&msg.reply_to, body)
            }
        }
    }
}

export!(Echo);
