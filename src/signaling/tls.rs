//! TLS for the signaling connection (`wss://`): the server's certificate and key
//! (`serve --tls-cert/--tls-key`), and the roots a client trusts (the webpki roots plus
//! an optional private CA, `--ca-file`). rustls on the `ring` provider (FIELD-NOTES:
//! the default provider would pull aws-lc-rs).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The crypto provider of every TLS config here.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file (leaf first, then intermediates).
///
/// # Errors
/// The file cannot be read or holds no PEM certificate; the message names the file.
fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read certificates from {}", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

/// The server side of `wss://`: the certificate chain in `cert` and its private key in
/// `key` (both PEM; PKCS#8, PKCS#1 or SEC1 keys).
///
/// # Errors
/// Either file is unreadable or not PEM of the right kind, or the key does not belong
/// to the certificate; the message names the file at fault.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain = read_certificates(cert)?;
    let private_key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a PEM private key from {}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("the TLS provider supports no protocol version")?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .with_context(|| {
            format!(
                "the key in {} does not fit the certificate in {}",
                key.display(),
                cert.display()
            )
        })?;
    Ok(Arc::new(config))
}

/// The client side of `wss://`: the webpki roots (Mozilla's), plus every certificate of
/// `ca_file` (a private CA, `--ca-file`).
///
/// # Errors
/// `ca_file` is unreadable, holds no certificate, or one is not a valid CA certificate.
pub fn client_config(ca_file: Option<&Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        for cert in read_certificates(path)? {
            roots
                .add(cert)
                .with_context(|| format!("{} holds a bad CA certificate", path.display()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("the TLS provider supports no protocol version")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Whether a connection error is the server's certificate not being trusted (unknown
/// issuer, wrong name, expired): retrying will not help, a `--ca-file` might.
pub fn is_untrusted_certificate(error: &tokio_tungstenite::tungstenite::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    let Error::Io(io) = error else {
        return false;
    };
    io.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)))
}
