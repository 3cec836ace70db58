//! A real MQTT broker (mosquitto) with mutual TLS on a loopback port, certificates generated
//! per test, a client that plays AWS IoT, and the agent as a child process.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::mpsc;

pub const WAIT: Duration = Duration::from_secs(20);

/// A CA, the broker's certificate (for 127.0.0.1) and client certificates, in PEM files.
pub struct Pki {
    pub dir: TempDir,
    pub ca: PathBuf,
    pub server: (PathBuf, PathBuf),
    pub device: (PathBuf, PathBuf),
    pub aws: (PathBuf, PathBuf),
    /// Signed by another CA: the broker must refuse it.
    pub stranger: (PathBuf, PathBuf),
}

fn new_ca(name: &str) -> (CertificateParams, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (params, key)
}

fn leaf(
    dir: &Path,
    name: &str,
    sans: &[&str],
    eku: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, KeyPair>,
) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![eku];
    let cert = params.signed_by(&key, issuer).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

pub fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let (ca_params, ca_key) = new_ca("test root CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server = leaf(
        dir.path(),
        "broker",
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
        &issuer,
    );
    let device = leaf(
        dir.path(),
        "device",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
        &issuer,
    );
    let aws = leaf(
        dir.path(),
        "aws",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
        &issuer,
    );
    let (other_params, other_key) = new_ca("some other CA");
    let other = Issuer::new(other_params, other_key);
    let stranger = leaf(
        dir.path(),
        "stranger",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
        &other,
    );
    Pki {
        dir,
        ca,
        server,
        device,
        aws,
        stranger,
    }
}

fn mosquitto_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("MOSQUITTO") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "mosquitto is not installed: run scripts/ensure-mosquitto.sh (or set MOSQUITTO to its path)"
            )
        })
}

/// A loopback port free now and not handed out before in this process. The tests run in
/// parallel: two asking the kernel at once can be given the same free port, and then one
/// broker fails to bind it while its readiness check reaches the other's listener, and its
/// agent later finds nobody there.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

pub struct Broker {
    child: Child,
    pub port: u16,
}

impl Broker {
    /// Starts mosquitto with mutual TLS on a free loopback port.
    pub fn start(pki: &Pki) -> Broker {
        Broker::start_on(pki, free_port())
    }

    /// A broker that accepts the TLS handshake but refuses every MQTT connection (CONNACK
    /// "not authorized"): without the certificate's name as user name, every client is anonymous.
    pub fn start_refusing(pki: &Pki) -> Broker {
        Broker::launch(pki, free_port(), false)
    }

    pub fn start_on(pki: &Pki, port: u16) -> Broker {
        Broker::launch(pki, port, true)
    }

    fn launch(pki: &Pki, port: u16, identity_as_user: bool) -> Broker {
        let config = pki.dir.path().join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\n\
                 cafile {}\ncertfile {}\nkeyfile {}\n\
                 require_certificate true\nuse_identity_as_username {identity_as_user}\n\
                 allow_anonymous false\npersistence false\n\
                 # Stay root when started as root, so the temporary files stay readable.\n\
                 user root\nlog_dest stderr\nlog_type error\nlog_type warning\n",
                pki.ca.display(),
                pki.server.0.display(),
                pki.server.1.display(),
            ),
        )
        .unwrap();
        let mut child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let exited = |child: &mut Child| {
            let status = child.try_wait().unwrap()?;
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            Some(format!(
                "mosquitto on port {port} exited with {status}: {err}"
            ))
        };
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(exit) = exited(&mut child) {
                panic!("{exit}");
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whoever answered, this broker must still be running (not refused the port).
        if let Some(exit) = exited(&mut child) {
            panic!("{exit}");
        }
        Broker { child, port }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn tls(pki: &Pki, identity: &(PathBuf, PathBuf)) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&pki.ca).unwrap())
        .unwrap();
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from_pem_file(&identity.0).unwrap()],
            PrivateKeyDer::from_pem_file(&identity.1).unwrap(),
        )
        .unwrap()
}

/// Plays AWS IoT: sees everything the thing publishes and answers on the reply topics.
pub struct Aws {
    pub client: AsyncClient,
    messages: mpsc::UnboundedReceiver<Publish>,
    /// Messages received while waiting for another topic, oldest first.
    backlog: Vec<Publish>,
}

impl Aws {
    pub async fn connect(pki: &Pki, broker: &Broker, thing: &str) -> Aws {
        let mut options = MqttOptions::new(format!("aws-{thing}"), "127.0.0.1", broker.port);
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls(pki, &pki.aws)),
        )));
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        client
            .subscribe(format!("$aws/things/{thing}/#"), QoS::AtLeastOnce)
            .await
            .unwrap();
        let (tx, messages) = mpsc::unbounded_channel();
        let (ready_tx, mut ready) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send(p).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        tokio::time::timeout(WAIT, ready.recv())
            .await
            .expect("the AWS stand-in did not get its subscription")
            .expect("the AWS stand-in lost its connection");
        Aws {
            client,
            messages,
            backlog: Vec::new(),
        }
    }

    /// The next message on `topic`; messages on other topics are kept for later calls.
    pub async fn next(&mut self, topic: &str) -> Publish {
        if let Some(i) = self.backlog.iter().position(|p| p.topic == topic) {
            return self.backlog.remove(i);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let p = tokio::time::timeout_at(deadline, self.messages.recv())
                .await
                .unwrap_or_else(|_| panic!("nothing on {topic} within {WAIT:?}"))
                .expect("the AWS stand-in lost its connection");
            if p.topic == topic {
                return p;
            }
            self.backlog.push(p);
        }
    }

    pub async fn next_json(&mut self, topic: &str) -> Value {
        let p = self.next(topic).await;
        serde_json::from_slice(&p.payload).unwrap()
    }

    /// How many messages on `topic` arrived so far and were not taken by `next`.
    pub fn count(&mut self, topic: &str) -> usize {
        while let Ok(p) = self.messages.try_recv() {
            self.backlog.push(p);
        }
        self.backlog.iter().filter(|p| p.topic == topic).count()
    }

    /// Waits for the agent to read `shadow` (its topic prefix); returns the request's
    /// clientToken, which the answer echoes.
    pub async fn next_read(&mut self, shadow: &str) -> Value {
        self.next_json(&format!("{shadow}/get")).await["clientToken"].clone()
    }

    /// Answers a read with the whole shadow `document`, as AWS IoT does.
    pub async fn answer_read(&self, shadow: &str, token: &Value, mut document: Value) {
        document["clientToken"] = token.clone();
        self.send(&format!("{shadow}/get/accepted"), document.to_string())
            .await;
    }

    /// Answers a read: the thing has no shadow (HTTP 404).
    pub async fn answer_no_shadow(&self, shadow: &str, token: &Value) {
        let answer = serde_json::json!({
            "code": 404,
            "message": "No shadow exists with name: 'x'",
            "timestamp": 1,
            "clientToken": token,
        });
        self.send(&format!("{shadow}/get/rejected"), answer.to_string())
            .await;
    }

    pub async fn send(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .unwrap();
    }
}

/// The agent binary as a child process, its standard error captured.
pub struct Agent {
    child: Child,
    log: Arc<Mutex<String>>,
}

pub fn agent_args(pki: &Pki, broker: &Broker, thing: &str, state: &Path) -> Vec<String> {
    vec![
        "--endpoint".into(),
        "127.0.0.1".into(),
        "--port".into(),
        broker.port.to_string(),
        "--thing-name".into(),
        thing.into(),
        "--cert".into(),
        pki.device.0.display().to_string(),
        "--key".into(),
        pki.device.1.display().to_string(),
        "--root-ca".into(),
        pki.ca.display().to_string(),
        "--state-file".into(),
        state.display().to_string(),
    ]
}

impl Agent {
    pub fn spawn(args: &[String]) -> Agent {
        let mut child = Command::new(env!("CARGO_BIN_EXE_defender-agent"))
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("SHADOW_NAME")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Agent { child, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log holds `text` `times` times.
    pub async fn wait_log(&self, text: &str, times: usize) {
        let deadline = Instant::now() + WAIT;
        while self.log().matches(text).count() < times {
            assert!(
                Instant::now() < deadline,
                "the agent did not log {text:?} {times} time(s) within {WAIT:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM, as systemd does to stop the service.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the agent to exit on its own.
    pub async fn exit(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return (status, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the agent is still running; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks a report against AWS's device metrics document specification (short names).
pub fn assert_follows_spec(report: &Value) {
    let top = report.as_object().expect("the report is an object");
    for key in top.keys() {
        assert!(
            ["hed", "met", "cmet"].contains(&key.as_str()),
            "unknown key {key}"
        );
    }
    assert!(
        top.contains_key("met") || top.contains_key("cmet"),
        "neither met nor cmet"
    );
    assert!(
        report["hed"]["rid"].as_u64().is_some_and(|r| r > 0),
        "hed.rid"
    );
    assert_eq!(report["hed"]["v"], "1.0");
    if let Some(met) = report.get("met") {
        for list in ["tp", "up"] {
            let pts = met[list]["pts"].as_array().unwrap();
            assert_eq!(met[list]["t"].as_u64(), Some(pts.len() as u64), "{list}.t");
            for p in pts {
                assert!(p["pt"].as_u64().is_some_and(|pt| pt <= 65535), "{list} {p}");
                assert!(p.get("if").is_none_or(Value::is_string), "{list} {p}");
            }
        }
        let cs = met["tc"]["ec"]["cs"].as_array().unwrap();
        assert_eq!(met["tc"]["ec"]["t"].as_u64(), Some(cs.len() as u64));
        for c in cs {
            let rad = c["rad"].as_str().unwrap();
            assert!(rad.parse::<std::net::SocketAddr>().is_ok(), "rad {rad}");
            assert!(c["lp"].as_u64().is_some(), "{c}");
        }
        if let Some(ns) = met.get("ns") {
            for k in ["bi", "bo", "pi", "po"] {
                assert!(ns[k].as_u64().is_some(), "ns.{k}");
            }
        }
    }
    if let Some(cmet) = report.get("cmet") {
        for (name, value) in cmet.as_object().unwrap() {
            let values = value.as_array().unwrap();
            assert_eq!(values.len(), 1, "cmet.{name} must be a one-element array");
            let kinds = values[0].as_object().unwrap();
            assert_eq!(kinds.len(), 1, "cmet.{name}");
            let (kind, v) = kinds.iter().next().unwrap();
            match kind.as_str() {
                "number" => assert!(v.is_number()),
                "number_list" => assert!(v.as_array().unwrap().iter().all(Value::is_number)),
                "string_list" | "ip_list" => {
                    assert!(v.as_array().unwrap().iter().all(Value::is_string))
                }
                other => panic!("cmet.{name}: unknown kind {other}"),
            }
        }
    }
}

pub fn accepted(thing: &str) -> Vec<u8> {
    serde_json::json!({"thingName": thing, "status": "ACCEPTED", "timestamp": 1_700_000_000_000u64})
        .to_string()
        .into_bytes()
}

pub fn rejected(thing: &str, code: &str, message: &str) -> Vec<u8> {
    serde_json::json!({
        "thingName": thing,
        "status": "REJECTED",
        "statusDetails": {"ErrorCode": code, "ErrorMessage": message},
        "timestamp": 1_700_000_000_000u64
    })
    .to_string()
    .into_bytes()
}
