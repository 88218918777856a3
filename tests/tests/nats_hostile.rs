//! Hostile frames through a NATS server: messages whose subject, reply or
//! header block a client cannot read, published over a raw TCP socket to
//! a private nats-server, each followed by an ordinary request on the same
//! socket. The host drops and counts each unreadable message and keeps
//! its connection: every request after one is answered, and the client
//! never reconnects.

use std::time::{Duration, Instant};

use berth_tests::nats_server::NatsServer;
use berth_tests::start;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// An `HPUB h.bad` frame whose header block is `block` (then `\r\n`).
fn hpub(block: &[u8]) -> Vec<u8> {
    let mut headers = block.to_vec();
    headers.extend_from_slice(b"\r\n");
    let mut frame = format!("HPUB h.bad {} {}\r\n", headers.len(), headers.len() + 2).into_bytes();
    frame.extend_from_slice(&headers);
    frame.extend_from_slice(b"hi\r\n");
    frame
}

/// Each hostile frame, and whether a client can still read it (then it is
/// handled as a message like any other, not dropped).
fn frames() -> Vec<(&'static str, Vec<u8>, bool)> {
    vec![
        ("a subject that is not UTF-8", b"PUB h.\xff 2\r\nhi\r\n".to_vec(), false),
        (
            "a reply that is not UTF-8",
            b"PUB h.bad _INBOX.\xff 2\r\nhi\r\n".to_vec(),
            false,
        ),
        ("a header line without a colon", hpub(b"NATS/1.0\r\nnocolon\r\n"), false),
        (
            "a header value that is not UTF-8",
            hpub(b"NATS/1.0\r\na: \xff\xfe\r\n"),
            false,
        ),
        ("a header name with a space", hpub(b"NATS/1.0\r\na b: v\r\n"), false),
        (
            "a header name that is not ASCII",
            hpub("NATS/1.0\r\né: v\r\n".as_bytes()),
            false,
        ),
        ("a version line that is not NATS/1.0", hpub(b"XXXX/1.0\r\n"), false),
        ("a status that is not a number", hpub(b"NATS/1.0 abc\r\n"), false),
        (
            "a carriage return inside a header value",
            hpub(b"NATS/1.0\r\na: x\ry\r\n"),
            true,
        ),
    ]
}

/// A raw client: `CONNECT`, and a subscription to its own inbox.
async fn raw_client(port: u16) -> BufReader<TcpStream> {
    let mut stream = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.expect("connect"));
    let mut info = String::new();
    stream.read_line(&mut info).await.expect("INFO");
    assert!(info.starts_with("INFO"), "{info}");
    stream
        .get_mut()
        .write_all(b"CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB _INBOX.raw 1\r\n")
        .await
        .expect("write");
    stream
}

/// Sends a request for `h.ok` on the raw socket and waits for its echo,
/// answering the server's pings meanwhile.
async fn request(stream: &mut BufReader<TcpStream>, body: &str) {
    let frame = format!("PUB h.ok _INBOX.raw {}\r\n{body}\r\n", body.len());
    stream.get_mut().write_all(frame.as_bytes()).await.expect("write");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut line = String::new();
        let read = tokio::time::timeout_at(deadline.into(), stream.read_line(&mut line)).await;
        let read = read.unwrap_or_else(|_| panic!("no answer to `{body}` within 5 s: the host lost its connection"));
        assert!(read.expect("read") > 0, "the server closed the raw client");
        if line.starts_with("PING") {
            stream.get_mut().write_all(b"PONG\r\n").await.expect("pong");
        } else if let Some(args) = line.strip_prefix("MSG _INBOX.raw 1 ") {
            let len: usize = args.trim().parse().expect("length");
            let mut payload = vec![0; len + 2];
            stream.read_exact(&mut payload).await.expect("payload");
            assert_eq!(&payload[..len], body.as_bytes());
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_messages_are_dropped_and_counted_and_the_connection_stays() {
    let server = NatsServer::start(&[]);
    let t = start(&format!(
        "[host]\ntransport = \"nats\"\n[transports.nats]\nurl = \"{}\"\n\
         [[components]]\nname = \"echo\"\nwasm = \"{{echo}}\"\nsubscribe = [\"h.>\"]\n",
        server.url()
    ))
    .await
    .expect("start");
    let mut raw = raw_client(server.port()).await;
    request(&mut raw, "before").await;

    let frames = frames();
    for (what, frame, _) in &frames {
        raw.get_mut().write_all(frame).await.expect("write");
        request(&mut raw, &format!("after {what}").replace(' ', "_")).await;
    }

    let status = || t.host.app().transport_status()[0].clone();
    let unreadable = frames.iter().filter(|(_, _, readable)| !readable).count() as u64;
    // The client reports a drop through its event channel, a moment after
    // it read the message: wait for the count, bounded.
    let deadline = Instant::now() + Duration::from_secs(5);
    while status().malformed < unreadable && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    assert_eq!(status().malformed, unreadable, "each unreadable message counted once");
    assert_eq!(status().reconnects, 0, "no message cost the connection");
    let events = t.host.route("echo").expect("route").stats.snapshot().requests;
    assert!(events > frames.len() as u64, "every request was answered ({events})");
}
