//! Certificates made on the fly for the TLS tests: a CA, and certificates
//! it signs for `localhost` and 127.0.0.1, written as PEM files.

use std::path::PathBuf;

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, SanType};
use tempfile::TempDir;

/// A certificate and its key.
pub struct Pair {
    cert: Certificate,
    key: KeyPair,
}

/// A self-signed CA named `name`.
pub fn ca(name: &str) -> Pair {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed");
    Pair { cert, key }
}

/// A certificate for `localhost` and 127.0.0.1, signed by `issuer`.
pub fn signed_by(issuer: &Pair) -> Pair {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &issuer.cert, &issuer.key).expect("signed");
    Pair { cert, key }
}

/// Writes `pair` as `<name>.pem` and `<name>-key.pem` in `dir`; returns
/// both paths.
pub fn write(dir: &TempDir, name: &str, pair: &Pair) -> (PathBuf, PathBuf) {
    let cert = dir.path().join(format!("{name}.pem"));
    let key = dir.path().join(format!("{name}-key.pem"));
    std::fs::write(&cert, pair.cert.pem()).expect("write cert");
    std::fs::write(&key, pair.key.serialize_pem()).expect("write key");
    (cert, key)
}
