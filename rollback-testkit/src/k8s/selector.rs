//! Label selectors (string and `LabelSelector` forms) and field selectors.

use serde_json::{Map, Value};

use super::resources::{lookup, Kind};

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    /// `key in (values)`, `key=value`, `key==value`.
    In(String, Vec<String>),
    /// `key notin (values)`, `key!=value`.
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
    /// `key>n`.
    Gt(String, i64),
    /// `key<n`.
    Lt(String, i64),
}

impl Requirement {
    fn matches(&self, labels: &Map<String, Value>) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        match self {
            Requirement::In(k, vs) => get(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|v| !vs.iter().any(|x| x == v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
            Requirement::Gt(k, n) => get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            Requirement::Lt(k, n) => get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
        }
    }

    fn to_text(&self) -> String {
        match self {
            Requirement::In(k, vs) if vs.len() == 1 => format!("{k}={}", vs[0]),
            Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
            Requirement::NotIn(k, vs) if vs.len() == 1 => format!("{k}!={}", vs[0]),
            Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
            Requirement::Exists(k) => k.clone(),
            Requirement::DoesNotExist(k) => format!("!{k}"),
            Requirement::Gt(k, n) => format!("{k}>{n}"),
            Requirement::Lt(k, n) => format!("{k}<{n}"),
        }
    }
}

/// A label selector: requirements that must all hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Selector {
    reqs: Vec<Requirement>,
}

impl Selector {
    /// Parses the string form (`app=web,tier in (a,b),!canary`).
    pub(crate) fn parse(text: &str) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        for part in split_top_level(text)? {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(Selector { reqs })
    }

    /// Converts a `LabelSelector` object (`matchLabels`, `matchExpressions`).
    pub(crate) fn from_label_selector(sel: &Value) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        if let Some(ml) = sel["matchLabels"].as_object() {
            for (k, v) in ml {
                let v = v
                    .as_str()
                    .ok_or_else(|| format!("matchLabels value of {k} must be a string"))?;
                reqs.push(Requirement::In(k.clone(), vec![v.to_string()]));
            }
        }
        if let Some(exprs) = sel["matchExpressions"].as_array() {
            for e in exprs {
                let key = e["key"]
                    .as_str()
                    .ok_or("matchExpressions entries need a key")?
                    .to_string();
                let values: Vec<String> = e["values"]
                    .as_array()
                    .map(|vs| {
                        vs.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                let req = match e["operator"].as_str() {
                    Some("In") if !values.is_empty() => Requirement::In(key, values),
                    Some("NotIn") if !values.is_empty() => Requirement::NotIn(key, values),
                    Some("Exists") => Requirement::Exists(key),
                    Some("DoesNotExist") => Requirement::DoesNotExist(key),
                    Some(op @ ("In" | "NotIn")) => {
                        return Err(format!("operator {op} needs at least one value"))
                    }
                    other => return Err(format!("{other:?} is not a valid selector operator")),
                };
                reqs.push(req);
            }
        }
        Ok(Selector { reqs })
    }

    /// Whether the selector has no requirement (matches everything).
    pub(crate) fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub(crate) fn matches(&self, labels: &Map<String, Value>) -> bool {
        self.reqs.iter().all(|r| r.matches(labels))
    }

    /// Whether the object's `metadata.labels` satisfy the selector.
    pub(crate) fn matches_object(&self, obj: &Value) -> bool {
        match obj["metadata"]["labels"].as_object() {
            Some(l) => self.matches(l),
            None => self.matches(&Map::new()),
        }
    }

    /// The string form (what a Scale's `status.selector` shows).
    pub(crate) fn to_text(&self) -> String {
        let mut parts: Vec<String> = self.reqs.iter().map(Requirement::to_text).collect();
        parts.sort();
        parts.join(",")
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced parenthesis in selector {text:?}"));
                }
            }
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced parenthesis in selector {text:?}"));
    }
    out.push(&text[start..]);
    Ok(out)
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_values(text: &str) -> Result<Vec<String>, String> {
    let t = text.trim();
    let inner = t
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesized value list, found {t:?}"))?;
    let mut vals = Vec::new();
    for v in inner.split(',') {
        let v = v.trim();
        if !valid_value(v) {
            return Err(format!("invalid label value: {v:?}"));
        }
        vals.push(v.to_string());
    }
    Ok(vals)
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let bad_key = |k: &str| format!("invalid label key {k:?}");
    if let Some(k) = part.strip_prefix('!') {
        let k = k.trim();
        return if valid_key(k) {
            Ok(Requirement::DoesNotExist(k.to_string()))
        } else {
            Err(bad_key(k))
        };
    }
    // Set-based: `key in (..)`, `key notin (..)`.
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let rest = words[1].trim_start();
        for (op, notin) in [("notin", true), ("in", false)] {
            if let Some(vals) = rest.strip_prefix(op) {
                if vals.trim_start().starts_with('(') {
                    let key = words[0];
                    if !valid_key(key) {
                        return Err(bad_key(key));
                    }
                    let values = parse_values(vals)?;
                    return Ok(if notin {
                        Requirement::NotIn(key.to_string(), values)
                    } else {
                        Requirement::In(key.to_string(), values)
                    });
                }
            }
        }
    }
    for (op, kind) in [("==", 0), ("!=", 1), ("=", 0), (">", 2), ("<", 3)] {
        if let Some((k, v)) = part.split_once(op) {
            let (k, v) = (k.trim(), v.trim());
            if !valid_key(k) {
                return Err(bad_key(k));
            }
            return match kind {
                0 | 1 => {
                    if !valid_value(v) {
                        return Err(format!("invalid label value: {v:?}"));
                    }
                    let vals = vec![v.to_string()];
                    Ok(if kind == 0 {
                        Requirement::In(k.to_string(), vals)
                    } else {
                        Requirement::NotIn(k.to_string(), vals)
                    })
                }
                _ => {
                    let n: i64 = v
                        .parse()
                        .map_err(|_| format!("{v:?} is not an integer for {op}"))?;
                    Ok(if kind == 2 {
                        Requirement::Gt(k.to_string(), n)
                    } else {
                        Requirement::Lt(k.to_string(), n)
                    })
                }
            };
        }
    }
    if valid_key(part) {
        Ok(Requirement::Exists(part.to_string()))
    } else {
        Err(bad_key(part))
    }
}

/// A field selector: `metadata.name=x,metadata.namespace!=y`.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses the string form; only fields the resource supports are accepted (as the real
    /// server, which answers 400 for others).
    pub(crate) fn parse(text: &str, kind: Kind) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            let field = field.trim();
            if !kind.supports_field(field) {
                return Err(format!("field label not supported: {field}"));
            }
            terms.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector { terms })
    }

    /// A selector for one name.
    pub(crate) fn name(name: &str) -> FieldSelector {
        FieldSelector {
            terms: vec![("metadata.name".into(), true, name.into())],
        }
    }

    /// Whether the object matches every term.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(field, eq, want)| {
            let have = match lookup(obj, field) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            };
            (have == *want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn string_selectors() {
        let l = labels(json!({"app": "web", "tier": "front", "n": "5"}));
        let ok = |s: &str| Selector::parse(s).unwrap().matches(&l);
        assert!(ok("app=web"));
        assert!(ok("app==web"));
        assert!(!ok("app!=web"));
        assert!(ok("app!=db"));
        assert!(ok("missing!=x"));
        assert!(ok("tier in (front, back)"));
        assert!(!ok("tier notin (front)"));
        assert!(ok("missing notin (x)"));
        assert!(ok("app"));
        assert!(!ok("!app"));
        assert!(ok("!canary"));
        assert!(ok("app=web,tier in (front,back),!canary"));
        assert!(!ok("app=web,tier=back"));
        assert!(ok("n>4"));
        assert!(!ok("n<4"));
        assert!(ok(""));
        assert!(Selector::parse("app in (a").is_err());
        assert!(Selector::parse("a b c").is_err());
    }

    #[test]
    fn label_selector_objects() {
        let s = Selector::from_label_selector(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]
        }))
        .unwrap();
        assert!(s.matches(&labels(json!({"app": "web", "tier": "a"}))));
        assert!(!s.matches(&labels(json!({"app": "web"}))));
        assert_eq!(s.to_text(), "app=web,tier in (a,b)");
    }

    #[test]
    fn field_selectors() {
        let obj = json!({"metadata": {"name": "a", "namespace": "ns"}});
        let f = FieldSelector::parse("metadata.name=a,metadata.namespace!=x", Kind::Deployment)
            .unwrap();
        assert!(f.matches(&obj));
        assert!(!FieldSelector::parse("metadata.name==b", Kind::Deployment)
            .unwrap()
            .matches(&obj));
        assert!(FieldSelector::parse("spec.replicas=1", Kind::Deployment).is_err());
    }
}
