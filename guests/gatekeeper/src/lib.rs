//! A middleware component: signs callers in by their bearer token, sets
//! headers, and can answer or refuse by itself.
//!
//! Config:
//! - `users`: token → user name; a known token passes with `x-user` and
//!   `x-role` set and the caller marked signed in (`admins` marked admin),
//!   an unknown one is refused (401). Without users, tokens are not
//!   looked at: the link only sets headers.
//! - `admins`: the user names that are administrators.
//! - `required`: refuse (401) a message without a token; otherwise it
//!   passes unmarked, and a route's guard decides.
//! - `set`: headers set on every message passed on.
//!
//! A message with header `x-answer` is answered here with its value, so
//! tests see a link answer for the handler.

use std::collections::BTreeMap;

use berth_sdk::{Config, Error, Message, Reply, Router, Verdict};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Settings {
    users: BTreeMap<String, String>,
    admins: Vec<String>,
    required: bool,
    set: BTreeMap<String, String>,
}

fn routes(config: &Config) -> Result<Router, Error> {
    let settings: Settings = config.parse_as()?;
    Ok(Router::new().middleware(move |msg: &Message| decide(&settings, msg)))
}

fn decide(settings: &Settings, msg: &Message) -> Result<Verdict, Error> {
    if let Some(answer) = msg.header("x-answer") {
        return Ok(Verdict::respond(Reply::text(format!("answered by the middleware: {answer}"))));
    }
    let mut verdict = Verdict::pass();
    for (name, value) in &settings.set {
        verdict = verdict.header(name, value);
    }
    if settings.users.is_empty() {
        return Ok(verdict);
    }
    let token = msg
        .header("authorization")
        .map(|h| h.strip_prefix("Bearer ").unwrap_or(h).trim());
    match token {
        None if settings.required => Err(Error::unauthorized("a bearer token is required")),
        None => Ok(verdict),
        Some(token) => match settings.users.get(token) {
            None => Err(Error::unauthorized("unknown token")),
            Some(user) if settings.admins.contains(user) => {
                Ok(verdict.header("x-user", user).header("x-role", "admin").admin())
            }
            Some(user) => Ok(verdict.header("x-user", user).header("x-role", "user").session()),
        },
    }
}

berth_sdk::export!(routes);
