//! Self-test of the local Lambda Runtime API: this test plays the function's part with plain
//! TcpStreams (keep-alive, Content-Length and chunked bodies).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use integration_tests::runtime_api::{Invocation, RuntimeApi, http_request};
use serde_json::{Value, json};

/// A minimal keep-alive client: one connection, requests written by hand.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Client {
    fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn send_raw(&mut self, raw: &[u8]) -> Reply {
        self.writer.write_all(raw).expect("write request");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).expect("header line");
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').unwrap();
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).expect("body");
        Reply {
            status,
            headers,
            body,
        }
    }

    fn request(&mut self, method: &str, path: &str, extra: &str, body: &[u8]) -> Reply {
        let mut raw = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        self.send_raw(&raw)
    }

    fn next(&mut self) -> (String, Value, Reply) {
        let reply = self.request("GET", "/2018-06-01/runtime/invocation/next", "", b"");
        assert_eq!(reply.status, 200);
        let id = reply
            .header("Lambda-Runtime-Aws-Request-Id")
            .expect("request id header")
            .to_owned();
        let event = serde_json::from_slice(&reply.body).expect("event JSON");
        (id, event, reply)
    }
}

#[test]
fn response_path_round_trips_over_keep_alive() {
    let api = RuntimeApi::start();
    assert!(api.first_poll_at().is_none());
    let addr = api.addr();
    let function = thread::spawn(move || {
        let mut c = Client::connect(&addr);
        for _ in 0..2 {
            let (id, event, reply) = c.next();
            let deadline: u128 = reply
                .header("Lambda-Runtime-Deadline-Ms")
                .unwrap()
                .parse()
                .unwrap();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis();
            assert!(deadline > now + 20_000 && deadline <= now + 31_000);
            assert_eq!(
                reply.header("Lambda-Runtime-Invoked-Function-Arn"),
                Some("arn:aws:lambda:us-east-1:123456789012:function:test")
            );
            assert!(reply.header("Lambda-Runtime-Trace-Id").is_some());
            let body = serde_json::to_vec(&json!({"echo": event})).unwrap();
            let r = c.request(
                "POST",
                &format!("/2018-06-01/runtime/invocation/{id}/response"),
                "",
                &body,
            );
            assert_eq!(r.status, 202);
        }
    });
    let started = Instant::now();
    assert!(api.wait_first_poll(Duration::from_secs(10)).is_some());
    assert!(api.first_poll_at().unwrap() >= started);
    let out = api.invoke(json!({"n": 1}), Duration::from_secs(10));
    assert_eq!(out, Invocation::Response(json!({"echo": {"n": 1}})));
    let out = api.invoke(json!({"n": 2}), Duration::from_secs(10));
    assert_eq!(out, Invocation::Response(json!({"echo": {"n": 2}})));
    function.join().unwrap();
    assert_eq!(api.polls(), 2);
}

#[test]
fn error_path_with_chunked_body() {
    let api = RuntimeApi::start();
    let addr = api.addr();
    let function = thread::spawn(move || {
        let mut c = Client::connect(&addr);
        let (id, event, _) = c.next();
        assert_eq!(event, json!({"bad": true}));
        let body = br#"{"errorType":"violation_core::Error","errorMessage":"boom"}"#;
        let mut raw = format!(
            "POST /2018-06-01/runtime/invocation/{id}/error HTTP/1.1\r\nHost: localhost\r\n\
             Lambda-Runtime-Function-Error-Type: Runtime.Unhandled\r\n\
             Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            10
        )
        .into_bytes();
        raw.extend_from_slice(&body[..10]);
        raw.extend_from_slice(format!("\r\n{:x}\r\n", body.len() - 10).as_bytes());
        raw.extend_from_slice(&body[10..]);
        raw.extend_from_slice(b"\r\n0\r\n\r\n");
        let r = c.send_raw(&raw);
        assert_eq!(r.status, 202);
        // A second report for the same id is refused.
        let r = c.request(
            "POST",
            &format!("/2018-06-01/runtime/invocation/{id}/error"),
            "",
            body,
        );
        assert_eq!(r.status, 400);
    });
    let out = api.invoke(json!({"bad": true}), Duration::from_secs(10));
    assert_eq!(
        out,
        Invocation::Error {
            error_type: "violation_core::Error".into(),
            error_message: "boom".into()
        }
    );
    function.join().unwrap();
}

#[test]
fn init_error_and_timeout() {
    let api = RuntimeApi::start();
    // Nobody polls: the invocation times out and is withdrawn from the queue.
    let t0 = Instant::now();
    assert_eq!(
        api.invoke(json!({}), Duration::from_millis(300)),
        Invocation::TimedOut
    );
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(api.wait_first_poll(Duration::from_millis(100)), None);

    let url = format!("http://{}/2018-06-01/runtime/init/error", api.addr());
    let (status, _) = http_request(
        "POST",
        &url,
        br#"{"errorType":"Runtime.InitError","errorMessage":"missing env"}"#,
    )
    .unwrap();
    assert_eq!(status, 202);
    assert_eq!(
        api.invoke(json!({}), Duration::from_secs(5)),
        Invocation::InitError {
            error_type: "Runtime.InitError".into(),
            error_message: "missing env".into()
        }
    );
}

#[test]
fn bad_requests_do_not_kill_the_server() {
    let api = RuntimeApi::start();
    let base = format!("http://{}", api.addr());
    assert_eq!(
        http_request("GET", &format!("{base}/nope"), b"").unwrap().0,
        404
    );
    assert_eq!(
        http_request(
            "POST",
            &format!("{base}/2018-06-01/runtime/invocation/next"),
            b""
        )
        .unwrap()
        .0,
        405
    );
    assert_eq!(
        http_request(
            "POST",
            &format!("{base}/2018-06-01/runtime/invocation/unknown/response"),
            b"{}"
        )
        .unwrap()
        .0,
        400
    );
    // Garbage, then a truncated body: the server just closes those connections.
    let mut s = TcpStream::connect(api.addr()).unwrap();
    s.write_all(b"\x00\x01garbage\r\n\r\n").unwrap();
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    let mut s = TcpStream::connect(api.addr()).unwrap();
    s.write_all(b"POST /x HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")
        .unwrap();
    drop(s);
    // Still serving.
    assert_eq!(
        http_request("GET", &format!("{base}/nope"), b"").unwrap().0,
        404
    );
    let env = api.env();
    for key in [
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_REGION",
    ] {
        assert!(env.iter().any(|(k, _)| k == key), "{key} missing");
    }
}
