//! Where alerts may come from: the account and region the functions act in, and the
//! Security Hub products whose findings are trusted.
//!
//! Anyone in the account with `securityhub:BatchImportFindings` can import a finding
//! naming any thing, and an aggregating administrator account receives its members'
//! findings: a finding is only acted on when its product is listed here (or an analyst sent
//! it to the custom action), and only for this account and region.

use std::fmt;

use crate::reject::excerpt;

/// The account and region the functions act in; `None` is not checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalScope {
    /// The 12-digit account id (from the function's ARN or a setting).
    pub account: Option<String>,
    /// The region code, e.g. `eu-west-1` (from `AWS_REGION`).
    pub region: Option<String>,
}

impl LocalScope {
    pub fn new(account: Option<&str>, region: Option<&str>) -> Self {
        let set = |v: Option<&str>| {
            v.map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        LocalScope {
            account: set(account),
            region: set(region),
        }
    }

    /// Whether nothing is checked.
    pub fn is_open(&self) -> bool {
        self.account.is_none() && self.region.is_none()
    }

    /// Whether a resource of this account and region is outside the scope (a part that
    /// is not checked always matches; an absent part never matches a checked one).
    pub fn excludes(&self, account: Option<&str>, region: Option<&str>) -> bool {
        let differs = |expected: &Option<String>, found: Option<&str>| {
            expected.as_deref().is_some_and(|e| found != Some(e))
        };
        differs(&self.account, account) || differs(&self.region, region)
    }

    /// `account 123456789012 in region eu-west-1`, as far as it is known.
    pub fn describe(&self) -> String {
        describe(self.account.as_deref(), self.region.as_deref())
    }
}

/// `account A in region R`, for messages; unknown parts are left out.
pub(crate) fn describe(account: Option<&str>, region: Option<&str>) -> String {
    let account = account.map(|a| format!("account {}", excerpt(a, 20)));
    let region = region.map(|r| format!("region {}", excerpt(r, 30)));
    match (account, region) {
        (Some(a), Some(r)) => format!("{a} in {r}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => "no account or region".to_owned(),
    }
}

/// One source of Security Hub findings that may make the functions act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingOrigin {
    /// `custom-action`: findings an analyst sent to the custom action, whatever their product
    /// (the analyst chose them; the stack's EventBridge rule only forwards its own action).
    CustomAction,
    /// `COMPANY/PRODUCT`, e.g. `aws/iot-device-defender-detect`: that product in any
    /// partition and region (the region is checked on its own when known).
    Product { company: String, product: String },
    /// One exact ProductArn, e.g. `arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default`.
    ProductArn(String),
}

/// The Security Hub origins trusted by default (`SECURITY_HUB_PRODUCTS`): AWS IoT Device
/// Defender's own Detect and Audit findings, and the custom action.
pub const DEFAULT_SECURITY_HUB_PRODUCTS: [&str; 3] = [
    "aws/iot-device-defender-detect",
    "aws/iot-device-defender-audit",
    "custom-action",
];

/// Why an entry of the Security Hub product list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{entry:?} is not a Security Hub product: expected custom-action, COMPANY/PRODUCT (e.g. aws/iot-device-defender-detect) or a ProductArn (arn:PARTITION:securityhub:REGION:ACCOUNT:product/COMPANY/PRODUCT)"
)]
pub struct InvalidOrigin {
    pub entry: String,
}

impl FindingOrigin {
    pub fn parse(entry: &str) -> Result<Self, InvalidOrigin> {
        let entry = entry.trim();
        let invalid = || InvalidOrigin {
            entry: excerpt(entry, 200),
        };
        if entry == "custom-action" {
            return Ok(FindingOrigin::CustomAction);
        }
        if entry.starts_with("arn:") {
            return ProductArn::parse(entry)
                .map(|_| FindingOrigin::ProductArn(entry.to_owned()))
                .ok_or_else(invalid);
        }
        let id = entry.strip_prefix("product/").unwrap_or(entry);
        let (company, product) = id.split_once('/').ok_or_else(invalid)?;
        if !is_product_part(company) || !is_product_part(product) {
            return Err(invalid());
        }
        Ok(FindingOrigin::Product {
            company: company.to_owned(),
            product: product.to_owned(),
        })
    }

    fn allows(&self, arn: &ProductArn<'_>, raw: &str) -> bool {
        match self {
            FindingOrigin::CustomAction => false,
            FindingOrigin::Product { company, product } => {
                arn.company == company && arn.product == product
            }
            FindingOrigin::ProductArn(exact) => exact == raw,
        }
    }
}

impl fmt::Display for FindingOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FindingOrigin::CustomAction => f.write_str("custom-action"),
            FindingOrigin::Product { company, product } => write!(f, "{company}/{product}"),
            FindingOrigin::ProductArn(arn) => f.write_str(arn),
        }
    }
}

fn is_product_part(part: &str) -> bool {
    !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The Security Hub origins whose findings may make the functions act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityHubProducts(Vec<FindingOrigin>);

impl Default for SecurityHubProducts {
    fn default() -> Self {
        Self::from_comma_list(&DEFAULT_SECURITY_HUB_PRODUCTS.join(","))
            .unwrap_or(SecurityHubProducts(Vec::new()))
    }
}

impl SecurityHubProducts {
    /// Parse `aws/iot-device-defender-detect, custom-action, arn:...`. No entry at all
    /// trusts no Security Hub finding.
    pub fn from_comma_list(list: &str) -> Result<Self, InvalidOrigin> {
        list.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(FindingOrigin::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(SecurityHubProducts)
    }

    pub fn origins(&self) -> &[FindingOrigin] {
        &self.0
    }

    /// Whether findings sent to the custom action are trusted whatever their product.
    pub fn trusts_custom_action(&self) -> bool {
        self.0.contains(&FindingOrigin::CustomAction)
    }

    /// Whether findings of this ProductArn are trusted.
    pub fn allows_product(&self, product_arn: &str) -> bool {
        ProductArn::parse(product_arn)
            .is_some_and(|arn| self.0.iter().any(|o| o.allows(&arn, product_arn)))
    }
}

/// The parts of `arn:PARTITION:securityhub:REGION:ACCOUNT:product/COMPANY/PRODUCT` (the
/// account is empty for AWS's own products).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProductArn<'a> {
    pub region: &'a str,
    pub company: &'a str,
    pub product: &'a str,
}

impl<'a> ProductArn<'a> {
    pub(crate) fn parse(arn: &'a str) -> Option<Self> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let ["arn", _partition, "securityhub", region, _account, resource] = parts[..] else {
            return None;
        };
        let (company, product) = resource.strip_prefix("product/")?.split_once('/')?;
        (is_product_part(company) && is_product_part(product)).then_some(ProductArn {
            region,
            company,
            product,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DETECT: &str = "arn:aws:securityhub:us-east-1::product/aws/iot-device-defender-detect";
    const OWN: &str = "arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default";

    #[test]
    fn by_default_device_defender_and_the_custom_action_are_trusted() {
        let products = SecurityHubProducts::default();
        assert!(products.allows_product(DETECT));
        assert!(products.allows_product(
            "arn:aws-us-gov:securityhub:us-gov-west-1::product/aws/iot-device-defender-audit"
        ));
        assert!(products.trusts_custom_action());
        for other in [
            OWN,
            "arn:aws:securityhub:us-east-1::product/aws/guardduty",
            "arn:aws:securityhub:us-east-1::product/aws/iot-device-defender-detect-x",
            "arn:aws:iot:us-east-1::product/aws/iot-device-defender-detect",
            "aws/iot-device-defender-detect",
            "",
        ] {
            assert!(!products.allows_product(other), "{other}");
        }
    }

    #[test]
    fn a_list_names_products_arns_or_the_custom_action() {
        let list = SecurityHubProducts::from_comma_list(&format!(
            " product/aws/iot-device-defender-audit , {OWN}"
        ))
        .expect("valid");
        assert!(list.allows_product(OWN));
        assert!(!list.allows_product(&OWN.replace("eu-west-1", "us-east-1")));
        assert!(!list.allows_product(DETECT));
        assert!(!list.trusts_custom_action());
        assert_eq!(
            list.origins()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["aws/iot-device-defender-audit", OWN]
        );
        let none = SecurityHubProducts::from_comma_list(" , ").expect("empty");
        assert!(none.origins().is_empty());
        for bad in [
            "guardduty",
            "arn:aws:securityhub:r:a:action/custom/X",
            "a/b/c",
            "a/ b",
        ] {
            assert_eq!(
                SecurityHubProducts::from_comma_list(bad),
                Err(InvalidOrigin {
                    entry: bad.to_owned()
                }),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_scope_checks_only_what_it_knows() {
        let open = LocalScope::new(None, Some(" "));
        assert!(open.is_open());
        assert!(!open.excludes(Some("999999999999"), None));
        let scope = LocalScope::new(Some("123456789012"), Some("eu-west-1"));
        assert!(!scope.excludes(Some("123456789012"), Some("eu-west-1")));
        assert!(scope.excludes(Some("999999999999"), Some("eu-west-1")));
        assert!(scope.excludes(Some("123456789012"), Some("us-east-1")));
        assert!(scope.excludes(None, Some("eu-west-1")));
        assert_eq!(scope.describe(), "account 123456789012 in region eu-west-1");
        let region_only = LocalScope::new(None, Some("eu-west-1"));
        assert!(!region_only.excludes(Some("999999999999"), Some("eu-west-1")));
        assert_eq!(region_only.describe(), "region eu-west-1");
    }
}
