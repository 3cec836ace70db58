//! MQTT connection options: mutual TLS with rustls (ring), keep-alive, persistent session.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ConnectionConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{option} {path}: cannot read the file: {source}")]
    Read {
        option: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{option} {path}: {problem}")]
    Content {
        option: &'static str,
        path: PathBuf,
        problem: String,
    },
    #[error("TLS set-up: {0}")]
    Rustls(#[from] rustls::Error),
}

fn read(option: &'static str, path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|source| TlsSetupError::Read {
        option,
        path: path.to_owned(),
        source,
    })
}

fn certificates(
    option: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = read(option, path)?;
    let content = |problem: String| TlsSetupError::Content {
        option,
        path: path.to_owned(),
        problem,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(content(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

/// The rustls client configuration: the root CA, and the device certificate and key.
pub fn tls_config(c: &ConnectionConfig) -> Result<rustls::ClientConfig, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates("--root-ca", &c.root_ca)? {
        roots.add(cert).map_err(|e| TlsSetupError::Content {
            option: "--root-ca",
            path: c.root_ca.clone(),
            problem: format!("not a usable CA certificate: {e}"),
        })?;
    }
    let chain = certificates("--cert", &c.cert)?;
    let key_pem = read("--key", &c.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsSetupError::Content {
        option: "--key",
        path: c.key.clone(),
        problem: format!("holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| TlsSetupError::Content {
            option: "--key",
            path: c.key.clone(),
            problem: format!("does not go with --cert {}: {e}", c.cert.display()),
        })?;
    if c.port == 443 {
        // AWS IoT serves MQTT on 443 only to clients that ask for this protocol.
        config.alpn_protocols = vec![b"x-amzn-mqtt-ca".to_vec()];
    }
    Ok(config)
}

/// 128 KB of payload plus the MQTT header and topic.
const AWS_MAX_PACKET: usize = 128 * 1024 + 1024;

pub fn options(
    c: &ConnectionConfig,
    persistent_session: bool,
) -> Result<MqttOptions, TlsSetupError> {
    let tls = tls_config(c)?;
    let mut options = MqttOptions::new(c.client_id.clone(), c.endpoint.clone(), c.port);
    options
        .set_keep_alive(c.keep_alive)
        // AWS IoT Core's message size limit (rumqttc's default is 10 KB).
        .set_max_packet_size(AWS_MAX_PACKET, AWS_MAX_PACKET)
        // A persistent session keeps the subscriptions and queues QoS 1 messages (a shadow delta)
        // while the device is offline.
        .set_clean_session(!persistent_session)
        .set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls),
        )));
    Ok(options)
}
