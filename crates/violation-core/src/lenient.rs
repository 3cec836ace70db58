//! Tolerant reading of a JSON object: the fields a decision needs are required by the
//! source that needs them; every other field is read when it has the expected shape, and
//! otherwise skipped with a note, so an odd value there never blocks a decision.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::reject::{RejectReason, excerpt};

/// What tolerant decoding skipped or found odd in one record, for its log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Notes(Vec<String>);

impl Notes {
    pub(crate) fn push(&mut self, note: impl Into<String>) {
        // A hostile message must not make the log line huge.
        if self.0.len() < MAX_NOTES {
            self.0.push(excerpt(&note.into(), 300));
        }
    }

    pub(crate) fn into_vec(self) -> Vec<String> {
        self.0
    }

    #[cfg(test)]
    fn as_slice(&self) -> &[String] {
        &self.0
    }
}

const MAX_NOTES: usize = 20;

/// The fields of one JSON object, named by their path for the notes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a> {
    object: &'a Map<String, Value>,
    path: &'a str,
}

impl<'a> Fields<'a> {
    pub(crate) fn root(object: &'a Map<String, Value>) -> Self {
        Fields { object, path: "" }
    }

    /// The raw value; `null` is absent.
    pub(crate) fn raw(&self, key: &str) -> Option<&'a Value> {
        self.object.get(key).filter(|v| !v.is_null())
    }

    /// The field as `T`; absent or `null` is `None`, a value of another shape is noted.
    pub(crate) fn get<T: DeserializeOwned>(&self, key: &str, notes: &mut Notes) -> Option<T> {
        let value = self.raw(key)?;
        match T::deserialize(value) {
            Ok(v) => Some(v),
            Err(e) => {
                notes.push(format!("{}{key}: {e}; ignored", self.prefix()));
                None
            }
        }
    }

    pub(crate) fn text(&self, key: &str, notes: &mut Notes) -> Option<String> {
        self.get(key, notes)
    }

    /// The field as text when it is a string, without a note otherwise: for fields whose
    /// absence or shape the caller reports itself.
    pub(crate) fn str(&self, key: &str) -> Option<&'a str> {
        self.raw(key).and_then(Value::as_str)
    }

    /// A field the decision needs, as text: absent or `null` is `missing`, another shape
    /// is [`RejectReason::FieldNotText`].
    pub(crate) fn required_text(
        &self,
        key: &'static str,
        missing: RejectReason,
    ) -> Result<&'a str, RejectReason> {
        match self.raw(key) {
            None => Err(missing),
            Some(Value::String(text)) => Ok(text),
            Some(other) => Err(RejectReason::FieldNotText {
                field: key,
                found: json_type(other),
            }),
        }
    }

    /// A nested object; another shape is noted.
    pub(crate) fn object(&self, key: &'a str, notes: &mut Notes) -> Option<Fields<'a>> {
        match self.raw(key)? {
            Value::Object(object) => Some(Fields { object, path: key }),
            other => {
                notes.push(format!(
                    "{}{key}: {} instead of an object; ignored",
                    self.prefix(),
                    json_type(other)
                ));
                None
            }
        }
    }

    /// The objects of an array field; elements of another shape are noted and skipped.
    pub(crate) fn objects(&self, key: &'a str, notes: &mut Notes) -> Vec<Fields<'a>> {
        let Some(value) = self.raw(key) else {
            return Vec::new();
        };
        let Some(items) = value.as_array() else {
            notes.push(format!(
                "{}{key}: {} instead of an array; ignored",
                self.prefix(),
                json_type(value)
            ));
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item {
                Value::Object(object) => Some(Fields { object, path: key }),
                other => {
                    notes.push(format!(
                        "{}{key}[{i}]: {} instead of an object; ignored",
                        self.prefix(),
                        json_type(other)
                    ));
                    None
                }
            })
            .collect()
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }

    pub(crate) fn map(&self) -> &'a Map<String, Value> {
        self.object
    }

    fn prefix(&self) -> String {
        if self.path.is_empty() {
            String::new()
        } else {
            format!("{}.", self.path)
        }
    }
}

/// The JSON type of a value, in words.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn notes_are_capped_in_number_and_length() {
        let mut notes = Notes::default();
        for i in 0..MAX_NOTES + 5 {
            notes.push(format!("{i}: {}", "x".repeat(1_000)));
        }
        let notes = notes.into_vec();
        assert_eq!(notes.len(), MAX_NOTES);
        assert!(notes.iter().all(|n| n.chars().count() == 301), "{notes:?}");
        assert!(notes[0].starts_with("0: ") && notes[0].ends_with('…'));
    }

    #[test]
    fn odd_values_are_noted_and_skipped() {
        let value = json!({"a": "text", "n": "12", "o": 3, "list": [{"x": 1}, 7], "z": null});
        let object = value.as_object().expect("object");
        let fields = Fields::root(object);
        let mut notes = Notes::default();
        assert_eq!(fields.text("a", &mut notes).as_deref(), Some("text"));
        assert_eq!(fields.get::<u64>("n", &mut notes), None);
        assert!(fields.object("o", &mut notes).is_none());
        assert_eq!(fields.objects("list", &mut notes).len(), 1);
        assert_eq!(fields.get::<u64>("z", &mut notes), None);
        assert_eq!(fields.text("absent", &mut notes), None);
        assert_eq!(
            notes.as_slice(),
            [
                "n: invalid type: string \"12\", expected u64; ignored",
                "o: a number instead of an object; ignored",
                "list[1]: a number instead of an object; ignored",
            ]
        );
    }
}
