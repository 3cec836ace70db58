//! The answer to CloudFormation: an HTTP `PUT` of the JSON body to the request's
//! `ResponseURL` (a presigned S3 URL), with an empty `Content-Type` (the URL is signed
//! without one). Sent with hyper 1 and rustls 0.23 (aws-lc-rs), the stack the AWS SDK
//! already links, so the binary carries one TLS implementation.

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

/// Sends a response body to a `ResponseURL`.
pub trait Responder: Send + Sync {
    /// PUT `body` to `url`, retrying transient failures until `until`. Returns the number of
    /// attempts it took.
    fn put<'a>(
        &'a self,
        url: &'a str,
        body: Vec<u8>,
        until: Instant,
    ) -> BoxFuture<'a, Result<u32, RespondError>>;
}

/// The response could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespondError {
    #[error("ResponseURL {url} is not a usable URL: {problem}")]
    BadUrl { url: String, problem: String },
    #[error("PUT to {url} was refused with HTTP {status} after {attempts} attempt(s): {body}")]
    Refused {
        url: String,
        status: u16,
        attempts: u32,
        body: String,
    },
    #[error("PUT to {url} failed after {attempts} attempt(s): {problem}")]
    Failed {
        url: String,
        attempts: u32,
        problem: String,
    },
}

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts including the first.
    pub attempts: u32,
    /// One attempt's limit (connect, send, read the status).
    pub attempt_timeout: Duration,
    /// Wait before the second attempt; doubled for each further one.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            attempt_timeout: Duration::from_secs(8),
            backoff: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// The longest [`HttpResponder::put`] can take; the handler keeps this much of the
    /// function's time for the answer.
    pub fn worst_case(&self) -> Duration {
        let waits: Duration = (0..self.attempts.saturating_sub(1))
            .map(|n| self.backoff.saturating_mul(1 << n.min(16)))
            .sum();
        self.attempt_timeout.saturating_mul(self.attempts) + waits
    }
}

/// [`Responder`] on hyper.
pub struct HttpResponder {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    policy: RetryPolicy,
}

impl HttpResponder {
    /// HTTPS with the system's root certificates (and plain HTTP, for local tests). Without
    /// readable root certificates the client is still built, every HTTPS answer then fails
    /// with a certificate error (logged); this is reported once here too.
    pub fn new(policy: RetryPolicy) -> Result<HttpResponder, rustls::Error> {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let builder = match HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider.clone())
        {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "no root certificates could be loaded: HTTPS responses will fail");
                let config = rustls::ClientConfig::builder_with_provider(provider.into())
                    .with_safe_default_protocol_versions()?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                HttpsConnectorBuilder::new().with_tls_config(config)
            }
        };
        let connector = builder.https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new())
            // One answer per URL, and Lambda freezes the process between invocations: a
            // pooled connection would only be a stale one.
            .pool_max_idle_per_host(0)
            .build(connector);
        Ok(HttpResponder { client, policy })
    }

    async fn attempt(&self, uri: &Uri, body: &[u8]) -> Result<StatusCode, (String, Option<u16>)> {
        let request = Request::builder()
            .method(Method::PUT)
            .uri(uri.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static(""))
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| (e.to_string(), None))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| (mitigation_aws::errors::error_chain(&e), None))?;
        let status = response.status();
        if status.is_success() {
            return Ok(status);
        }
        let text = match response.into_body().collect().await {
            Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
            Err(e) => format!("(body unreadable: {e})"),
        };
        Err((
            violation_core::reject::excerpt(text.trim(), 300),
            Some(status.as_u16()),
        ))
    }
}

impl Responder for HttpResponder {
    fn put<'a>(
        &'a self,
        url: &'a str,
        body: Vec<u8>,
        until: Instant,
    ) -> BoxFuture<'a, Result<u32, RespondError>> {
        Box::pin(async move {
            let shown = redact(url);
            let uri: Uri =
                url.parse()
                    .map_err(|e: http::uri::InvalidUri| RespondError::BadUrl {
                        url: shown.clone(),
                        problem: e.to_string(),
                    })?;
            if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.host().is_none() {
                return Err(RespondError::BadUrl {
                    url: shown,
                    problem: "expected an https:// URL".into(),
                });
            }
            let mut problem = String::from("no time left to send it");
            let mut wait = self.policy.backoff;
            for attempt in 1..=self.policy.attempts.max(1) {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(RespondError::Failed {
                        url: shown,
                        attempts: attempt - 1,
                        problem: format!("{problem}; no time left for another attempt"),
                    });
                }
                let limit = self.policy.attempt_timeout.min(left);
                match tokio::time::timeout(limit, self.attempt(&uri, &body)).await {
                    Ok(Ok(status)) => {
                        tracing::info!(url = %shown, status = status.as_u16(), attempt, "response delivered");
                        return Ok(attempt);
                    }
                    Ok(Err((text, Some(status)))) if !retryable(status) => {
                        return Err(RespondError::Refused {
                            url: shown,
                            status,
                            attempts: attempt,
                            body: text,
                        });
                    }
                    Ok(Err((text, Some(status)))) => {
                        problem = format!("HTTP {status}: {text}");
                    }
                    Ok(Err((text, None))) => problem = text,
                    Err(_) => problem = format!("no answer within {} ms", limit.as_millis()),
                }
                tracing::warn!(url = %shown, attempt, problem = %problem, "response not delivered yet");
                if attempt < self.policy.attempts {
                    let pause = wait.min(until.saturating_duration_since(Instant::now()));
                    tokio::time::sleep(pause).await;
                    wait = wait.saturating_mul(2);
                }
            }
            Err(RespondError::Failed {
                url: shown,
                attempts: self.policy.attempts.max(1),
                problem,
            })
        })
    }
}

fn retryable(status: u16) -> bool {
    status >= 500 || status == 429 || status == 408
}

/// The URL without its query string: the presigned signature stays out of the logs.
pub fn redact(url: &str) -> String {
    url.split_once('?').map_or(url, |(base, _)| base).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_never_reaches_the_logs() {
        assert_eq!(
            redact("https://b.s3.amazonaws.com/arn%3Aaws/x?X-Amz-Signature=secret"),
            "https://b.s3.amazonaws.com/arn%3Aaws/x"
        );
        assert_eq!(redact("http://127.0.0.1:1/r"), "http://127.0.0.1:1/r");
    }

    #[test]
    fn server_errors_and_throttling_are_retried_client_errors_are_not() {
        assert!(retryable(500) && retryable(503) && retryable(429));
        assert!(!retryable(403) && !retryable(400) && !retryable(404));
    }

    #[test]
    fn the_default_policy_fits_well_inside_a_lambda_timeout() {
        let p = RetryPolicy::default();
        // 4 x 8 s + 0.5 + 1 + 2 s
        assert_eq!(p.worst_case(), Duration::from_millis(35_500));
    }
}
