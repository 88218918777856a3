//! A component of the WASI messaging proposal (`wasi:messaging@0.2.0-draft`,
//! world `messaging-request-reply`), written against its WIT alone.
//!
//! By the last token of the topic:
//! - `echo`: replies with `wm: ` and the data, its content type and
//!   metadata kept, and `x-echo: 1` added;
//! - `call`: sends the data as a request to `greet.wm` and replies with
//!   the answer;
//! - `publish`: sends the data to the topic with `out` for its last
//!   token, then replies `published`;
//! - `elsewhere`: connects to a `kafka` client, which its host lacks;
//! - `fail`: returns an error.

wit_bindgen::generate!({ world: "echo", path: "wit", generate_all });

use exports::wasi::messaging::incoming_handler::Guest;
use wasi::messaging::request_reply::{RequestOptions, reply, request};
use wasi::messaging::types::{Client, Error, Message};

struct Echo;

impl Guest for Echo {
    fn handle(message: Message) -> Result<(), Error> {
        let topic = message.topic().unwrap_or_default();
        let (base, action) = topic.rsplit_once('.').unwrap_or(("", &topic));
        match action {
            "fail" => Err(Error::Other(format!("failing on purpose on {topic}"))),
            "elsewhere" => Client::connect("kafka").map(drop),
            "call" => {
                let client = Client::connect("default")?;
                let options = RequestOptions::new();
                options.set_timeout_ms(1000);
                let answers = request(&client, "greet.wm", &message, Some(options))?;
                let answer = answers.first().map(Message::data).unwrap_or_default();
                reply(&message, Message::new(&answer))
            }
            "publish" => {
                let client = Client::connect("default")?;
                wasi::messaging::producer::send(&client, &format!("{base}.out"), Message::new(&message.data()))?;
                reply(&message, Message::new(b"published"))
            }
            _ => {
                let mut data = b"wm: ".to_vec();
                data.extend(message.data());
                let answer = Message::new(&data);
                if let Some(ct) = message.content_type() {
                    answer.set_content_type(&ct);
                }
                answer.set_metadata(&message.metadata().unwrap_or_default());
                answer.add_metadata("x-echo", "1");
                reply(&message, answer)
            }
        }
    }
}

export!(Echo);
