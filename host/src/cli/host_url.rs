//! Which host `berth status`, `request`, `publish`, `tail` and `swap` talk
//! to: `--url` (or `BERTH_URL`) when given, else the HTTP address of the
//! manifest in the current folder, else the address `berth new` writes.
//!
//! Without the manifest's address, a project whose host listens on another
//! port than 8080 would have `berth status` in its own folder report
//! whichever host holds 8080, under that host's names, with nothing to say
//! it is another project's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// Where a host listens when nothing says otherwise (`berth new`'s).
const DEFAULT: &str = "http://127.0.0.1:8080";

/// The manifest a command run in a project's folder reads.
const MANIFEST: &str = "berth.toml";

/// The base URL of the host to talk to.
pub fn resolve(given: Option<String>) -> String {
    given
        .or_else(|| from_manifest(Path::new(MANIFEST)))
        .unwrap_or_else(|| DEFAULT.to_owned())
}

/// `http://ADDR` for the manifest's `[host] http`, if it has one. Only
/// that key is read, so a manifest with a mistake elsewhere (one being
/// edited under `berth dev`, say) still names its host.
fn from_manifest(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: toml::Table = toml::from_str(&text).ok()?;
    let addr: SocketAddr = value.get("host")?.get("http")?.as_str()?.parse().ok()?;
    // Port 0 is a free port the host picked: nothing here can know which.
    if addr.port() == 0 {
        return None;
    }
    Some(format!("http://{}", reachable(addr)))
}

/// A listener on every address is reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> Option<String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(MANIFEST);
        std::fs::write(&path, text).expect("write");
        from_manifest(&path)
    }

    #[test]
    fn the_manifests_address_is_used_and_every_address_means_loopback() {
        let project = "[host]\nname = \"b\"\nhttp = \"127.0.0.1:8081\"\n[[components]]\nname = 3\n";
        assert_eq!(manifest(project).as_deref(), Some("http://127.0.0.1:8081"));
        assert_eq!(
            manifest("[host]\nhttp = \"0.0.0.0:9000\"\n").as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(
            manifest("[host]\nhttp = \"[::]:9000\"\n").as_deref(),
            Some("http://[::1]:9000")
        );
    }

    #[test]
    fn without_a_usable_address_the_default_holds() {
        for text in [
            "[host]\nname = \"no-http\"\n",
            "[host]\nhttp = \"127.0.0.1:0\"\n",
            "[host]\nhttp = \"not an address\"\n",
            "this is not toml [",
        ] {
            assert_eq!(manifest(text), None, "{text}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(from_manifest(&dir.path().join(MANIFEST)), None);
        assert_eq!(resolve(Some("http://h:1".into())), "http://h:1");
    }
}
