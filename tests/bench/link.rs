//! The network between a function and AWS as Lambda has it: HTTPS, with a server certificate
//! from a throw-away CA that the functions trust, across a link with a round-trip delay that
//! the TCP handshake pays too.
//!
//! Two hops in front of the stand-in: a delaying TCP proxy (the endpoint the functions are
//! given; each connection on threads of its own, timed by the operating system's sleep),
//! then a TLS terminator that forwards the plain HTTP to the stand-in.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::Res;

/// Where the system's root certificates are, on the distributions we run on: the bundle
/// the functions trust is these plus the bench's CA, so that loading the roots costs what
/// it costs on Lambda (which ships a full bundle).
const SYSTEM_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// The running link; dropping it stops both hops.
pub struct Link {
    /// `https://127.0.0.1:PORT`: the endpoint URL to give the functions.
    pub endpoint: String,
    /// The same on another port, for DynamoDB: on AWS the ledger's table is another host
    /// than IoT, so its connection is its own, not one the SDK's pool shares with IoT's.
    pub dynamodb_endpoint: String,
    /// The PEM bundle to trust (`SSL_CERT_FILE` for the SDK, `AWS_CA_BUNDLE` for boto3).
    pub ca_bundle: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Link {
    /// HTTPS to `upstream` (plain HTTP) through a link of round trip `rtt`; the certificates
    /// are written in `dir`.
    pub fn start(upstream: SocketAddr, rtt: Duration, dir: &Path) -> Res<Link> {
        let (server_config, ca_bundle) = certificates(dir)?;
        let bind = || -> Res<std::net::TcpListener> {
            let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok(l)
        };
        let (public, second, inner) = (bind()?, bind()?, bind()?);
        let url = |l: &std::net::TcpListener| -> Res<String> {
            Ok(format!(
                "https://{}",
                l.local_addr().map_err(|e| e.to_string())?
            ))
        };
        let (endpoint, dynamodb_endpoint) = (url(&public)?, url(&second)?);
        let inner_addr = inner.local_addr().map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let (stop, stopped) = oneshot::channel::<()>();
        let acceptor = TlsAcceptor::from(server_config);
        let thread = thread::Builder::new()
            .name("bench-link".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let (Ok(public), Ok(second), Ok(inner)) = (
                        TcpListener::from_std(public),
                        TcpListener::from_std(second),
                        TcpListener::from_std(inner),
                    ) else {
                        return;
                    };
                    tokio::select! {
                        _ = delay_proxy(public, inner_addr, rtt) => {}
                        _ = delay_proxy(second, inner_addr, rtt) => {}
                        _ = tls_terminator(inner, acceptor, upstream) => {}
                        _ = stopped => {}
                    }
                });
                runtime.shutdown_background();
            })
            .map_err(|e| e.to_string())?;
        Ok(Link {
            endpoint,
            dynamodb_endpoint,
            ca_bundle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it: the rustls server configuration,
/// and the bundle (system roots plus the CA) written in `dir`.
fn certificates(dir: &Path) -> Res<(Arc<rustls::ServerConfig>, PathBuf)> {
    let e = |e: rcgen::Error| format!("rcgen: {e}");
    let ca_key = KeyPair::generate().map_err(e)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "lambda-bench throw-away CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(e)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().map_err(e)?;
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).map_err(e)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let cert = leaf.signed_by(&key, &issuer).map_err(e)?;

    let mut bundle = SYSTEM_BUNDLES
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .unwrap_or_default();
    bundle.push('\n');
    bundle.push_str(&ca_cert.pem());
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ca_bundle = dir.join("lambda-bench-ca-bundle.pem");
    fs::write(&ca_bundle, bundle).map_err(|e| format!("{}: {e}", ca_bundle.display()))?;

    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.der().to_vec())],
        PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .map_err(|e| e.to_string())?;
    Ok((Arc::new(config), ca_bundle))
}

/// What the link itself takes for a new connection's three round trips (TCP, TLS 1.3, one
/// request and its answer's head), measured with a bare rustls client trusting only the
/// bench's CA: the network part of a function's init, timers and hops included, without the
/// function's CPU. Median of `times`.
pub fn three_round_trips(link: &Link, times: usize) -> Res<Duration> {
    use rustls::pki_types::pem::PemObject;
    let pem = fs::read(&link.ca_bundle).map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        // The system bundle's odd entries are skipped: only the bench's CA matters here.
        let _ = roots.add(cert.map_err(|e| e.to_string())?);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let addr = link
        .endpoint
        .trim_start_matches("https://")
        .parse::<SocketAddr>()
        .map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut took = Vec::with_capacity(times);
    for _ in 0..times {
        let connector = connector.clone();
        took.push(runtime.block_on(async move {
            let started = Instant::now();
            let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            let _ = tcp.set_nodelay(true);
            let name =
                rustls::pki_types::ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
            let mut tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(
                b"GET /quarantine-warm-up HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            )
            .await
            .map_err(|e| e.to_string())?;
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tls.read(&mut buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            Ok::<Duration, String>(started.elapsed())
        })?);
    }
    took.sort();
    Ok(took[took.len() / 2])
}

/// Terminates TLS and forwards each connection to `upstream`.
async fn tls_terminator(listener: TcpListener, acceptor: TlsAcceptor, upstream: SocketAddr) {
    while let Ok((stream, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        // No Nagle on either hop: a client that writes a request's headers and body apart
        // (botocore does) would otherwise wait for a delayed ACK on loopback.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let (Ok(mut tls), Ok(mut plain)) = (
                acceptor.accept(stream).await,
                TcpStream::connect(upstream).await,
            ) else {
                return;
            };
            let _ = plain.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
        });
    }
}

/// Forwards each connection to `next` with half of `rtt` on every chunk each way.
///
/// Accepting is async; each connection's copying runs on plain threads with blocking sockets
/// and the operating system's sleep, which wakes within tens of µs of its deadline. The
/// runtime's timer rounds every deadline up to its next millisecond: on the six one-way trips
/// of a connection's three round trips that added 4-6 ms to what the link is said to be.
///
/// The kernel completes the client's TCP handshake at once, so `connect` returns a round trip
/// early; the client's first bytes therefore wait one more round trip, counted from when the
/// client sent them. What the client did between `connect` and its first write (building its
/// TLS hello) then lies on the path, as it would after a real handshake.
async fn delay_proxy(listener: TcpListener, next: SocketAddr, rtt: Duration) {
    while let Ok((client, _)) = listener.accept().await {
        let _ = thread::Builder::new()
            .name("bench-link-conn".into())
            .spawn(move || {
                let _ = delay_connection(client, next, rtt);
            });
    }
}

/// One connection through the link: two directions, each a reading and a writing thread.
fn delay_connection(client: TcpStream, next: SocketAddr, rtt: Duration) -> std::io::Result<()> {
    let client = client.into_std()?;
    client.set_nonblocking(false)?;
    let server = std::net::TcpStream::connect(next)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let one_way = rtt / 2;
    let upstream = delayed_copy(client.try_clone()?, server.try_clone()?, one_way, rtt);
    delayed_copy(server, client, one_way, Duration::ZERO);
    let _ = upstream.join();
    Ok(())
}

/// Copies `from` to `to` on two threads, each chunk written `one_way` after it was read (the
/// first one `first_extra` later still), in order; returns the reader's thread.
fn delayed_copy(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    one_way: Duration,
    first_extra: Duration,
) -> thread::JoinHandle<()> {
    use std::io::{Read, Write};
    let (chunks, due) = std::sync::mpsc::channel::<(std::time::Instant, Vec<u8>)>();
    let writer = thread::spawn(move || {
        for (at, bytes) in due {
            let now = std::time::Instant::now();
            if at > now {
                thread::sleep(at - now);
            }
            if to.write_all(&bytes).is_err() {
                return;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
    thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        let mut extra = first_extra;
        let mut last = std::time::Instant::now();
        while let Ok(n) = from.read(&mut buf) {
            // In order: a chunk is never due before the one read ahead of it.
            let at = (std::time::Instant::now() + one_way + extra).max(last);
            extra = Duration::ZERO;
            last = at;
            if n == 0 || chunks.send((at, buf[..n].to_vec())).is_err() {
                break;
            }
        }
        drop(chunks);
        let _ = writer.join();
    })
}
