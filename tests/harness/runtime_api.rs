//! A local AWS Lambda Runtime API (version 2018-06-01) that drives a real function binary:
//! [`RuntimeApi::invoke`] queues an event, the function long-polls `invocation/next` for it
//! and posts its response or error back.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::server::Server;
use crate::{epoch_millis, lock};

/// The ARN given to the function in `Lambda-Runtime-Invoked-Function-Arn`.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:test";
/// The function name given in `AWS_LAMBDA_FUNCTION_NAME`.
pub const FUNCTION_NAME: &str = "test";
/// The deadline announced for every invocation (`Lambda-Runtime-Deadline-Ms` = now + this).
pub const INVOCATION_DEADLINE: Duration = Duration::from_secs(30);
const TRACE_ID: &str = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1";

/// The outcome of one [`RuntimeApi::invoke`].
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The function posted `invocation/{id}/response`; a body that is not JSON is given as a
    /// JSON string.
    Response(Value),
    /// The function posted `invocation/{id}/error`.
    Error {
        error_type: String,
        error_message: String,
    },
    /// The function posted `init/error` (before or during this invocation).
    InitError {
        error_type: String,
        error_message: String,
    },
    /// Nothing came back within the timeout.
    TimedOut,
}

struct Event {
    id: String,
    body: Vec<u8>,
}

#[derive(Default)]
struct Progress {
    results: HashMap<String, Invocation>,
    init_error: Option<(String, String)>,
    first_poll: Option<Instant>,
    polls: usize,
    next_id: u64,
}

struct Shared {
    events: mpsc::UnboundedSender<Event>,
    /// One long poll at a time takes the next event.
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Event>>,
    progress: Mutex<Progress>,
    changed: Condvar,
}

impl Shared {
    fn update(&self, change: impl FnOnce(&mut Progress)) {
        change(&mut lock(&self.progress));
        self.changed.notify_all();
    }

    /// Waits until `done` gives an answer or the deadline passes.
    fn wait<T>(
        &self,
        deadline: Instant,
        mut done: impl FnMut(&mut Progress) -> Option<T>,
    ) -> Option<T> {
        let mut progress = lock(&self.progress);
        loop {
            if let Some(answer) = done(&mut progress) {
                return Some(answer);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            progress = match self.changed.wait_timeout(progress, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// The Runtime API on a free loopback port; stopped on drop.
pub struct RuntimeApi {
    shared: Arc<Shared>,
    server: Server,
}

impl RuntimeApi {
    /// Panics if it cannot bind.
    pub fn start() -> RuntimeApi {
        let (events, queue) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            events,
            queue: tokio::sync::Mutex::new(queue),
            progress: Mutex::new(Progress::default()),
            changed: Condvar::new(),
        });
        let routes = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&shared));
        let server = Server::start("runtime-api", |_| routes)
            .unwrap_or_else(|e| panic!("Runtime API: cannot serve on 127.0.0.1: {e}"));
        RuntimeApi { shared, server }
    }

    /// `127.0.0.1:PORT` (the form `AWS_LAMBDA_RUNTIME_API` takes).
    pub fn addr(&self) -> String {
        self.server.addr().to_string()
    }

    /// The environment the `lambda_runtime` crate needs to start against this API.
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
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Queues `event` and blocks until the function answers it, an init error is posted, or
    /// `timeout` passes.
    pub fn invoke(&self, event: &impl serde::Serialize, timeout: Duration) -> Invocation {
        let deadline = Instant::now() + timeout;
        let body = serde_json::to_vec(event).unwrap_or_default();
        let mut id = String::new();
        self.shared.update(|p| {
            p.next_id += 1;
            id = format!(
                "{:08x}-0000-4000-8000-{:012x}",
                std::process::id(),
                p.next_id
            );
        });
        if self
            .shared
            .events
            .send(Event {
                id: id.clone(),
                body,
            })
            .is_err()
        {
            return Invocation::TimedOut;
        }
        let answer = self.shared.wait(deadline, |p| {
            p.results.remove(&id).or_else(|| {
                p.init_error
                    .clone()
                    .map(|(error_type, error_message)| Invocation::InitError {
                        error_type,
                        error_message,
                    })
            })
        });
        answer.unwrap_or(Invocation::TimedOut)
    }

    /// Blocks until the first `invocation/next` arrives (the function finished its init) or
    /// `timeout` passes; when it arrived.
    pub fn wait_first_poll(&self, timeout: Duration) -> Option<Instant> {
        self.shared.wait(Instant::now() + timeout, |p| p.first_poll)
    }

    /// Blocks until `count` polls arrived or `timeout` passes; whether they did.
    pub fn wait_polls(&self, count: usize, timeout: Duration) -> bool {
        self.shared
            .wait(Instant::now() + timeout, |p| {
                (p.polls >= count).then_some(())
            })
            .is_some()
    }

    /// How many `invocation/next` requests arrived so far.
    pub fn polls(&self) -> usize {
        self.progress().polls
    }

    /// The `(errorType, errorMessage)` posted to `init/error`, if any.
    pub fn init_error(&self) -> Option<(String, String)> {
        self.progress().init_error.clone()
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        lock(&self.shared.progress)
    }
}

type Api = State<Arc<Shared>>;

async fn next(State(api): Api) -> impl IntoResponse {
    api.update(|p| {
        p.polls += 1;
        p.first_poll.get_or_insert_with(Instant::now);
    });
    let Some(event) = api.queue.lock().await.recv().await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            HeaderMap::new(),
            Vec::new(),
        );
    };
    let deadline = epoch_millis() + INVOCATION_DEADLINE.as_millis() as u64;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("content-type", "application/json".to_owned());
    set("lambda-runtime-aws-request-id", event.id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        FUNCTION_ARN.to_owned(),
    );
    set("lambda-runtime-trace-id", TRACE_ID.to_owned());
    (StatusCode::OK, headers, event.body)
}

fn accepted() -> impl IntoResponse {
    (StatusCode::ACCEPTED, json!({"status": "OK"}).to_string())
}

async fn response(State(api): Api, Path(id): Path<String>, body: Bytes) -> impl IntoResponse {
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    api.update(|p| {
        p.results.insert(id, Invocation::Response(value));
    });
    accepted()
}

async fn error(
    State(api): Api,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let (error_type, error_message) = error_fields(&headers, &body);
    api.update(|p| {
        p.results.insert(
            id,
            Invocation::Error {
                error_type,
                error_message,
            },
        );
    });
    accepted()
}

async fn init_error(State(api): Api, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let fields = error_fields(&headers, &body);
    api.update(|p| p.init_error = Some(fields));
    accepted()
}

/// `errorType` and `errorMessage` from the JSON body, the type falling back to the
/// `Lambda-Runtime-Function-Error-Type` header and the message to the raw body.
fn error_fields(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let parsed: Value = serde_json::from_slice(body).unwrap_or_default();
    let field = |name: &str| parsed.get(name).and_then(Value::as_str).map(str::to_owned);
    let error_type = field("errorType")
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "Unknown".to_owned());
    let error_message =
        field("errorMessage").unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    (error_type, error_message)
}
