//! Hashes and generated names, as the real controllers make them.
//!
//! The real controllers hash a pod template with 32-bit FNV-1a and write the decimal
//! digits of the hash through the "safe" alphabet (no vowels, no confusable digits). The
//! real pod-template-hash hashes Go's `spew` dump of the template; here the canonical JSON
//! (sorted keys, nulls and empty maps / lists dropped) is hashed instead, so names differ
//! from a real cluster's but are just as stable.

use serde_json::{Map, Value};

/// The alphabet of generated names and hashes.
const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// 32-bit FNV-1a.
pub(crate) fn fnv1a32(data: &[u8]) -> u32 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    data.iter()
        .fold(OFFSET, |h, b| (h ^ u32::from(*b)).wrapping_mul(PRIME))
}

/// Maps every byte of `s` into the safe alphabet.
pub(crate) fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| char::from(SAFE[usize::from(b) % SAFE.len()]))
        .collect()
}

/// The hash of a JSON value: FNV-1a over its canonical form, safe-encoded decimal digits.
pub(crate) fn hash_value(v: &Value) -> String {
    let canonical = normalize(v).to_string();
    safe_encode(&fnv1a32(canonical.as_bytes()).to_string())
}

/// `n` random characters of the safe alphabet (the suffix of generated names).
pub(crate) fn random_suffix(n: usize) -> String {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if out.len() == n {
                break;
            }
            out.push(char::from(SAFE[usize::from(*b) % SAFE.len()]));
        }
    }
    out
}

/// Drops nulls and empty maps / lists, recursively: the semantic equality the real
/// controllers use treats a missing field, a null and an empty collection alike.
pub(crate) fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let n = normalize(v);
                if !is_empty(&n) {
                    out.insert(k.clone(), n);
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A pod template without `label` (the hash label the controllers add), normalized, for
/// comparing templates the way the controllers do.
pub(crate) fn template_without_label(template: &Value, label: &str) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t
        .get_mut("metadata")
        .and_then(|m| m.get_mut("labels"))
        .and_then(Value::as_object_mut)
    {
        labels.remove(label);
    }
    normalize(&t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn hashes_are_safe_and_stable() {
        let t = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        let h = hash_value(&t);
        assert!(!h.is_empty() && h.len() <= 10);
        assert!(h.bytes().all(|b| SAFE.contains(&b)));
        let same = json!({"spec": {"containers": [{"image": "x:1", "name": "a"}]}, "metadata": {"labels": {"app": "web"}, "annotations": {}}});
        assert_eq!(h, hash_value(&same));
        assert_ne!(h, hash_value(&json!({"spec": {}})));
        assert_eq!(random_suffix(5).len(), 5);
    }

    #[test]
    fn template_comparison_ignores_hash_label() {
        let a = json!({"metadata": {"labels": {"app": "w", "pod-template-hash": "x"}}});
        let b = json!({"metadata": {"labels": {"app": "w"}}});
        assert_eq!(
            template_without_label(&a, "pod-template-hash"),
            template_without_label(&b, "pod-template-hash")
        );
    }
}
