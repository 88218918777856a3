//! [`Config`]: the manifest's `[components.config]` table, handed to the
//! component's `init` as JSON.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Error;

/// A component's configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    values: Map<String, Value>,
}

impl Config {
    /// Parses the JSON object the host passes to `init`.
    pub fn parse(json: &str) -> Result<Self, Error> {
        if json.trim().is_empty() {
            return Ok(Self::default());
        }
        match serde_json::from_str(json) {
            Ok(Value::Object(values)) => Ok(Self { values }),
            Ok(other) => Err(Error::bad_request(format!("config must be a JSON object, got {other}"))),
            Err(e) => Err(Error::bad_request(format!("config is not valid JSON: {e}"))),
        }
    }

    /// A value by key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// A string value by key; `None` if absent or not a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// An integer value by key; `None` if absent or not an integer.
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    /// A boolean value by key; `None` if absent or not a boolean.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    /// The whole table as a typed struct; the error names the problem.
    pub fn parse_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_value(Value::Object(self.values.clone()))
            .map_err(|e| Error::bad_request(format!("invalid config: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_typed_values() {
        let c = Config::parse(r#"{"greeting":"hi","n":3,"on":true}"#).expect("valid");
        assert_eq!(c.get_str("greeting"), Some("hi"));
        assert_eq!(c.get_i64("n"), Some(3));
        assert_eq!(c.get_bool("on"), Some(true));
        assert_eq!(c.get_str("n"), None);
    }

    #[test]
    fn empty_and_invalid() {
        assert_eq!(Config::parse("").expect("empty ok"), Config::default());
        assert!(Config::parse("[1]").is_err());
        assert!(Config::parse("{").is_err());
    }
}
