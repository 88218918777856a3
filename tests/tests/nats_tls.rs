//! NATS over TLS against private nats-servers started with certificates
//! made for the test: the CA that signed the server's certificate
//! connects, another CA fails the start with a clear error, and a server
//! that verifies its clients takes the certificate the manifest names.

use berth_tests::nats_server::NatsServer;
use berth_tests::start;
use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, SanType};
use tempfile::TempDir;

/// A certificate and its key.
struct Pair {
    cert: Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Pair {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed");
    Pair { cert, key }
}

fn signed_by(issuer: &Pair) -> Pair {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &issuer.cert, &issuer.key).expect("signed");
    Pair { cert, key }
}

/// Writes `pair` as `<name>.pem` and `<name>-key.pem`; returns both paths.
fn write(dir: &TempDir, name: &str, pair: &Pair) -> (String, String) {
    let cert = dir.path().join(format!("{name}.pem"));
    let key = dir.path().join(format!("{name}-key.pem"));
    std::fs::write(&cert, pair.cert.pem()).expect("write cert");
    std::fs::write(&key, pair.key.serialize_pem()).expect("write key");
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
