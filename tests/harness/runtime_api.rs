//! A local implementation of the AWS Lambda Runtime API (version 2018-06-01) that drives a real
//! function binary, plus helpers to spawn the binary and a tiny blocking HTTP client.
//!
//! The server speaks HTTP/1.1 with keep-alive (the `lambda_runtime` client pools connections),
//! accepts `Content-Length` and chunked bodies, and long-polls `GET .../invocation/next` until
//! [`RuntimeApi::invoke`] queues an event. Server threads never panic on bad input: they close
//! the connection.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::workspace_root;

/// The ARN given to the function in `Lambda-Runtime-Invoked-Function-Arn`.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:test";
/// The function name given in `AWS_LAMBDA_FUNCTION_NAME`.
pub const FUNCTION_NAME: &str = "test";
/// The deadline announced for every invocation (`Lambda-Runtime-Deadline-Ms` = now + this).
pub const INVOCATION_DEADLINE: Duration = Duration::from_secs(30);

const PREFIX: &str = "/2018-06-01/runtime";
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 32 * 1024 * 1024;
/// How often blocked server threads wake up to check for shutdown.
const TICK: Duration = Duration::from_millis(200);

/// The outcome of one [`RuntimeApi::invoke`].
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The function posted `/invocation/{id}/response`; the body parsed as JSON (a body that
    /// is not JSON is given as a JSON string).
    Response(Value),
    /// The function posted `/invocation/{id}/error`.
    Error {
        error_type: String,
        error_message: String,
    },
    /// The function posted `/init/error` (before or during this invocation).
    InitError {
        error_type: String,
        error_message: String,
    },
    /// Nothing came back within the timeout.
    TimedOut,
}

struct Pending {
    id: String,
    body: Vec<u8>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    in_flight: HashSet<String>,
    abandoned: HashSet<String>,
    results: HashMap<String, Invocation>,
    init_error: Option<(String, String)>,
    first_poll: Option<Instant>,
    polls: usize,
    next_id: u64,
    shutdown: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    cond: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked; the state is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait_timeout<'a>(
        &self,
        guard: MutexGuard<'a, State>,
        dur: Duration,
    ) -> MutexGuard<'a, State> {
        match self.cond.wait_timeout(guard, dur) {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        }
    }

    fn is_shutdown(&self) -> bool {
        self.lock().shutdown
    }
}

/// A local Lambda Runtime API server on 127.0.0.1 (background threads; stopped on drop).
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl RuntimeApi {
    /// Binds 127.0.0.1:0 and starts serving.
    pub fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(Shared::default());
        let accept_shared = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name("runtime-api-accept".into())
            .spawn(move || accept_loop(listener, accept_shared))
            .expect("spawn accept thread");
        RuntimeApi {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    /// `127.0.0.1:PORT` (the form `AWS_LAMBDA_RUNTIME_API` takes).
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The environment the `lambda_runtime` crate needs to start against this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.addr()),
            ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/01/01/[$LATEST]00000000000000000000000000000000".to_owned(),
            ),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{FUNCTION_NAME}"),
            ),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Queues `event` and blocks until the function posts a response or an error for it, an
    /// init error is posted, or `timeout` passes.
    pub fn invoke(&self, event: Value, timeout: Duration) -> Invocation {
        let deadline = Instant::now() + timeout;
        let body = serde_json::to_vec(&event).expect("serialize event");
        let mut st = self.shared.lock();
        st.next_id += 1;
        let id = request_id(st.next_id);
        st.queue.push_back(Pending {
            id: id.clone(),
            body,
        });
        self.shared.cond.notify_all();
        loop {
            if let Some(result) = st.results.remove(&id) {
                st.in_flight.remove(&id);
                return result;
            }
            let give_up = if let Some((error_type, error_message)) = st.init_error.clone() {
                Some(Invocation::InitError {
                    error_type,
                    error_message,
                })
            } else if Instant::now() >= deadline {
                Some(Invocation::TimedOut)
            } else {
                None
            };
            if let Some(outcome) = give_up {
                st.queue.retain(|p| p.id != id);
                if st.in_flight.contains(&id) {
                    st.abandoned.insert(id);
                }
                return outcome;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            st = self.shared.wait_timeout(st, left.min(TICK));
        }
    }

    /// When the first `GET .../invocation/next` arrived (the function finished its init).
    pub fn first_poll_at(&self) -> Option<Instant> {
        self.shared.lock().first_poll
    }

    /// Blocks until the first `GET .../invocation/next` arrives or `timeout` passes.
    pub fn wait_first_poll(&self, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if st.first_poll.is_some() {
                return st.first_poll;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            st = self.shared.wait_timeout(st, left.min(TICK));
        }
    }

    /// How many `GET .../invocation/next` requests arrived so far.
    pub fn polls(&self) -> usize {
        self.shared.lock().polls
    }

    /// The `(errorType, errorMessage)` posted to `/init/error`, if any.
    pub fn init_error(&self) -> Option<(String, String)> {
        self.shared.lock().init_error.clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.cond.notify_all();
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.accept_thread.take() {
            let _ = handle.join();
        }
    }
}

fn request_id(n: u64) -> String {
    let pid = std::process::id();
    format!("{pid:08x}-0000-4000-8000-{n:012x}")
}

fn epoch_ms(at: SystemTime) -> u128 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.is_shutdown() {
            break;
        }
        match stream {
            Ok(stream) => {
                let conn_shared = Arc::clone(&shared);
                let spawned = thread::Builder::new()
                    .name("runtime-api-conn".into())
                    .spawn(move || serve_connection(stream, conn_shared));
                if spawned.is_err() {
                    thread::sleep(Duration::from_millis(10));
                }
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The event handed out by this response (requeued if it cannot be written).
    handed_out: Option<Pending>,
}

impl Response {
    fn json(status: u16, body: Value) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
            handed_out: None,
        }
    }

    fn error(status: u16, error_type: &str, message: &str) -> Response {
        Response::json(
            status,
            serde_json::json!({"errorType": error_type, "errorMessage": message}),
        )
    }
}

fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    if stream.set_read_timeout(Some(TICK)).is_err() {
        return;
    }
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let keep_waiting = || !shared.is_shutdown();
    let mut reader = HttpReader::new(&stream, &keep_waiting);
    let mut writer = &stream;
    loop {
        let Ok(Some(head)) = reader.read_head() else {
            return;
        };
        let request = match head.request_line() {
            Some(r) => r,
            None => {
                let _ = write_response(
                    &mut writer,
                    &Response::error(400, "BadRequest", "bad request line"),
                    true,
                );
                return;
            }
        };
        if head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
            && writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
        {
            return;
        }
        let Ok(body) = reader.read_body(&head, true) else {
            return;
        };
        let close = request.version == "HTTP/1.0"
            || head
                .header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let Some(response) = route(&shared, &request, &head, body) else {
            // Shutting down while long-polling.
            return;
        };
        if write_response(&mut writer, &response, close).is_err() {
            if let Some(pending) = response.handed_out {
                let mut st = shared.lock();
                st.in_flight.remove(&pending.id);
                st.queue.push_front(pending);
                shared.cond.notify_all();
            }
            return;
        }
        if close {
            return;
        }
    }
}

fn write_response(out: &mut impl Write, response: &Response, close: bool) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        response.status,
        reason(response.status),
        response.body.len()
    );
    for (name, value) in &response.headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&response.body);
    out.write_all(&bytes)?;
    out.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        _ => "Unknown",
    }
}

/// Routes one request. None means the server is shutting down (close the connection).
fn route(shared: &Shared, request: &RequestLine, head: &Head, body: Vec<u8>) -> Option<Response> {
    let path = request.target.split('?').next().unwrap_or("");
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Some(Response::error(404, "NotFound", "unknown path"));
    };
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    match (request.method.as_str(), parts.as_slice()) {
        ("GET", ["invocation", "next"]) => next_invocation(shared),
        ("POST", ["invocation", id, "response"]) => {
            let value = response_value(head, &body);
            Some(complete(shared, id, Invocation::Response(value)))
        }
        ("POST", ["invocation", id, "error"]) => {
            let (error_type, error_message) = parse_error(head, &body);
            Some(complete(
                shared,
                id,
                Invocation::Error {
                    error_type,
                    error_message,
                },
            ))
        }
        ("POST", ["init", "error"]) => {
            let err = parse_error(head, &body);
            let mut st = shared.lock();
            st.init_error = Some(err);
            shared.cond.notify_all();
            Some(Response::json(202, serde_json::json!({"status": "OK"})))
        }
        (_, ["invocation", "next"])
        | (_, ["invocation", _, "response" | "error"])
        | (_, ["init", "error"]) => Some(Response::error(
            405,
            "MethodNotAllowed",
            "method not allowed",
        )),
        _ => Some(Response::error(404, "NotFound", "unknown path")),
    }
}

fn next_invocation(shared: &Shared) -> Option<Response> {
    let mut st = shared.lock();
    st.polls += 1;
    if st.first_poll.is_none() {
        st.first_poll = Some(Instant::now());
    }
    shared.cond.notify_all();
    let pending = loop {
        if st.shutdown {
            return None;
        }
        if let Some(p) = st.queue.pop_front() {
            st.in_flight.insert(p.id.clone());
            break p;
        }
        st = shared.wait_timeout(st, TICK);
    };
    drop(st);
    let now = SystemTime::now();
    let deadline = epoch_ms(now + INVOCATION_DEADLINE);
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let seq = u64::from_str_radix(pending.id.rsplit('-').next().unwrap_or("0"), 16).unwrap_or(0);
    let trace = format!("Root=1-{secs:08x}-{seq:024x};Parent={seq:016x};Sampled=0");
    Some(Response {
        status: 200,
        headers: vec![
            ("Lambda-Runtime-Aws-Request-Id".into(), pending.id.clone()),
            ("Lambda-Runtime-Deadline-Ms".into(), deadline.to_string()),
            (
                "Lambda-Runtime-Invoked-Function-Arn".into(),
                FUNCTION_ARN.into(),
            ),
            ("Lambda-Runtime-Trace-Id".into(), trace),
        ],
        body: pending.body.clone(),
        handed_out: Some(pending),
    })
}

fn complete(shared: &Shared, id: &str, outcome: Invocation) -> Response {
    let mut st = shared.lock();
    if st.abandoned.remove(id) {
        st.in_flight.remove(id);
        return Response::json(202, serde_json::json!({"status": "OK"}));
    }
    if !st.in_flight.contains(id) || st.results.contains_key(id) {
        return Response::error(400, "InvalidRequestID", "Invalid request ID");
    }
    st.results.insert(id.to_owned(), outcome);
    shared.cond.notify_all();
    Response::json(202, serde_json::json!({"status": "OK"}))
}

fn response_value(head: &Head, body: &[u8]) -> Value {
    let mut payload = body;
    // Streaming mode: a JSON metadata prelude, eight NUL bytes, then the payload.
    if head
        .header("lambda-runtime-function-response-mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("streaming"))
        && let Some(pos) = find(body, &[0u8; 8])
    {
        payload = &body[pos + 8..];
    }
    serde_json::from_slice(payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()))
}

fn parse_error(head: &Head, body: &[u8]) -> (String, String) {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let error_type = field("errorType")
        .or_else(|| {
            head.header("lambda-runtime-function-error-type")
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "Unknown".to_owned());
    let error_message =
        field("errorMessage").unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    (error_type, error_message)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Minimal HTTP/1.1 message reading, shared by the server and the client below.

struct RequestLine {
    method: String,
    target: String,
    version: String,
}

struct Head {
    start_line: String,
    /// Lower-cased names.
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn request_line(&self) -> Option<RequestLine> {
        let mut it = self.start_line.split_ascii_whitespace();
        let method = it.next()?.to_owned();
        let target = it.next()?.to_owned();
        let version = it.next()?.to_owned();
        if it.next().is_some() || !version.starts_with("HTTP/1.") {
            return None;
        }
        Some(RequestLine {
            method,
            target,
            version,
        })
    }

    fn status(&self) -> Option<u16> {
        let mut it = self.start_line.split_ascii_whitespace();
        if !it.next()?.starts_with("HTTP/") {
            return None;
        }
        it.next()?.parse().ok()
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

struct HttpReader<'a, R: Read> {
    inner: R,
    buf: Vec<u8>,
    /// Called when a read times out: true to keep waiting, false to give up.
    keep_waiting: &'a dyn Fn() -> bool,
}

impl<'a, R: Read> HttpReader<'a, R> {
    fn new(inner: R, keep_waiting: &'a dyn Fn() -> bool) -> Self {
        HttpReader {
            inner,
            buf: Vec::new(),
            keep_waiting,
        }
    }

    /// Reads more bytes into the buffer; Ok(0) at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8192];
        loop {
            match self.inner.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if !(self.keep_waiting)() {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads a start line and headers. Ok(None) on a clean end of stream before any byte.
    fn read_head(&mut self) -> io::Result<Option<Head>> {
        let end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("header section too large"));
            }
            if self.fill()? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(invalid("end of stream inside headers"));
            }
        };
        let head_bytes: Vec<u8> = self.buf.drain(..end + 4).collect();
        let text = std::str::from_utf8(&head_bytes[..end]).map_err(|_| invalid("non-UTF-8"))?;
        let mut lines = text.split("\r\n");
        let start_line = lines.next().unwrap_or("").to_owned();
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':').ok_or_else(|| invalid("bad header"))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        Ok(Some(Head {
            start_line,
            headers,
        }))
    }

    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(pos) = find(&self.buf, b"\r\n") {
                let mut line: Vec<u8> = self.buf.drain(..pos + 2).collect();
                line.truncate(pos);
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("line too long"));
            }
            if self.fill()? == 0 {
                return Err(invalid("end of stream inside a line"));
            }
        }
    }

    fn read_exact_n(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(invalid("end of stream inside the body"));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        while self.fill()? != 0 {
            if self.buf.len() > MAX_BODY {
                return Err(invalid("body too large"));
            }
        }
        Ok(std::mem::take(&mut self.buf))
    }

    /// Reads the body announced by `head`. For a request without a length the body is empty;
    /// for a response (`is_request` false) it runs to the end of the stream.
    fn read_body(&mut self, head: &Head, is_request: bool) -> io::Result<Vec<u8>> {
        if head
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
        {
            let mut body = Vec::new();
            loop {
                let line = self.read_line()?;
                let line = String::from_utf8_lossy(&line);
                let size_text = line.split(';').next().unwrap_or("").trim();
                let size =
                    usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
                if size == 0 {
                    // Trailers, up to an empty line.
                    while !self.read_line()?.is_empty() {}
                    return Ok(body);
                }
                if body.len() + size > MAX_BODY {
                    return Err(invalid("body too large"));
                }
                body.extend(self.read_exact_n(size)?);
                if !self.read_line()?.is_empty() {
                    return Err(invalid("missing CRLF after chunk"));
                }
            }
        }
        if let Some(len) = head.header("content-length") {
            let len: usize = len.parse().map_err(|_| invalid("bad content-length"))?;
            if len > MAX_BODY {
                return Err(invalid("body too large"));
            }
            return self.read_exact_n(len);
        }
        if is_request {
            Ok(Vec::new())
        } else {
            self.read_to_end()
        }
    }
}

/// A tiny blocking HTTP/1.1 client (`Connection: close`, 10 s timeouts) for `http://` URLs.
/// Returns the status and the body as (lossy) UTF-8.
pub fn http_request(method: &str, url: &str, body: &[u8]) -> io::Result<(u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid("only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| invalid("cannot resolve host"))?;
    let timeout = Duration::from_secs(10);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: */*\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request)?;
    let never = || false;
    let mut reader = HttpReader::new(&stream, &never);
    let head = loop {
        let head = reader
            .read_head()?
            .ok_or_else(|| invalid("connection closed before a response"))?;
        let status = head.status().ok_or_else(|| invalid("bad status line"))?;
        // Skip interim 1xx responses.
        if !(100..200).contains(&status) {
            break head;
        }
    };
    let status = head.status().unwrap_or(0);
    let body = if method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 {
        Vec::new()
    } else {
        reader.read_body(&head, false)?
    };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The last `lines` lines of a text file (empty if it cannot be read).
pub fn tail_lines(path: &Path, lines: usize) -> String {
    let Ok(bytes) = fs::read(path) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// The function process.

static SPAWNED: AtomicUsize = AtomicUsize::new(0);

/// A function binary running against a [`RuntimeApi`]; killed and reaped on drop.
pub struct FunctionProcess {
    child: Child,
    /// Just before the process was spawned.
    pub started_at: Instant,
    /// The file holding the process's stdout and stderr.
    pub log_path: PathBuf,
}

impl FunctionProcess {
    /// Starts `binary` with the runtime's [`RuntimeApi::env`] plus `extra_env` (which wins).
    /// `AWS_*` and `_X_AMZN_*` variables of the test process are not passed on, so a
    /// developer's real AWS settings cannot leak in. Output goes to `target/function-logs/`.
    pub fn spawn(binary: &Path, runtime: &RuntimeApi, extra_env: &[(&str, &str)]) -> Self {
        let log_dir = workspace_root().join("target/function-logs");
        fs::create_dir_all(&log_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_dir.display()));
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "function".to_owned());
        let seq = SPAWNED.fetch_add(1, Ordering::Relaxed);
        let log_path = log_dir.join(format!("{name}-{}-{seq}.log", std::process::id()));
        let log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let log_err = log.try_clone().expect("clone log file handle");

        let mut cmd = Command::new(binary);
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("AWS_") || k.starts_with("_X_AMZN") {
                cmd.env_remove(&key);
            }
        }
        cmd.envs(runtime.env());
        cmd.envs(extra_env.iter().copied());
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let started_at = Instant::now();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        FunctionProcess {
            child,
            started_at,
            log_path,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last `lines` lines of the process's output.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_lines(&self.log_path, lines)
    }

    /// The exit status if the process has exited (without blocking).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak resident set size (`VmHWM` in `/proc/PID/status`) in KiB, if readable.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The path of a workspace binary (e.g. `quarantine-group`).
///
/// `QUARANTINE_BIN_DIR` wins when set. Otherwise looks in the profile directory this test was
/// built in (from the test executable's location, so `CARGO_TARGET_DIR` is honoured), then in
/// `target/debug` and `target/release` under the workspace (matching profile first).
/// Panics with a hint if the binary is missing: cargo builds it only when asked, e.g.
/// `cargo build -p NAME`.
pub fn binary_path(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("QUARANTINE_BIN_DIR") {
        let path = PathBuf::from(dir).join(name);
        if path.is_file() {
            return path;
        }
        panic!(
            "binary {name} not found at {} (QUARANTINE_BIN_DIR is set)",
            path.display()
        );
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let profile_dir = if dir.file_name().is_some_and(|n| n == "deps") {
            dir.parent()
        } else {
            Some(dir)
        };
        if let Some(p) = profile_dir {
            candidates.push(p.join(name));
        }
    }
    let target = workspace_root().join("target");
    let (first, second) = if cfg!(debug_assertions) {
        ("debug", "release")
    } else {
        ("release", "debug")
    };
    candidates.push(target.join(first).join(name));
    candidates.push(target.join(second).join(name));
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return found.clone();
    }
    let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    panic!(
        "binary {name} not found (looked in: {}); build it first (`cargo build -p {name}`) \
         or set QUARANTINE_BIN_DIR",
        looked.join(", ")
    );
}
