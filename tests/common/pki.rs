//! A private CA and a server certificate made at test time with rcgen, as PEM files in a
//! home: what `serve --tls-cert/--tls-key` and clients' `--ca-file` take.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use super::process::Home;

/// PEM files of a private CA and of a server certificate it issued.
pub struct Pki {
    /// The CA's certificate (for `--ca-file`).
    pub ca: PathBuf,
    /// The server's certificate and key (for `--tls-cert`, `--tls-key`).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A key of another certificate (for the mismatch test).
    pub other_key: PathBuf,
}

/// A CA and a certificate it issued for `host` (a name or an IP address), written into
/// `home`.
pub fn make_pki(home: &Home, host: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec![host.to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let pki = Pki {
        ca: home.path("ca.pem"),
        cert: home.path("server.pem"),
        key: home.path("server.key"),
        other_key: home.path("other.key"),
    };
    std::fs::write(&pki.ca, ca.pem()).unwrap();
    std::fs::write(&pki.cert, server.pem()).unwrap();
    std::fs::write(&pki.key, server_key.serialize_pem()).unwrap();
    std::fs::write(&pki.other_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    pki
}
