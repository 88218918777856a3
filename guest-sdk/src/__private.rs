//! What [`export!`](crate::export) expands to. Not part of the API.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::{Config, Error, IntoRouter, Message, Reply, Router};

#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "sdk-backend",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_berth_backend",
        default_bindings_module: "berth_sdk::__private::bindings",
        runtime_path: "berth_sdk::__private::wit_bindgen::rt",
    });
}

pub use bindings::exports::berth::backend::batch_handler::Guest as BatchGuest;
pub use bindings::exports::berth::backend::batch_middleware::Guest as BatchMiddlewareGuest;
pub use bindings::exports::berth::backend::handler::Guest;
use bindings::exports::berth::backend::middleware::Guard;
pub use bindings::exports::berth::backend::middleware::{Guest as MiddlewareGuest, Verdict as WitVerdict};
pub use bindings::exports::berth::backend::routes::{Guest as RoutesGuest, Route, RouteKind};
pub use wit_bindgen;

thread_local! {
    /// The instance's router, built by `init`. A component instance is
    /// single-threaded, so a thread-local is the instance's global.
    static ROUTER: RefCell<Option<Rc<Router>>> = const { RefCell::new(None) };
    /// The message a frame's messages are copied into, kept between calls:
    /// its strings keep their capacity, so once an instance has seen a
    /// message as large, handing a handler the next one allocates nothing.
    static SCRATCH: Cell<Option<Message>> = const { Cell::new(None) };
}

/// Runs `f` on the instance's scratch message.
fn with_scratch<T>(f: impl FnOnce(&mut Message) -> T) -> T {
    let mut msg = SCRATCH
        .take()
        .unwrap_or_else(|| Message::new(String::new(), Vec::new()));
    let out = f(&mut msg);
    // A rare large body's buffer is not held on to for the next message.
    if msg.body.capacity() <= SCRATCH_BODY_BYTES {
        SCRATCH.set(Some(msg));
    }
    out
}

/// Most bytes of body buffer the scratch message keeps between calls.
const SCRATCH_BODY_BYTES: usize = 64 << 10;

/// Parses the config, builds the router and keeps it for this instance.
pub fn init<R: IntoRouter>(config: &str, routes: impl FnOnce(&Config) -> R) -> Result<(), Error> {
    let config = Config::parse(config)?;
    let router = routes(&config).into_router()?;
    router.validate()?;
    ROUTER.with(|r| *r.borrow_mut() = Some(Rc::new(router)));
    Ok(())
}

fn router() -> Result<Rc<Router>, Error> {
    ROUTER
        .with(|r| r.borrow().clone())
        .ok_or_else(|| Error::internal("the host called a handler before init"))
}

/// The instance's routes, requests first, each kind in the order tried;
/// none before `init`.
pub fn routes() -> Vec<Route> {
    let Ok(router) = router() else { return Vec::new() };
    let requests = router.request_patterns().map(|p| Route {
        pattern: p.to_owned(),
        kind: RouteKind::Request,
    });
    let events = router.event_patterns().map(|p| Route {
        pattern: p.to_owned(),
        kind: RouteKind::Event,
    });
    requests.chain(events).collect()
}

/// Dispatches a request to its route.
pub fn handle_request(msg: Message) -> Result<Reply, Error> {
    router()?.handle_request(&msg)
}

/// Asks the router's middleware.
pub fn handle_middleware(msg: Message) -> Result<WitVerdict, Error> {
    router()?.handle_middleware(&msg).map(|v| v.0)
}

/// Dispatches an event to its route.
pub fn handle_event(msg: Message) -> Result<(), Error> {
    router()?.handle_event(&msg)
}

/// Dispatches each message of a batch to its route, as if each had come
/// in a call of its own: routes are independent, so batching is the
/// host's choice and invisible to them. `frame` and the answer are in the
/// layout of `berth-frames`.
///
/// A frame that does not parse is answered with no outcomes at all: the
/// host takes a batch whose outcomes do not match its messages as failed
/// and runs each message again in a call of its own.
pub fn handle_batch(frame: Vec<u8>) -> Vec<u8> {
    let router = router();
    // Most answers are about as long as their messages (an echo exactly).
    let mut out = berth_frames::Writer::outcomes(frame.len());
    let read = each_message(&frame, &mut |msg| {
        let outcome = router
            .as_ref()
            .map_err(Error::clone)
            .and_then(|router| match msg.reply_to {
                Some(_) => router.handle_request(msg).map(Some),
                None => router.handle_event(msg).map(|()| None),
            });
        match outcome {
            Ok(Some(reply)) => out.reply(&reply.body, reply.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
            Ok(None) => out.done(),
            Err(e) => write_error(&mut out, &e),
        }
    });
    match read {
        true => out.finish(),
        false => berth_frames::Writer::outcomes(0).finish(),
    }
}

/// Asks the router's middleware about each message of a batch, one
/// verdict each in the `berth-frames` verdicts layout. A frame that does
/// not parse is answered with no verdicts, so the host asks again through
/// the typed `middleware.handle`.
pub fn handle_middleware_batch(frame: Vec<u8>) -> Vec<u8> {
    let router = router();
    let mut out = berth_frames::Writer::verdicts(64);
    let read = each_message(&frame, &mut |msg| {
        let verdict = router
            .as_ref()
            .map_err(Error::clone)
            .and_then(|router| router.handle_middleware(msg));
        match verdict.map(|v| v.0) {
            Ok(WitVerdict::Pass(pass)) => out.pass(
                pass.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
                pass.mark.map(|g| match g {
                    Guard::Session => berth_frames::Guard::Session,
                    Guard::Admin => berth_frames::Guard::Admin,
                }),
            ),
            Ok(WitVerdict::Respond(reply)) => {
                out.reply(&reply.body, reply.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))
            }
            Err(e) => write_error(&mut out, &e),
        }
    });
    match read {
        true => out.finish(),
        false => berth_frames::Writer::verdicts(0).finish(),
    }
}

/// Copies each message of a batch frame into the instance's scratch
/// message and hands it to `each`; `false` if the frame does not parse.
///
/// The one place a guest reads a batch, whichever export it came to: LLVM
/// inlines a function with a single call site whatever its size, and
/// with the reader and the copy called from two loops (batches and
/// middleware) the batch path ran ~170 more instructions per message
/// (callgrind). The per-message closure is one indirect call.
fn each_message(frame: &[u8], each: &mut dyn FnMut(&Message)) -> bool {
    let Ok(mut batch) = berth_frames::Reader::batch(frame) else {
        return false;
    };
    with_scratch(|msg| {
        while let Some(message) = batch.message() {
            let Ok(m) = message else { return false };
            refill(msg, &m);
            each(msg);
        }
        true
    })
}

/// Writes a handler's or a middleware's error into an answer frame.
fn write_error(out: &mut berth_frames::Writer, e: &Error) {
    out.error(&berth_frames::Error {
        kind: e.kind as u8,
        code: e.code,
        name: &e.name,
        message: &e.message,
        data: e.data.as_deref(),
        retry: matches!(e.disposition, crate::Disposition::Retry),
    });
}

/// Makes `msg` a copy of `m`, reusing the buffers it already has.
fn refill(msg: &mut Message, m: &berth_frames::Message<'_>) {
    fn set(buf: &mut String, text: &str) {
        buf.clear();
        buf.push_str(text);
    }
    fn set_option(slot: &mut Option<String>, text: Option<&str>) {
        match (slot.as_mut(), text) {
            (Some(buf), Some(text)) => set(buf, text),
            (None, Some(text)) => *slot = Some(text.to_owned()),
            (_, None) => *slot = None,
        }
    }
    set(&mut msg.subject, m.subject);
    msg.body.clear();
    msg.body.extend_from_slice(m.body);
    msg.headers.truncate(m.headers.len());
    for (i, &(name, value)) in m.headers.iter().enumerate() {
        match msg.headers.get_mut(i) {
            Some((n, v)) => {
                set(n, name);
                set(v, value);
            }
            None => msg.headers.push((name.to_owned(), value.to_owned())),
        }
    }
    set_option(&mut msg.reply_to, m.reply_to);
    set_option(&mut msg.correlation_id, m.correlation_id);
}
