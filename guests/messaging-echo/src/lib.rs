//! A component of the WASI messaging proposal (`wasi:messaging@0.2.0-draft`,
//! world `messaging-request-reply`), written against its WIT alone, that
//! keeps the part of Berth's conformance contract its world can express
//! (docs/conformance.md): on `P.in.<name>`, by the last token,
//!
//! - `echo`: the data back, with its content type and metadata;
//! - `publish`: the data to `P.out.published` with metadata
//!   `conformance: published`, then an empty reply;
//! - `call`: the data as a request to `P.upstream`, its answer back;
//! - `forbidden`: a send to `P.secret` (outside its grants), whose refusal
//!   it returns;
//! - `event`: the data to `P.out.event`;
//! - `elsewhere`: a client of `kafka`, which its host does not have;
//! - `fail`: an error.

wit_bindgen::generate!({ world: "echo", path: "wit", generate_all });

use exports::wasi::messaging::incoming_handler::Guest;
use wasi::messaging::producer::send;
use wasi::messaging::request_reply::{RequestOptions, reply, request};
use wasi::messaging::types::{Client, Error, Message};

struct Echo;

impl Guest for Echo {
    fn handle(message: Message) -> Result<(), Error> {
        let topic = message.topic().unwrap_or_default();
        let prefix = topic.split('.').next().unwrap_or_default().to_owned();
        let action = topic.rsplit('.').next().unwrap_or_default();
        let answer = match action {
            "echo" => {
                let answer = Message::new(&message.data());
                if let Some(ct) = message.content_type() {
                    answer.set_content_type(&ct);
                }
                answer.set_metadata(&message.metadata().unwrap_or_default());
                answer
            }
            "publish" => {
                let out = Message::new(&message.data());
                out.add_metadata("conformance", "published");
                send(&Client::connect("default")?, &format!("{prefix}.out.published"), out)?;
                Message::new(&[])
            }
            "call" => {
                let options = RequestOptions::new();
                options.set_timeout_ms(1000);
                let answers = request(&Client::connect("default")?, &format!("{prefix}.upstream"), &message, Some(options))?;
                Message::new(&answers.first().map(Message::data).unwrap_or_default())
            }
            "forbidden" => {
                send(&Client::connect("default")?, &format!("{prefix}.secret"), Message::new(&[]))?;
                Message::new(&[])
            }
            "event" => {
                return send(&Client::connect("default")?, &format!("{prefix}.out.event"), Message::new(&message.data()));
            }
            "elsewhere" => return Client::connect("kafka").map(drop),
            "fail" => return Err(Error::Other(format!("failing on purpose on {topic}"))),
            _ => return Err(Error::Other(format!("no route for {topic}"))),
        };
        reply(&message, answer)
    }
}

export!(Echo);
