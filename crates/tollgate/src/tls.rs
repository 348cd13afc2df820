//! TLS on the listeners (`[gateway.tls]`, `[console.tls]`): a PEM certificate chain and its
//! private key, read once at start. A missing, unreadable or mismatched file stops `serve` with
//! a message naming the setting; tollgate never falls back to plain HTTP for a listener
//! configured with TLS.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::bail;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// `[gateway.tls]` / `[console.tls]`: the certificate chain and key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain (leaf first), PEM.
    pub cert: PathBuf,
    /// The certificate's private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key: PathBuf,
}

/// The server configuration for a listener; `section` (`gateway.tls`) names the setting in
/// errors. HTTP/2 and HTTP/1.1 are offered by ALPN.
pub fn server_config(files: &TlsFiles, section: &str) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let cert_path = &files.cert;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(Iterator::collect)
        .map_err(|e| {
            anyhow::anyhow!("{section}.cert {}: {}", cert_path.display(), pem_error(&e))
        })?;
    if certs.is_empty() {
        bail!(
            "{section}.cert {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
            cert_path.display()
        );
    }
    let key_path = &files.key;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| anyhow::anyhow!("{section}.key {}: {}", key_path.display(), pem_error(&e)))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("{section}: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            anyhow::anyhow!(
                "{section}: the key {} does not fit the certificate {} or cannot be used: {e}",
                key_path.display(),
                cert_path.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn pem_error(error: &rustls::pki_types::pem::Error) -> String {
    match error {
        rustls::pki_types::pem::Error::Io(e) => format!("cannot be read: {e}"),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM private key in the file".to_owned(),
        other => format!("not valid PEM: {other}"),
    }
}
