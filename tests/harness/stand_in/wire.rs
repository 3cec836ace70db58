//! The restJson1 wire: answers with the AWS error code in `x-amzn-ErrorType`, JSON bodies,
//! and the one path every call takes (scripted fault, token bucket, 5xx share, the
//! operation), recorded in the call log.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::state::{Bucket, World};
use super::{Call, Fault, MAX_GROUPS_PER_THING, Op, StandInConfig};
use crate::lock;

const JSON: &str = "application/json";

pub(super) struct Shared {
    pub(super) config: StandInConfig,
    pub(super) endpoint_address: String,
    pub(super) seq: AtomicU64,
    pub(super) bucket: Option<Mutex<Bucket>>,
    pub(super) world: Mutex<World>,
    pub(super) calls: Mutex<Vec<Call>>,
    /// The SigV4 credential scope of every signed request, as `access-key/region/service`.
    pub(super) signers: Mutex<Vec<String>>,
}

/// An AWS answer in the restJson1 format.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) error_type: Option<&'static str>,
    pub(super) body: Option<Value>,
    /// `application/json` (restJson1), or DynamoDB's `application/x-amz-json-1.0`.
    pub(super) content_type: &'static str,
}

impl Reply {
    pub(super) fn ok(body: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            error_type: None,
            body: Some(body),
            content_type: JSON,
        }
    }

    /// A DynamoDB (awsJson1_0) answer: the error, if any, is the body's `__type`.
    pub(super) fn json_1_0(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            error_type: None,
            body: Some(body),
            content_type: "application/x-amz-json-1.0",
        }
    }

    pub(super) fn error(
        status: StatusCode,
        error_type: &'static str,
        message: impl Into<String>,
    ) -> Reply {
        Reply {
            status,
            error_type: Some(error_type),
            body: Some(json!({ "message": message.into() })),
            content_type: JSON,
        }
    }

    pub(super) fn invalid(message: impl Into<String>) -> Reply {
        Reply::error(StatusCode::BAD_REQUEST, "InvalidRequestException", message)
    }

    pub(super) fn not_found(message: impl Into<String>) -> Reply {
        Reply::error(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }

    pub(super) fn throttled(op: Op) -> Reply {
        let status = if op.is_data_plane() {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            StatusCode::BAD_REQUEST
        };
        Reply::error(status, "ThrottlingException", "Rate exceeded")
    }

    pub(super) fn internal_failure() -> Reply {
        Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailureException",
            "Internal failure (injected by the stand-in)",
        )
    }

    pub(super) fn limit_exceeded(thing: &str) -> Reply {
        Reply::invalid(format!(
            "Thing {thing} cannot be added to more than {MAX_GROUPS_PER_THING} thing groups"
        ))
    }

    pub(super) fn scripted(status: u16, error_type: Option<&'static str>) -> Reply {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match error_type {
            Some(code) => Reply::error(status, code, format!("{code} (injected)")),
            None => Reply {
                status,
                error_type: None,
                body: None,
                content_type: JSON,
            },
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        if let Some(code) = self.error_type {
            headers.insert("x-amzn-ErrorType", HeaderValue::from_static(code));
        }
        let body = self.body.map(|b| b.to_string()).unwrap_or_default();
        (self.status, headers, body).into_response()
    }
}

/// A JSON request body; a body that is not the expected JSON answers 400
/// `InvalidRequestException` (and is not recorded as a call).
pub(super) struct AwsJson<T>(pub(super) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AwsJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let bytes = if bytes.is_empty() {
            Bytes::from_static(b"{}")
        } else {
            bytes
        };
        serde_json::from_slice(&bytes)
            .map(AwsJson)
            .map_err(|e| Reply::invalid(format!("Request body is not valid: {e}")).into_response())
    }
}

impl Shared {
    pub(super) fn world_lock(&self) -> std::sync::MutexGuard<'_, World> {
        lock(&self.world)
    }

    /// Records and answers one call: injected faults first, else `act` on the state.
    pub(super) async fn serve(
        &self,
        op: Op,
        subject: Option<&str>,
        act: impl FnOnce(&mut World, &Shared) -> Reply,
    ) -> Reply {
        let at = Instant::now();
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let mut delay = self.config.latency;
        let reply = match self.injected(op, subject, n, &mut delay) {
            Some(reply) => reply,
            None => act(&mut lock(&self.world), self),
        };
        lock(&self.calls).push(Call {
            op,
            subject: subject.map(str::to_owned),
            status: reply.status.as_u16(),
            at,
        });
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        reply
    }

    pub(super) fn injected(
        &self,
        op: Op,
        subject: Option<&str>,
        n: u64,
        delay: &mut Duration,
    ) -> Option<Reply> {
        if let Some(subject) = subject {
            let fault = lock(&self.world).fault(subject, op);
            match fault {
                Some((Fault::ThrottleTimes(times), seen)) if seen < times => {
                    return Some(Reply::throttled(op));
                }
                Some((Fault::Always5xx, _)) => return Some(Reply::internal_failure()),
                Some((Fault::Status(status, code), _)) => {
                    return Some(Reply::scripted(status, code));
                }
                Some((Fault::Hang(d), _)) => *delay += d,
                Some((Fault::HangFirst(times, d), seen)) if seen < times => *delay += d,
                Some((Fault::NotFound, _)) if !op.is_data_plane() => {
                    return Some(Reply::not_found(format!(
                        "Thing {subject} cannot be found."
                    )));
                }
                Some((Fault::LimitExceeded, _))
                    if matches!(op, Op::AddThingToThingGroup | Op::UpdateThingGroupsForThing) =>
                {
                    return Some(Reply::limit_exceeded(subject));
                }
                _ => {}
            }
        }
        if let Some(bucket) = &self.bucket
            && !lock(bucket).take()
        {
            return Some(Reply::throttled(op));
        }
        if self.config.failure_share > 0.0 {
            let r = splitmix64(self.config.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let unit = (r >> 11) as f64 / (1u64 << 53) as f64;
            if unit < self.config.failure_share {
                return Some(Reply::internal_failure());
            }
        }
        None
    }

    pub(super) fn page(
        &self,
        items: Vec<Value>,
        token: Option<&str>,
        max: Option<usize>,
    ) -> Result<(Vec<Value>, Option<String>), Reply> {
        let start = match token {
            None | Some("") => 0,
            Some(t) => t
                .parse::<usize>()
                .map_err(|_| Reply::invalid(format!("Invalid nextToken: {t}")))?,
        };
        let end = items
            .len()
            .min(start + max.unwrap_or(self.config.page_size).max(1));
        let next = (end < items.len()).then(|| end.to_string());
        Ok((items.get(start..end).unwrap_or_default().to_vec(), next))
    }
}

pub(super) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
