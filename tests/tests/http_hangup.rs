//! An HTTP client that hangs up while its routed request runs: the call
//! runs to its end all the same (a backend is never left half done by a
//! client going away), nothing stays counted in flight, and the next
//! client is served.

use std::time::Duration;

use berth_tests::start;
use tokio::io::AsyncWriteExt;

const MANIFEST: &str = r#"
[host]
name = "hangup"
http = "127.0.0.1:0"

[[http.routes]]
path = "/sleep"
methods = ["POST"]
subject = "probe.sleep"

[[components]]
name = "probe"
wasm = "{probe}"
subscribe = ["probe.sleep"]
timeout_ms = 5000
"#;

/// The `berth_http_requests_in_flight` sample of route `/sleep`.
async fn route_in_flight(base: &str) -> String {
    let metrics = berth_tests::scrape_metrics(base).await;
    metrics
        .lines()
        .find(|l| l.starts_with("berth_http_requests_in_flight{") && l.contains(r#"route="/sleep""#))
        .map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_mid_request_does_not_cut_the_call_short() {
    let t = start(MANIFEST).await.expect("host starts");
    let (base, _stop) = t.serve_http("127.0.0.1:0").await;
    let probe = || t.host.route("probe").expect("probe").stats.snapshot();
    let before = probe();

    let address = base.trim_start_matches("http://");
    let mut client = tokio::net::TcpStream::connect(address).await.expect("connects");
    let request = "POST /sleep HTTP/1.1\r\nhost: berth\r\ncontent-length: 3\r\n\r\n300";
    client.write_all(request.as_bytes()).await.expect("sends");
    let started = tokio::time::timeout(Duration::from_secs(5), async {
        while probe().in_flight == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    started.await.expect("the call starts");
    assert_eq!(route_in_flight(&base).await, "1");
    drop(client);

    let settled = tokio::time::timeout(Duration::from_secs(10), async {
        while probe().in_flight != 0 || route_in_flight(&base).await != "0" {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    settled
        .await
        .expect("the hung-up request is no longer counted in flight");
    let after = probe();
    assert_eq!(
        (after.requests - before.requests, after.errors - before.errors),
        (1, 0),
        "the call ran to its end, not cut where the client left it"
    );
    let answer = reqwest::Client::new()
        .post(format!("{base}/sleep"))
        .body("1")
        .send()
        .await
        .expect("the next client is served");
    assert_eq!(answer.status(), 200);
}
