//! Decoding helpers shared by the resource modules: JSON bodies, collections,
//! typed structs that keep their raw JSON, and OpenStack timestamps.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::error::{Error, Target};

/// A typed resource that also keeps the JSON object it was read from.
pub(crate) trait Raw {
    fn set_raw(&mut self, raw: Value);
}

/// Implements [`Raw`] for structs with a `raw: Value` field.
macro_rules! impl_raw {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::openstack::wire::Raw for $t {
            fn set_raw(&mut self, raw: serde_json::Value) {
                self.raw = raw;
            }
        }
    )*};
}
pub(crate) use impl_raw;

/// Parse a JSON body.
pub(crate) fn json<T: DeserializeOwned>(target: &Target, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::Decode {
        target: target.clone(),
        reason: format!("invalid JSON: {e}"),
    })
}

/// The array under `key` of a JSON object.
pub(crate) fn collection(target: &Target, mut v: Value, key: &str) -> Result<Vec<Value>, Error> {
    match v.get_mut(key).map(Value::take) {
        Some(Value::Array(items)) => Ok(items),
        _ => Err(Error::Decode {
            target: target.clone(),
            reason: format!("no {key:?} array in the response"),
        }),
    }
}

/// The object under `key` of a JSON object (`{"server": {..}}`).
pub(crate) fn collection_one(target: &Target, mut v: Value, key: &str) -> Result<Value, Error> {
    match v.get_mut(key).map(Value::take) {
        Some(o @ Value::Object(_)) => Ok(o),
        _ => Err(Error::Decode {
            target: target.clone(),
            reason: format!("no {key:?} object in the response"),
        }),
    }
}

/// `v` as `T`, keeping `v` as its raw JSON.
pub(crate) fn typed<T: DeserializeOwned + Raw>(target: &Target, v: Value) -> Result<T, Error> {
    let mut t: T = serde_json::from_value(v.clone()).map_err(|e| Error::Decode {
        target: target.clone(),
        reason: format!(
            "unexpected object{}: {e}",
            v.get("id")
                .and_then(Value::as_str)
                .map(|id| format!(" {id}"))
                .unwrap_or_default()
        ),
    })?;
    t.set_raw(v);
    Ok(t)
}

/// An OpenStack timestamp: RFC 3339 (`2024-05-01T10:00:00Z`, with an offset
/// or fractional seconds), or a naive UTC time as Nova's `OS-SRV-USG:*` and
/// Cinder's `*_at` fields have (`2024-05-01T10:00:00.000000`, also with a
/// space instead of `T`).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    // "+00:00" without the "T" separator
    DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Serde: an optional timestamp ([`parse_time`]); `null` and `""` are `None`,
/// anything else unparsable is an error.
pub(crate) fn opt_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => parse_time(&s)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("not a timestamp: {s:?}"))),
    }
}

/// Serde: a number that may come as a string (`"512"`) or `""` (Nova's
/// `swap`), as `Option<i64>`.
pub(crate) fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let want = "2024-05-01T10:00:00+00:00";
        for s in [
            "2024-05-01T10:00:00Z",
            "2024-05-01T10:00:00.000000",
            "2024-05-01T10:00:00",
            "2024-05-01 10:00:00",
            "2024-05-01T12:00:00+02:00",
            "2024-05-01T10:00:00.000000+00:00",
            "2024-05-01 10:00:00+00:00",
        ] {
            assert_eq!(
                parse_time(s).map(|t| t.to_rfc3339()).as_deref(),
                Some(want),
                "{s}"
            );
        }
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn typed_keeps_raw() {
        #[derive(serde::Deserialize, Default)]
        struct T {
            id: String,
            #[serde(default, deserialize_with = "opt_time")]
            at: Option<DateTime<Utc>>,
            #[serde(skip)]
            raw: Value,
        }
        impl_raw!(T);
        let target = Target::new("GET", &url::Url::parse("http://x/").unwrap());
        let v = serde_json::json!({"id": "a", "at": "2024-05-01T10:00:00.000000", "extra": 1});
        let t: T = typed(&target, v.clone()).unwrap();
        assert_eq!(t.id, "a");
        assert!(t.at.is_some());
        assert_eq!(t.raw, v);
        let e = typed::<T>(&target, serde_json::json!({"id": "b", "at": "never"}))
            .err()
            .unwrap();
        assert!(e.to_string().contains("unexpected object b"), "{e}");
        let t: T = typed(&target, serde_json::json!({"id": "c", "at": null})).unwrap();
        assert!(t.at.is_none());
    }
}
