//! Hostile clients of the `[gateway]`, as raw WebSocket peers: frames
//! that are not the protocol's, a frame over `max_frame_kb`, too many
//! requests in flight, a client that never reads, one that never answers
//! a ping, too many connections and bad node ids. Each gets an `error`
//! frame or its own connection closed with a reason; the host and every
//! other connection go on. And a client slow to speak after the handshake
//! (the npm client that lost its `init`) is sent `init` again.

use std::time::Duration;

use berth::control::Running;
use berth_tests::swarm::{self, Socket, closed, frame, next};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn manifest_text(gateway: &str) -> String {
    format!(
        r#"
[host]
name = "hostile"

[gateway]
listen = "127.0.0.1:0"
{gateway}

[keyvalue.nodes]

[[components]]
name = "node"
wasm = "{{swarm_node}}"
subscribe = ["swarm.client.>", "swarm.node.*"]
gateway = true
keyvalue = ["nodes"]
max_concurrency = 8
timeout_ms = 5000
"#
    )
}

async fn run(gateway: &str) -> (Running, tempfile::TempDir) {
    let (manifest, dir) = berth_tests::manifest(&manifest_text(gateway)).expect("manifest");
    (Running::start(&manifest).await.expect("host starts"), dir)
}

fn base(running: &Running) -> String {
    format!("ws://{}", running.gateway().expect("gateway").local_addr())
}

/// Connects as `node` and reads the `init` frame.
async fn connect(running: &Running, node: &str) -> Socket {
    swarm::connect(&format!("{}/{node}", base(running))).await
}

async fn echo_works(socket: &mut Socket, id: &str) {
    swarm::send(socket, "echo", json!([id]), id).await;
    let answer = next(socket).await;
    assert_eq!(
        answer,
        json!({ "type": "response", "correlationId": id, "result": [id] })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn frames_that_are_not_the_protocol_get_error_frames_and_the_connection_stays() {
    let (running, _dir) = run("ping_interval_ms = 60000").await;
    let mut socket = connect(&running, "mallory").await;
    let cases: [(Ws, &str, Value); 6] = [
        (Ws::text("not json"), "not JSON", Value::Null),
        (Ws::text("[1, 2]"), "not a JSON object", Value::Null),
        (Ws::binary(vec![0xff, 0xfe, 0x00]), "not JSON", Value::Null),
        (
            Ws::text(r#"{"type":"teleport","correlationId":"t1"}"#),
            "unknown frame type `teleport`",
            json!("t1"),
        ),
        (
            Ws::text(r#"{"type":"request","name":"echo"}"#),
            "needs a `correlationId`",
            Value::Null,
        ),
        (
            Ws::text(r#"{"type":"request","name":7,"correlationId":"n"}"#),
            "string `name`",
            json!("n"),
        ),
    ];
    for (frame, says, correlation) in cases {
        socket.send(frame).await.expect("send");
        let error = next(&mut socket).await;
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["errorType"], "protocol", "{error}");
        assert_eq!(error["correlationId"], correlation, "{error}");
        assert!(
            error["message"].as_str().is_some_and(|m| m.contains(says)),
            "{says}: {error}"
        );
    }
    // A binary frame with a good request is taken like a text one.
    let request = json!({ "type": "request", "name": "echo", "args": [1], "correlationId": "b" });
    socket
        .send(Ws::binary(request.to_string().into_bytes()))
        .await
        .expect("send");
    assert_eq!(next(&mut socket).await["result"], json!([1]));
    echo_works(&mut socket, "still-here").await;
    let status = running.gateway().expect("gateway").status();
    assert_eq!(status["errors"]["bad_frame"], 6, "{status}");
    running.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frame_too_large_closes_only_its_connection() {
    let (running, _dir) = run("ping_interval_ms = 60000\nmax_frame_kb = 1").await;
    let mut bystander = connect(&running, "bystander").await;
    let mut big = connect(&running, "big").await;
    let huge = json!({ "type": "request", "name": "echo", "args": ["x".repeat(4096)], "correlationId": "h" });
    let _ = big.send(Ws::text(huge.to_string())).await;
    assert_eq!(closed(&mut big).await, Some(CloseCode::Size));
    echo_works(&mut bystander, "unharmed").await;
    assert_eq!(running.gateway().expect("gateway").status()["errors"]["too_large"], 1);
    running.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_requests_in_flight_are_refused_at_once() {
    let (running, _dir) =
        run("ping_interval_ms = 60000\nmax_in_flight_per_client = 2\nrequest_timeout_ms = 3000").await;
    let mut socket = connect(&running, "greedy").await;
    for id in ["s1", "s2", "s3"] {
        let spin = json!({ "type": "request", "name": "spin", "args": [400], "correlationId": id });
        socket.send(Ws::text(spin.to_string())).await.expect("send");
    }
    // The third is refused before the first two are done.
    let first = next(&mut socket).await;
    assert_eq!(
        (&first["type"], &first["correlationId"]),
        (&json!("error"), &json!("s3")),
        "{first}"
    );
    assert!(
        first["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_in_flight_per_client (2)")),
        "{first}"
    );
    let mut done: Vec<Value> = vec![
        next(&mut socket).await["correlationId"].clone(),
        next(&mut socket).await["correlationId"].clone(),
    ];
    done.sort_by_key(|v| v.to_string());
    assert_eq!(done, vec![json!("s1"), json!("s2")]);
    echo_works(&mut socket, "room-again").await;
    running.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_reads_is_closed_and_the_host_goes_on() {
    let (running, _dir) = run("ping_interval_ms = 60000\nsend_buffer = 4\nmax_frame_kb = 64").await;
    let mut bystander = connect(&running, "bystander").await;
    let (mut sink, _never_read) = connect(&running, "sloth").await.split();
    let gateway = running.gateway().expect("gateway").clone();
    let args = "y".repeat(60 * 1024);
    // Answers pile up in the socket's buffers, then in the host's queue;
    // bounded: at most 4,000 requests (240 MB of answers).
    for i in 0..4000 {
        if gateway.status()["errors"]["slow_client"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        let request = json!({ "type": "request", "name": "echo", "args": [&args], "correlationId": i });
        if sink.send(Ws::text(request.to_string())).await.is_err() {
            break;
        }
    }
    let waited = std::time::Instant::now();
    while gateway.status()["errors"]["slow_client"] != 1 {
        assert!(waited.elapsed() < Duration::from_secs(10), "{}", gateway.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    echo_works(&mut bystander, "unharmed").await;
    running.stop().await.expect("stops");
}

/// amqp-swarm's npm client loses an `init` that comes in the same read as
/// the handshake's response, and reconnects after a second without one.
#[tokio::test(flavor = "multi_thread")]
async fn init_is_sent_again_until_the_client_speaks() {
    let (running, _dir) = run("").await;
    let mut socket = connect(&running, "slow").await;
    // Silent after the first `init`: it comes again, within a second.
    let again = tokio::time::timeout(Duration::from_secs(1), frame(&mut socket))
        .await
        .expect("init again within a second");
    assert_eq!(again, json!({ "type": "init" }));
    // Once the client speaks, no more: the next frame is its answer, then
    // nothing for longer than the repeats would take.
    echo_works(&mut socket, "spoke").await;
    let quiet = tokio::time::timeout(Duration::from_millis(1000), frame(&mut socket)).await;
    assert!(quiet.is_err(), "a frame after the client spoke: {quiet:?}");
    running.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_does_not_answer_pings_is_closed() {
    let (running, _dir) = run("ping_interval_ms = 100").await;
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{}/mute", base(&running)))
        .await
        .expect("connects");
    // Reads every frame, answers none: a `close` comes, then the close frame.
    let mut saw_close = false;
    let ended = async {
        while let Some(Ok(frame)) = socket.next().await {
            match frame {
                Ws::Text(text) if text.contains(r#""type":"close""#) => saw_close = true,
                Ws::Close(frame) => return frame.map(|f| f.reason.to_string()),
                _ => {}
            }
        }
        None
    };
    let reason = tokio::time::timeout(Duration::from_secs(10), ended)
        .await
        .expect("closed in time");
    assert!(saw_close, "the client is told to stay closed");
    assert!(reason.is_some_and(|r| r.contains("no pong")));
    assert_eq!(running.gateway().expect("gateway").status()["errors"]["no_pong"], 1);
    running.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn full_gateways_and_bad_node_ids_are_refused_at_the_handshake() {
    let (running, _dir) = run("ping_interval_ms = 60000\nmax_connections = 2").await;
    let refused = |url: String| async move {
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
            other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
        }
    };
    assert_eq!(refused(format!("{}/a.b", base(&running))).await, 400);
    assert_eq!(refused(format!("{}/{}", base(&running), "n".repeat(200))).await, 400);
    let mut one = connect(&running, "one").await;
    let _two = connect(&running, "two").await;
    assert_eq!(refused(format!("{}/three", base(&running))).await, 503);
    echo_works(&mut one, "one-still").await;
    running.stop().await.expect("stops");
}

/// A client that leaves while its request runs does not cut the call
/// short: the component finishes it (whatever it does on the way is
/// done whole) and the answer is dropped.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_mid_request_does_not_cut_the_call_short() {
    let (running, _dir) = run("ping_interval_ms = 60000").await;
    let node = || running.app().route("node").expect("node").stats.snapshot();
    let before = node();
    let mut socket = connect(&running, "leaver").await;
    swarm::send(&mut socket, "spin", json!([300]), "s1").await;
    let started = tokio::time::timeout(Duration::from_secs(5), async {
        while node().in_flight == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    started.await.expect("the call starts");
    socket.close(None).await.expect("closes");
    drop(socket);
    let finished = tokio::time::timeout(Duration::from_secs(10), async {
        while node().requests == before.requests || node().in_flight != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    finished.await.expect("the call finishes after its client left");
    let after = node();
    assert_eq!((after.requests - before.requests, after.errors - before.errors), (1, 0));
}
