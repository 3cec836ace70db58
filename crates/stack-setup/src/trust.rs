//! Whom the custom resource answers: requests of its own stack (`STACK_ID`) whose
//! `ResponseURL` is CloudFormation's presigned S3 URL. Anything else gets no call and no
//! answer: an answer PUT to an arbitrary URL would make the function a request forger, and a
//! request of another stack is not this function's to act on.

use http::Uri;

use crate::request::Envelope;
use crate::respond::redact;

/// The host of every CloudFormation response URL starts with this, the bucket's name
/// (`cloudformation-custom-resource-response-<region without dashes>`).
const RESPONSE_BUCKET_PREFIX: &str = "cloudformation-custom-resource-response-";

/// Who may be answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// `STACK_ID`; `None`: the configuration is unusable, and no request is acted on (a
    /// request with a genuine response URL is still answered FAILED).
    pub stack_id: Option<String>,
    /// `TEST_ONLY_RESPONSE_URL_PREFIX`: the tests' local receiver.
    pub test_response_url_prefix: Option<String>,
}

/// The request is not answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    #[error("request of stack {given:?} ignored: this function serves stack {own}")]
    OtherStack { given: String, own: String },
    #[error("ResponseURL {url} ignored: {problem}")]
    ResponseUrl { url: String, problem: String },
}

impl Trust {
    /// Whether `envelope` may be answered (and, when the stack is known, acted on).
    pub fn check(&self, envelope: &Envelope) -> Result<(), Untrusted> {
        self.check_response_url(&envelope.response_url)?;
        match &self.stack_id {
            Some(own) if *own != envelope.stack_id => Err(Untrusted::OtherStack {
                given: envelope.stack_id.clone(),
                own: own.clone(),
            }),
            _ => Ok(()),
        }
    }

    fn check_response_url(&self, url: &str) -> Result<(), Untrusted> {
        let test_override = self
            .test_response_url_prefix
            .as_deref()
            .is_some_and(|prefix| url.starts_with(prefix));
        if test_override {
            return Ok(());
        }
        cloudformation_response_url(url).map_err(|problem| Untrusted::ResponseUrl {
            url: redact(url),
            problem,
        })
    }
}

/// `https://cloudformation-custom-resource-response-<region>.s3[.-]<...>.amazonaws.com[.cn]/...`
/// on the default port, without user information: the presigned S3 URLs CloudFormation
/// sends (virtual-hosted style, global or regional S3 endpoint, the China partition).
pub fn cloudformation_response_url(url: &str) -> Result<(), String> {
    let uri: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err("only https:// answers are sent".into());
    }
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    if authority.contains('@') || uri.port().is_some_and(|p| p.as_u16() != 443) {
        return Err("expected no user information and the default port".into());
    }
    let host = uri.host().unwrap_or_default().to_ascii_lowercase();
    let service = host
        .strip_prefix(RESPONSE_BUCKET_PREFIX)
        .and_then(|rest| rest.split_once('.'))
        .filter(|(region, _)| {
            !region.is_empty() && region.chars().all(|c| c.is_ascii_alphanumeric())
        })
        .map(|(_, service)| service);
    let s3 = service.is_some_and(|s| {
        (s.starts_with("s3.") || s.starts_with("s3-"))
            && (s.ends_with(".amazonaws.com") || s.ends_with(".amazonaws.com.cn"))
    });
    if !s3 {
        return Err(format!(
            "not CloudFormation's response bucket (expected a host {RESPONSE_BUCKET_PREFIX}<region>.s3...amazonaws.com)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const STACK: &str = "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/guid";

    fn envelope(url: &str, stack: &str) -> Envelope {
        Envelope::read(&json!({"ResponseURL": url, "StackId": stack})).unwrap()
    }

    fn trust() -> Trust {
        Trust {
            stack_id: Some(STACK.into()),
            test_response_url_prefix: None,
        }
    }

    #[test]
    fn cloudformation_s_response_urls_are_accepted() {
        for url in [
            "https://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com/arn%3Aaws/x?X-Amz-Signature=a",
            "https://cloudformation-custom-resource-response-eucentral1.s3.eu-central-1.amazonaws.com/x?s=1",
            "https://cloudformation-custom-resource-response-uswest2.s3-us-west-2.amazonaws.com/x",
            "https://cloudformation-custom-resource-response-cnnorth1.s3.cn-north-1.amazonaws.com.cn/x",
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com:443/x",
        ] {
            assert_eq!(cloudformation_response_url(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn other_urls_are_refused() {
        for url in [
            "http://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com/x",
            "https://attacker.example/x",
            "https://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com.attacker.example/x",
            "https://cloudformation-custom-resource-response-.s3.amazonaws.com/x",
            "https://my-bucket.s3.amazonaws.com/cloudformation-custom-resource-response-x",
            "https://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com:8443/x",
            "https://u@cloudformation-custom-resource-response-euwest1.s3.amazonaws.com/x",
            "https://cloudformation-custom-resource-response-euwest1.evil.amazonaws.com/x",
            "http://127.0.0.1:8080/r",
        ] {
            assert!(cloudformation_response_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn only_its_own_stack_is_answered() {
        let url = "https://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com/x";
        assert_eq!(trust().check(&envelope(url, STACK)), Ok(()));
        let other = "arn:aws:cloudformation:eu-west-1:123456789012:stack/other/guid";
        assert!(matches!(
            trust().check(&envelope(url, other)),
            Err(Untrusted::OtherStack { .. })
        ));
        assert!(matches!(
            trust().check(&envelope(url, "")),
            Err(Untrusted::OtherStack { .. })
        ));
    }

    #[test]
    fn the_test_prefix_admits_only_what_starts_with_it_and_keeps_the_signature_out() {
        let t = Trust {
            test_response_url_prefix: Some("http://127.0.0.1:".into()),
            ..trust()
        };
        assert_eq!(t.check(&envelope("http://127.0.0.1:9/r", STACK)), Ok(()));
        let refused = t
            .check(&envelope(
                "http://10.0.0.1:9/r?X-Amz-Signature=secret",
                STACK,
            ))
            .unwrap_err();
        assert!(!refused.to_string().contains("secret"), "{refused}");
        assert!(
            trust()
                .check(&envelope("http://127.0.0.1:9/r", STACK))
                .is_err()
        );
    }
}
