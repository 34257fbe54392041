//! Maps (env, headers) whose secret values are written as [`REDACTED`]: shared by the
//! command and HTTP checks.

use std::collections::BTreeMap;

use serde::Serializer;

use crate::revision::REDACTED;

/// Keys whose value is the [`REDACTED`] placeholder although they look secret: the secret
/// was dropped when the check was serialized.
pub(super) fn redacted_placeholders<'a>(
    map: &'a BTreeMap<String, String>,
    is_secret: fn(&str) -> bool,
) -> impl Iterator<Item = &'a String> + 'a {
    map.iter()
        .filter(move |(k, v)| is_secret(k) && v.as_str() == REDACTED)
        .map(|(k, _)| k)
}

/// Serializes `map` with the values of keys that `is_secret` flags replaced by [`REDACTED`].
pub(super) fn serialize_redacted<S: Serializer>(
    map: &BTreeMap<String, String>,
    is_secret: fn(&str) -> bool,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_map(map.iter().map(|(k, v)| {
        let v = if is_secret(k) { REDACTED } else { v.as_str() };
        (k, v)
    }))
}
