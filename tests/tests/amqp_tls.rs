//! AMQP over TLS (`amqps://`) against a private RabbitMQ node started
//! with certificates made for the test: the CA that signed the broker's
//! certificate connects (`tls_ca`), and a host that does not know that CA
//! fails the start with a clear error.

use berth_tests::certs::{ca, signed_by, write};
use berth_tests::rabbit_server::RabbitServer;
use berth_tests::start;

fn manifest(port: u16, tls_ca: Option<&std::path::Path>) -> String {
    let tls = tls_ca.map_or_else(String::new, |ca| format!("tls_ca = \"{}\"\n", ca.display()));
    format!(
        "[host]\ntransport = \"amqp\"\n[transports.amqp]\nurl = \"amqps://guest:guest@localhost:{port}/%2f\"\n\
         exchange = \"berth-tls\"\n{tls}\
         [[components]]\nname = \"echo\"\nwasm = \"{{echo}}\"\nsubscribe = [\"echo.>\"]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_with_the_brokers_ca_connects_and_without_it_fails_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let authority = ca("berth test CA");
    let (ca_file, _) = write(&dir, "ca", &authority);
    let (cert, key) = write(&dir, "broker", &signed_by(&authority));
    let rabbit = RabbitServer::start_tls(&ca_file, &cert, &key);

    let t = start(&manifest(rabbit.port, Some(&ca_file)))
        .await
        .expect("the host connects over TLS");
    assert_eq!(t.ask("echo.x", "over TLS").await, "over TLS");

    let err = match start(&manifest(rabbit.port, None)).await {
        Ok(_) => panic!("a broker signed by an unknown CA must be refused"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("cannot connect to AMQP"), "{err}");
}
