//! The SDK configuration: the standard AWS chain (environment, profiles, SSO), with the
//! command line's --region, --profile and --endpoint-url on top, and the functions' retry
//! and timeout settings.

use aws_config::{Region, SdkConfig};
use mitigation::AwsSettings;

/// Load the configuration once. Fails (a configuration error) when no region is known.
pub async fn load(
    settings: &AwsSettings,
    region: Option<String>,
    profile: Option<String>,
) -> Result<SdkConfig, String> {
    let mut loader = mitigation_aws::sdk::sdk_config_loader(settings);
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = region {
        loader = loader.region(Region::new(region));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(
            "no AWS region: pass --region, set AWS_REGION, or give the profile a region".into(),
        );
    }
    Ok(sdk)
}
