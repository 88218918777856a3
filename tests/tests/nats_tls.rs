//! NATS over TLS against private nats-servers started with certificates
//! made for the test: the CA that signed the server's certificate
//! connects, another CA fails the start with a clear error, and a server
//! that verifies its clients takes the certificate the manifest names.

use berth_tests::certs::{ca, signed_by};
use berth_tests::nats_server::NatsServer;
use berth_tests::start;
use tempfile::TempDir;

/// Writes `pair` as `<name>.pem` and `<name>-key.pem`; returns both paths as text.
fn write(dir: &TempDir, name: &str, pair: &berth_tests::certs::Pair) -> (String, String) {
    let (cert, key) = berth_tests::certs::write(dir, name, pair);
    (cert.display().to_string(), key.display().to_string())
}

fn manifest(port: u16, tls: &str) -> String {
    format!(
        "[host]\ntransport = \"nats\"\n[transports.nats]\nurl = \"tls://127.0.0.1:{port}\"\n{tls}\n\
         [[components]]\nname = \"echo\"\nwasm = \"{{echo}}\"\nsubscribe = [\"echo.>\"]\n"
    )
}

#[tokio::test]
async fn the_ca_that_signed_the_server_connects_and_another_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let authority = ca("berth test CA");
    let (ca_file, _) = write(&dir, "ca", &authority);
    let (server_cert, server_key) = write(&dir, "server", &signed_by(&authority));
    let (other_ca, _) = write(&dir, "other-ca", &ca("someone else's CA"));
    let server = NatsServer::start(&["--tls", "--tlscert", &server_cert, "--tlskey", &server_key]);

    let t = start(&manifest(server.port(), &format!("tls_ca = \"{ca_file}\"")))
        .await
        .expect("the host connects over TLS");
    assert_eq!(t.ask("echo.x", "over TLS").await, "over TLS");

    let err = match start(&manifest(server.port(), &format!("tls_ca = \"{other_ca}\""))).await {
        Ok(_) => panic!("a server signed by another CA must be refused"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("cannot connect to NATS") && err.contains("TLS"), "{err}");
}

#[tokio::test]
async fn a_server_that_verifies_clients_takes_the_hosts_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let authority = ca("berth test CA");
    let (ca_file, _) = write(&dir, "ca", &authority);
    let (server_cert, server_key) = write(&dir, "server", &signed_by(&authority));
    let (client_cert, client_key) = write(&dir, "client", &signed_by(&authority));
    let server = NatsServer::start(&[
        "--tlsverify",
        "--tlscert",
        &server_cert,
        "--tlskey",
        &server_key,
        "--tlscacert",
        &ca_file,
    ]);

    let with = format!("tls_ca = \"{ca_file}\"\ntls_cert = \"{client_cert}\"\ntls_key = \"{client_key}\"");
    let t = start(&manifest(server.port(), &with))
        .await
        .expect("the host presents its certificate");
    assert_eq!(t.ask("echo.x", "mutual").await, "mutual");

    let without = start(&manifest(server.port(), &format!("tls_ca = \"{ca_file}\""))).await;
    assert!(
        without.is_err(),
        "a host without a certificate is refused by the server"
    );
}
