//! The adapters on the real AWS SDK clients, their construction, and error classification.
//! Each adapter is one call (or one paged listing) on a client built once at start-up.

use std::error::Error as StdError;
use std::fmt::Debug;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_sdk_iot::error::ProvideErrorMetadata;
#[cfg(feature = "data-plane")]
use aws_sdk_iotdataplane::primitives::Blob;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use futures::future::BoxFuture;
use violation_core::{Action, ThingName};

use mitigation::{
    ActionError, ActiveViolations, Applied, AwsSettings, MitigationAction, MitigationKind, Retry,
    RetryMode,
};

#[cfg(feature = "data-plane")]
/// The shadow document that tells the device it is quarantined (or no longer).
pub fn shadow_document(action: Action) -> &'static [u8] {
    match action {
        Action::Quarantine => br#"{"state":{"desired":{"quarantine":true}}}"#,
        Action::Release => br#"{"state":{"desired":{"quarantine":false}}}"#,
    }
}

/// Load the shared SDK configuration once: credentials, region, retries, timeouts, and
/// endpoint overrides (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_IOT`,
/// `AWS_ENDPOINT_URL_IOT_DATA_PLANE`, or `settings.endpoint_url`).
pub async fn load_sdk_config(settings: &AwsSettings) -> SdkConfig {
    sdk_config_loader(settings).load().await
}

/// The standard AWS configuration chain (environment, profiles, SSO) with `settings`'
/// timeouts and endpoint; a command line adds its region or profile before loading it.
/// Retries are aws-config's own (`AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE`, the profile) unless
/// `settings` set them: then both come from `settings`, the unset one at the SDK's default.
pub fn sdk_config_loader(settings: &AwsSettings) -> ConfigLoader {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(
            settings
                .attempt_timeout
                .min(std::time::Duration::from_secs(2)),
        )
        .operation_attempt_timeout(settings.attempt_timeout)
        .operation_timeout(settings.operation_timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
    if settings.max_attempts.is_some() || settings.retry_mode.is_some() {
        let retry = match settings.retry_mode {
            Some(RetryMode::Adaptive) => RetryConfig::adaptive(),
            Some(RetryMode::Standard) | None => RetryConfig::standard(),
        };
        // The SDK's own default when only the mode is set.
        let attempts = settings
            .max_attempts
            .unwrap_or(RetryConfig::standard().max_attempts());
        loader = loader.retry_config(retry.with_max_attempts(attempts));
    }
    match &settings.endpoint_url {
        Some(url) => loader.endpoint_url(url),
        None => loader,
    }
}

/// True when the data plane's endpoint is already set by configuration, so that
/// DescribeEndpoint is not needed.
pub fn data_plane_endpoint_configured(sdk: &SdkConfig) -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    sdk.endpoint_url().is_some() || set("AWS_ENDPOINT_URL_IOT_DATA_PLANE")
}

/// The account's data-plane endpoint (`iot:Data-ATS`), looked up once at start-up.
pub async fn describe_data_endpoint(iot: &aws_sdk_iot::Client) -> Result<String, ActionError> {
    let out = iot
        .describe_endpoint()
        .endpoint_type("iot:Data-ATS")
        .send()
        .await
        .map_err(|e| classify("DescribeEndpoint", "-", e))?;
    match out.endpoint_address() {
        Some(address) if !address.is_empty() => Ok(format!("https://{address}")),
        _ => Err(ActionError::retryable(
            "DescribeEndpoint",
            "-",
            "EmptyEndpoint",
            "DescribeEndpoint returned no endpointAddress",
        )
        .with_hint(
            "set IOT_DATA_ENDPOINT to the output of `aws iot describe-endpoint --endpoint-type iot:Data-ATS`",
        )),
    }
}

#[cfg(feature = "data-plane")]
/// A data-plane client on `endpoint` (or on the configured endpoint when `None`).
pub fn data_plane_client(sdk: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_iotdataplane::Client {
    let mut builder = aws_sdk_iotdataplane::config::Builder::from(sdk);
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_iotdataplane::Client::from_conf(builder.build())
}

/// Quarantine = AddThingToThingGroup, release = RemoveThingFromThingGroup, on a static group.
pub struct ThingGroupMembership {
    client: aws_sdk_iot::Client,
    group: String,
}

impl ThingGroupMembership {
    pub fn new(client: aws_sdk_iot::Client, group: impl Into<String>) -> Self {
        ThingGroupMembership {
            client,
            group: group.into(),
        }
    }
}

impl MitigationAction for ThingGroupMembership {
    fn name(&self) -> &'static str {
        MitigationKind::ThingGroup.name()
    }

    fn apply<'a>(
        &'a self,
        action: Action,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Applied, ActionError>> {
        // The two calls take the same parameters; their builders are different types.
        macro_rules! membership {
            ($call:ident, $operation:literal) => {
                self.client
                    .$call()
                    .thing_group_name(&self.group)
                    .thing_name(thing.as_str())
                    .send()
                    .await
                    .map(|_| Applied::Done)
                    .map_err(|e| classify($operation, thing.as_str(), e))
            };
        }
        Box::pin(async move {
            let result = match action {
                Action::Quarantine => membership!(add_thing_to_thing_group, "AddThingToThingGroup"),
                Action::Release => {
                    membership!(remove_thing_from_thing_group, "RemoveThingFromThingGroup")
                }
            };
            result.map_err(|e| with_group_hint(e, &self.group))
        })
    }
}

fn with_group_hint(mut e: ActionError, group: &str) -> ActionError {
    if e.code == "ResourceNotFoundException" {
        e.hint = Some(format!(
            "check that the thing is registered (aws iot describe-thing --thing-name {}) and that the static thing group {group} exists (aws iot describe-thing-group --thing-group-name {group}); redrive the record once fixed",
            e.thing
        ));
    }
    e
}

/// Quarantine = desired `quarantine: true` in the thing's shadow, release = `false`.
#[cfg(feature = "data-plane")]
pub struct ShadowFlag {
    client: aws_sdk_iotdataplane::Client,
    shadow_name: Option<String>,
}

#[cfg(feature = "data-plane")]
impl ShadowFlag {
    pub fn new(client: aws_sdk_iotdataplane::Client, shadow_name: Option<String>) -> Self {
        ShadowFlag {
            client,
            shadow_name,
        }
    }
}

#[cfg(feature = "data-plane")]
impl MitigationAction for ShadowFlag {
    fn name(&self) -> &'static str {
        MitigationKind::Shadow.name()
    }

    fn apply<'a>(
        &'a self,
        action: Action,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Applied, ActionError>> {
        Box::pin(async move {
            self.client
                .update_thing_shadow()
                .thing_name(thing.as_str())
                .set_shadow_name(self.shadow_name.clone())
                .payload(Blob::new(shadow_document(action)))
                .send()
                .await
                .map(|_| Applied::Done)
                .map_err(|e| classify("UpdateThingShadow", thing.as_str(), e))
        })
    }
}

/// Cut a quarantined thing's live MQTT connection (DeleteConnection on its client id, which
/// by convention is the thing name), so that its next connect is authorized under the
/// quarantine policy. The persistent session is kept (the device gets its shadow delta when
/// it reconnects). A client that is not connected is already where the quarantine wants it.
#[cfg(feature = "data-plane")]
pub struct ConnectionCut {
    client: aws_sdk_iotdataplane::Client,
}

#[cfg(feature = "data-plane")]
impl ConnectionCut {
    pub fn new(client: aws_sdk_iotdataplane::Client) -> Self {
        ConnectionCut { client }
    }
}

#[cfg(feature = "data-plane")]
impl MitigationAction for ConnectionCut {
    fn name(&self) -> &'static str {
        MitigationKind::Disconnect.name()
    }

    fn performs(&self, action: Action) -> bool {
        MitigationKind::Disconnect.performs(action)
    }

    fn apply<'a>(
        &'a self,
        _action: Action,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Applied, ActionError>> {
        Box::pin(async move {
            let result = self
                .client
                .delete_connection()
                .client_id(thing.as_str())
                .send()
                .await;
            match result {
                Ok(_) => Ok(Applied::Done),
                Err(e) => match classify("DeleteConnection", thing.as_str(), e) {
                    not_connected if not_connected.code == "ResourceNotFoundException" => {
                        tracing::info!(thing = %thing, "client not connected: nothing to cut");
                        Ok(Applied::Done)
                    }
                    other => Err(other),
                },
            }
        })
    }
}

/// ListActiveViolations for one thing.
pub struct DeviceDefenderViolations {
    client: aws_sdk_iot::Client,
}

impl DeviceDefenderViolations {
    pub fn new(client: aws_sdk_iot::Client) -> Self {
        DeviceDefenderViolations { client }
    }
}

/// Pages read before giving up on listing; a thing with more active violations than this
/// stays quarantined anyway.
const MAX_VIOLATION_PAGES: usize = 10;

impl ActiveViolations for DeviceDefenderViolations {
    fn active_violation_ids<'a>(
        &'a self,
        thing: &'a ThingName,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        Box::pin(async move {
            let mut ids = Vec::new();
            let mut pages = Paging::new(MAX_VIOLATION_PAGES);
            while let Some(token) = pages.next_page() {
                let page = self
                    .client
                    .list_active_violations()
                    .thing_name(thing.as_str())
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| classify("ListActiveViolations", thing.as_str(), e))?;
                ids.extend(
                    page.active_violations()
                        .iter()
                        .map(|v| v.violation_id().unwrap_or("(no id)").to_owned()),
                );
                pages.answered(page.next_token());
            }
            Ok(ids)
        })
    }
}

/// The token loop of a paged listing: the first page, then the page at each next token a
/// page answers, until a page answers none (absent or empty) or `max_pages` pages are read:
/// `while let Some(token) = pages.next_page()`, read the page at `token`, then
/// `pages.answered(page.next_token())`.
#[derive(Debug)]
pub struct Paging {
    left: usize,
    token: Option<String>,
    ended: bool,
}

impl Paging {
    pub fn new(max_pages: usize) -> Self {
        Paging {
            left: max_pages,
            token: None,
            ended: false,
        }
    }

    /// `Some(token)` when there is a page to read, at `token` (`None` for the first page);
    /// `None` when the listing is read, or `max_pages` pages are.
    pub fn next_page(&mut self) -> Option<Option<String>> {
        if self.ended || self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(self.token.take())
    }

    /// The next token the page just read answered; none, or an empty one, ends the listing.
    pub fn answered(&mut self, next_token: Option<&str>) {
        match next_token {
            Some(t) if !t.is_empty() => self.token = Some(t.to_owned()),
            _ => self.ended = true,
        }
    }
}

/// Codes that a later attempt can get past.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "InternalFailureException",
    "InternalFailure",
    "InternalException",
    "InternalServerException",
    "RequestTimeout",
    "RequestTimeoutException",
    "VersionConflictException",
    "ConflictException",
];

/// Classify a failed SDK call by its AWS error code (IoT throttles with HTTP 400, so the
/// status alone would mislead); the HTTP status only decides for codes not listed.
pub fn classify<E>(
    operation: &'static str,
    thing: &str,
    err: SdkError<E, HttpResponse>,
) -> ActionError
where
    E: ProvideErrorMetadata + StdError + Debug + Send + Sync + 'static,
{
    let (retry, code, message) = match &err {
        SdkError::TimeoutError(_) => (
            Retry::Retryable,
            "Timeout".to_owned(),
            "the call timed out after the SDK's retries".to_owned(),
        ),
        SdkError::DispatchFailure(d) => (
            Retry::Retryable,
            if d.is_timeout() {
                "Timeout"
            } else {
                "DispatchFailure"
            }
            .to_owned(),
            format!("the request could not be sent: {}", source_chain(&err)),
        ),
        SdkError::ResponseError(_) => (
            Retry::Retryable,
            "ResponseError".to_owned(),
            format!("the response could not be read: {}", source_chain(&err)),
        ),
        SdkError::ConstructionFailure(_) => (
            Retry::Permanent,
            "ConstructionFailure".to_owned(),
            format!("the request could not be built: {}", source_chain(&err)),
        ),
        _ => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            let code = err.code().unwrap_or("Unknown").to_owned();
            let retry = if RETRYABLE_CODES.contains(&code.as_str())
                || (err.code().is_none() && status.is_none_or(|s| s >= 500))
                || (!is_known_permanent(&code) && status.is_some_and(|s| s >= 500 || s == 429))
            {
                Retry::Retryable
            } else {
                Retry::Permanent
            };
            let message = err.message().map(str::to_owned).unwrap_or_else(|| {
                format!(
                    "HTTP status {}",
                    status.map_or("?".into(), |s| s.to_string())
                )
            });
            (retry, code, message)
        }
    };
    let hint = if code == "InvalidRequestException" && is_group_limit(&message) {
        hint_for(operation, "LimitExceededException", thing)
    } else {
        hint_for(operation, &code, thing)
    };
    ActionError {
        hint,
        ..ActionError::new(
            operation,
            thing,
            retry,
            code,
            violation_core::reject::excerpt(&message, 300),
        )
    }
}

/// IoT reports the 10-groups-per-thing limit as an InvalidRequestException.
fn is_group_limit(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("group") && (m.contains("more than 10") || m.contains("limit"))
}

fn is_known_permanent(code: &str) -> bool {
    matches!(
        code,
        "ResourceNotFoundException"
            | "InvalidRequestException"
            | "LimitExceededException"
            | "UnauthorizedException"
            | "AccessDeniedException"
            | "ForbiddenException"
            | "MethodNotAllowedException"
            | "RequestEntityTooLargeException"
            | "UnsupportedDocumentEncodingException"
    )
}

fn hint_for(operation: &str, code: &str, thing: &str) -> Option<String> {
    Some(match code {
        "ThrottlingException" | "TooManyRequestsException" => format!(
            "{operation} is throttled: the record will be retried; if this persists, lower the event source's maximum concurrency or MAX_CONCURRENCY"
        ),
        "LimitExceededException" => format!(
            "thing {thing} is probably already in 10 thing groups: remove it from one, then redrive the record from the dead-letter queue"
        ),
        "UnauthorizedException" | "AccessDeniedException" | "ForbiddenException" => format!(
            "the function's role is not allowed to call {operation} on thing {thing}: fix the IAM policy, then redrive the record"
        ),
        "ResourceNotFoundException" => format!(
            "thing {thing} is not registered: it may be an unregistered client id or was deleted; quarantine its certificate by hand if it is still connecting"
        ),
        "InvalidRequestException" => format!(
            "AWS refused the request for thing {thing}: read the message, fix the cause, then redrive the record"
        ),
        _ => return None,
    })
}

fn source_chain(err: &dyn StdError) -> String {
    let mut parts = Vec::new();
    let mut current = err.source();
    while let Some(e) = current {
        parts.push(e.to_string());
        current = e.source();
    }
    if parts.is_empty() {
        err.to_string()
    } else {
        parts.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::Paging;

    /// The tokens a listing is read at, when the pages answer `answers` in turn.
    fn tokens_read(max_pages: usize, answers: &[Option<&str>]) -> Vec<Option<String>> {
        let mut pages = Paging::new(max_pages);
        let mut read = Vec::new();
        let mut answers = answers.iter();
        while let Some(token) = pages.next_page() {
            read.push(token);
            pages.answered(answers.next().copied().flatten());
        }
        read
    }

    #[test]
    fn paging_follows_tokens_until_a_page_answers_none_or_an_empty_one() {
        assert_eq!(tokens_read(10, &[None]), [None]);
        assert_eq!(
            tokens_read(10, &[Some("a"), Some("b"), None]),
            [None, Some("a".into()), Some("b".into())]
        );
        assert_eq!(
            tokens_read(10, &[Some("a"), Some(""), Some("c")]),
            [None, Some("a".into())]
        );
    }

    #[test]
    fn paging_stops_after_max_pages() {
        let endless = [Some("t"); 20];
        assert_eq!(tokens_read(3, &endless).len(), 3);
        assert_eq!(tokens_read(0, &endless), Vec::<Option<String>>::new());
    }
}
