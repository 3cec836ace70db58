//! Does an IoT policy document pin the MQTT client id to the thing name? A thing-group
//! policy, the quarantine's, binds only a connection whose client id is the thing name; a
//! device policy that lets a certificate connect as any client id lets a quarantined device
//! reconnect as `foo`, unrestricted.

use serde_json::Value;

/// The resource a pinned `iot:Connect` names, after `...:client/`.
pub const THING_NAME_CLIENT: &str = "client/${iot:Connection.Thing.ThingName}";

/// What one policy document says about `iot:Connect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pinning {
    /// Every connect it allows is as the thing (or a Deny forbids any other client id).
    Pinned,
    /// It allows connecting with these other client ids.
    Unpinned(Vec<String>),
    /// It allows no `iot:Connect` at all.
    NoConnect,
}

/// Reads `document` (the policy's JSON text).
pub fn pinning(document: &str) -> Result<Pinning, String> {
    let doc: Value =
        serde_json::from_str(document).map_err(|e| format!("the document is not JSON: {e}"))?;
    let statements = match &doc["Statement"] {
        Value::Array(list) => list.clone(),
        Value::Object(_) => vec![doc["Statement"].clone()],
        _ => return Err("the document has no Statement".into()),
    };
    let mut allowed = Vec::new();
    let mut denied_others = false;
    for statement in &statements {
        if !names_connect(&statement["Action"]) {
            continue;
        }
        match statement["Effect"].as_str() {
            Some("Allow") => allowed.extend(strings(&statement["Resource"])),
            Some("Deny") => {
                denied_others |= strings(&statement["NotResource"])
                    .iter()
                    .all(|r| is_thing_client(r))
                    && !strings(&statement["NotResource"]).is_empty();
            }
            _ => {}
        }
    }
    if allowed.is_empty() {
        return Ok(Pinning::NoConnect);
    }
    let others: Vec<String> = allowed
        .into_iter()
        .filter(|r| !is_thing_client(r))
        .collect();
    Ok(if others.is_empty() || denied_others {
        Pinning::Pinned
    } else {
        Pinning::Unpinned(others)
    })
}

fn is_thing_client(resource: &str) -> bool {
    resource.ends_with(&format!(":{THING_NAME_CLIENT}"))
}

fn names_connect(action: &Value) -> bool {
    strings(action).iter().any(|a| {
        matches!(
            a.to_ascii_lowercase().as_str(),
            "iot:connect" | "iot:*" | "*"
        )
    })
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINNED: &str = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:eu-west-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
        {"Effect":"Allow","Action":"iot:Publish","Resource":"*"}]}"#;

    #[test]
    fn connect_only_as_the_thing_is_pinned() {
        assert_eq!(pinning(PINNED), Ok(Pinning::Pinned));
    }

    #[test]
    fn any_client_id_is_not() {
        let doc = r#"{"Statement":{"Effect":"Allow","Action":["iot:Connect","iot:Publish"],"Resource":"arn:aws:iot:eu-west-1:123456789012:client/*"}}"#;
        assert_eq!(
            pinning(doc),
            Ok(Pinning::Unpinned(vec![
                "arn:aws:iot:eu-west-1:123456789012:client/*".into()
            ]))
        );
        let star = r#"{"Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#;
        assert!(matches!(pinning(star), Ok(Pinning::Unpinned(_))));
    }

    #[test]
    fn a_deny_of_every_other_client_id_pins_a_broad_allow() {
        let doc = r#"{"Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"},
            {"Effect":"Deny","Action":"iot:Connect","NotResource":"arn:aws:iot:eu-west-1:1:client/${iot:Connection.Thing.ThingName}"}]}"#;
        assert_eq!(pinning(doc), Ok(Pinning::Pinned));
    }

    #[test]
    fn no_connect_and_garbage_are_told_apart() {
        let doc = r#"{"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*"}]}"#;
        assert_eq!(pinning(doc), Ok(Pinning::NoConnect));
        assert!(pinning("not json").is_err());
        assert!(pinning("{}").is_err());
    }
}
