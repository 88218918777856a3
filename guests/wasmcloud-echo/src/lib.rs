//! A wasmCloud messaging component, written as wasmCloud's echo-messaging
//! example is (it answers a request by publishing to its reply-to), that
//! keeps the part of Berth's conformance contract its world can express
//! (docs/conformance.md): on `P.in.<name>`, by the last token,
//!
//! - `echo`: the body back;
//! - `config`: its config's `greeting` (through `wasi:config`);
//! - `publish`: the body to `P.out.published`, then an empty reply;
//! - `call`: the body as a request to `P.upstream`, its answer back;
//! - `forbidden`: a publish to `P.secret` (outside its grants), whose
//!   refusal it returns;
//! - `event`: the body to `P.out.event`;
//! - `fail`: an error;
//! - `panic`: a panic (a trap, to the host).

wit_bindgen::generate!({ world: "echo", path: "wit", generate_all });

use wasi::config::store;
use wasi::logging::logging::{Level, log};
use wasmcloud::messaging::consumer;
use wasmcloud::messaging::types::BrokerMessage;

struct Echo;

fn publish(subject: String, body: Vec<u8>) -> Result<(), String> {
    consumer::publish(&BrokerMessage {
        subject,
        body,
        reply_to: None,
    })
}

impl exports::wasmcloud::messaging::handler::Guest for Echo {
    fn handle_message(msg: BrokerMessage) -> Result<(), String> {
        let prefix = msg.subject.split('.').next().unwrap_or_default().to_owned();
        let action = msg.subject.rsplit('.').next().unwrap_or_default();
        let answer = match action {
            "echo" => msg.body,
            "config" => store::get("greeting").ok().flatten().unwrap_or_default().into_bytes(),
            "publish" => {
                publish(format!("{prefix}.out.published"), msg.body)?;
                Vec::new()
            }
            "call" => consumer::request(&format!("{prefix}.upstream"), &msg.body, 1000)?.body,
            "forbidden" => {
                publish(format!("{prefix}.secret"), msg.body)?;
                Vec::new()
            }
            "event" => return publish(format!("{prefix}.out.event"), msg.body),
            "fail" => {
                log(Level::Warn, "echo", &format!("failing on purpose on {}", msg.subject));
                return Err(format!("failing on purpose on {}", msg.subject));
            }
            "panic" => panic!("panicking on purpose on {}", msg.subject),
            _ => return Err(format!("no route for {}", msg.subject)),
        };
        match msg.reply_to {
            Some(to) => publish(to, answer),
            None => Ok(()),
        }
    }
}

export!(Echo);
