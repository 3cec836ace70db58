//! The environment of a spawned function.

/// Environment variables for a spawned function, in order; setting a variable again replaces it.
#[derive(Debug, Clone, Default)]
pub struct Env(Vec<(String, String)>);

impl Env {
    pub fn set(mut self, name: &str, value: impl Into<String>) -> Env {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_owned(), value.into()));
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// The region every local client and function uses.
pub const REGION: &str = "us-east-1";

/// A function talking to local AWS stand-ins: `endpoint` for every service when given (else
/// the caller sets `AWS_ENDPOINT_URL_*`), fake static credentials, the region, no instance
/// metadata or profile files, one attempt per call (`AWS_MAX_ATTEMPTS`; set it again to
/// allow retries) and JSON logs.
pub fn local_aws_env(endpoint: Option<&str>) -> Env {
    let env = Env::default()
        .set("AWS_ACCESS_KEY_ID", "AKIDLOCALTESTING0000")
        .set("AWS_SECRET_ACCESS_KEY", "local-testing-secret-key")
        .set("AWS_SESSION_TOKEN", "local-testing-session-token")
        .set("AWS_REGION", REGION)
        .set("AWS_DEFAULT_REGION", REGION)
        .set("AWS_EC2_METADATA_DISABLED", "true")
        .set("AWS_CONFIG_FILE", "/dev/null")
        .set("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .set("AWS_MAX_ATTEMPTS", "1")
        .set("AWS_LAMBDA_LOG_FORMAT", "JSON");
    match endpoint {
        Some(url) => env.set("AWS_ENDPOINT_URL", url),
        None => env,
    }
}
