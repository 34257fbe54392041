//! Text from outside (a backend's error body, a check's output) made safe to show: secret
//! values taken out, and long text cut to an excerpt.
//!
//! Backends quote what an API answered so a person can act on it, but an answer may echo a
//! request (a connection string, a token) and a health script may print its credentials.
//! Everything that reaches an error message, an event, a journal or a report from outside
//! goes through [`excerpt`] or [`scrub`] first.

use crate::revision::{is_secret_key, REDACTED};

/// The longest excerpt of a backend's answer that an error message quotes.
pub const EXCERPT_CHARS: usize = 200;

/// Replaces every occurrence of each of `secrets` in `text` with [`REDACTED`]. Values shorter
/// than 4 characters are left alone (redacting `"1"` everywhere would make text unreadable and
/// hides nothing).
pub fn scrub<S: AsRef<str>>(text: &str, secrets: &[S]) -> String {
    let mut values: Vec<&str> = secrets
        .iter()
        .map(AsRef::as_ref)
        .filter(|s| s.chars().count() >= 4)
        .collect();
    // Longest first, so a secret that contains another is taken out whole.
    values.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for v in values {
        if out.contains(v) {
            out = out.replace(v, REDACTED);
        }
    }
    out
}

/// A short, single-line, secret-free excerpt of `text` (an HTTP body, a command's output) of
/// at most `max` characters: whitespace runs collapsed, HTML tags dropped, the values of
/// secret-looking keys (`"password": "..."`, `token=...`, `Authorization: ...`) and
/// token-looking words (JWTs, long base64 or hex runs) replaced by [`REDACTED`], and an
/// ellipsis where it was cut.
pub fn excerpt(text: &str, max: usize) -> String {
    let plain = strip_tags(text);
    let words: Vec<&str> = plain.split_whitespace().collect();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut redact_next = false;
    for w in words {
        if redact_next {
            out.push(REDACTED.to_string());
            // `Authorization: Bearer <token>`: the scheme is followed by the secret itself.
            redact_next = w.ends_with(':')
                || w == "="
                || ["bearer", "basic", "token", "digest"].contains(
                    &w.trim_matches(|c: char| "\"'".contains(c))
                        .to_ascii_lowercase()
                        .as_str(),
                );
            continue;
        }
        let (word, next) = redact_word(w);
        redact_next = next;
        out.push(word);
    }
    let joined = out.join(" ");
    truncate(&joined, max)
}

/// `url` with its password, if any, replaced by [`REDACTED`]; an unparsable URL that may hold
/// one is not echoed at all. For names and messages that show a URL a user gave
/// (`https://user:pass@host/health`).
#[cfg(feature = "http")]
pub fn url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            if u.set_password(Some(REDACTED)).is_err() {
                return "<a URL with a password>".to_string();
            }
            u.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) if url.contains('@') => "<an unparsable URL>".to_string(),
        Err(_) => url.to_string(),
    }
}

/// Cuts `text` to at most `max` characters, on a character boundary, ending in `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", keep.trim_end())
}

/// Drops `<...>` tags (an HTML error page), keeping the text between them, except the text
/// of `<style>` and `<script>` blocks, which is not what a person reads on the page.
fn strip_tags(text: &str) -> String {
    if !text.contains('<') || !text.contains('>') {
        return text.to_string();
    }
    let mut page = text.to_string();
    for tag in ["style", "script"] {
        let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
        while let Some(start) = page.to_ascii_lowercase().find(&open) {
            let end = page.to_ascii_lowercase()[start..]
                .find(&close)
                .map_or(page.len(), |e| start + e + close.len());
            page.replace_range(start..end, " ");
        }
    }
    let mut out = String::with_capacity(page.len());
    let mut in_tag = false;
    for c in page.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// One word, redacted where it carries a secret; the flag says the next word is the value of
/// a secret-looking key (`password: hunter2`, `Authorization: Bearer x`).
fn redact_word(w: &str) -> (String, bool) {
    // scheme://user:password@host
    if let Some(i) = w.find("://") {
        let rest = &w[i + 3..];
        let auth_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..auth_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                let cut = i + 3 + colon + 1;
                return (
                    format!("{}{REDACTED}{}", &w[..cut], &w[i + 3 + at..]),
                    false,
                );
            }
        }
    }
    // key=value, key:value, "key":"value"
    for sep in ['=', ':'] {
        if let Some((k, v)) = w.split_once(sep) {
            let key = k.trim_matches(|c: char| !c.is_alphanumeric() && c != '_' && c != '-');
            if !key.is_empty() && is_secret_key(key) {
                if v.trim_matches(|c: char| "\"',;{}".contains(c)).is_empty() {
                    // The value is the next word.
                    return (w.to_string(), true);
                }
                return (format!("{k}{sep}{REDACTED}"), false);
            }
        }
    }
    let bare = w.trim_matches(|c: char| "\"',;{}()[]".contains(c));
    let key = bare.trim_end_matches(':');
    if bare.ends_with(':') && is_secret_key(key) {
        return (w.to_string(), true);
    }
    if looks_like_token(bare) {
        return (REDACTED.to_string(), false);
    }
    (w.to_string(), false)
}

/// JWTs, and long runs of base64 or hex that carry no spaces or slashes (paths and URLs are
/// kept: they are what a person needs to read).
fn looks_like_token(w: &str) -> bool {
    if w.starts_with("eyJ") && w.matches('.').count() >= 2 {
        return true;
    }
    if w.len() < 32 || w.contains('/') || w.contains(':') {
        return false;
    }
    let b64 = w
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+=_-".contains(c));
    let digits = w.chars().filter(char::is_ascii_digit).count();
    let letters = w.chars().filter(char::is_ascii_alphabetic).count();
    b64 && digits > 0 && letters > 0
}

/// An answer's body as at most [`EXCERPT_CHARS`] characters on one line, secret-free
/// ([`excerpt`]): a body may echo the request's credentials or carry tokens. `(empty)` for a
/// blank body. What HTTP checks and metric sources quote of what a server answered.
pub fn body_excerpt(text: &str) -> String {
    // Compact JSON is one long word to `redact::excerpt`; spaced out, its secret-looking
    // keys and token-looking values are seen and taken out.
    let spaced = serde_json::from_str::<serde_json::Value>(text)
        .is_ok_and(|v| v.is_object() || v.is_array())
        .then(|| spaced_json(text));
    let out = excerpt(spaced.as_deref().unwrap_or(text), EXCERPT_CHARS);
    if out.is_empty() {
        "(empty)".to_string()
    } else {
        out
    }
}

/// `{"a":1,"b":[2]}` as `{ "a": 1, "b": [ 2 ] }`: the same JSON text in the same order,
/// with spaces between its tokens (strings are left as they are).
fn spaced_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            ',' | ':' | '{' | '[' => {
                out.push(c);
                out.push(' ');
            }
            '}' | ']' => {
                out.push(' ');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_takes_out_every_value_longest_first() {
        let s = scrub(
            "token=s3cr3t-abc and s3cr3t-abc-long; ok 1",
            &["s3cr3t-abc", "s3cr3t-abc-long", "1"],
        );
        assert_eq!(s, "token=<redacted> and <redacted>; ok 1");
    }

    #[test]
    fn excerpt_of_an_html_error_page_is_short_and_plain() {
        let page = format!(
            "<html>\n<head><title>500 Internal Server Error</title><style>body {{ color: red }}</style><SCRIPT>var x = 1;</SCRIPT></head>\n<body>{}</body></html>",
            "<p>upstream failed</p>\n".repeat(40)
        );
        let e = excerpt(&page, EXCERPT_CHARS);
        assert!(e.chars().count() <= EXCERPT_CHARS, "{e}");
        assert!(
            e.starts_with("500 Internal Server Error upstream failed"),
            "{e}"
        );
        assert!(!e.contains('<') || e.contains(REDACTED), "{e}");
        assert!(e.ends_with('…'), "{e}");
    }

    #[test]
    fn excerpt_redacts_secret_looking_values_and_tokens() {
        let body = r#"{"message": "bad request", "password": "hunter2-hunter2", "db_password":"pw-xyz-123", "Authorization: Bearer abcdef-secret", "authorization": "Bearer quoted-secret"} token=t0k3n-v4lue id eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig AKIAIOSFODNN7EXAMPLEKEYABCDEFGH12345"#;
        let e = excerpt(body, 1000);
        for secret in [
            "hunter2-hunter2",
            "pw-xyz-123",
            "t0k3n-v4lue",
            "eyJhbGciOiJIUzI1NiJ9",
            "AKIAIOSFODNN7EXAMPLEKEYABCDEFGH12345",
        ] {
            assert!(!e.contains(secret), "{secret} in {e}");
        }
        assert!(e.contains("bad request"), "{e}");
        assert!(!e.contains("abcdef-secret"), "{e}");
        assert!(!e.contains("quoted-secret"), "{e}");
        let e = excerpt(
            "cannot connect to postgres://app:pw-9f8e7d@db.internal:5432/app",
            200,
        );
        assert_eq!(
            e,
            "cannot connect to postgres://app:<redacted>@db.internal:5432/app"
        );
    }

    #[test]
    fn excerpt_keeps_paths_arns_and_plain_words() {
        let e = excerpt(
            "arn:aws:ecs:us-east-1:123456789012:task-definition/api:14 not found at /v1/services",
            EXCERPT_CHARS,
        );
        assert_eq!(
            e,
            "arn:aws:ecs:us-east-1:123456789012:task-definition/api:14 not found at /v1/services"
        );
    }

    #[cfg(feature = "http")]
    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(
            url("https://ops:hunter2@api.example.com/health"),
            "https://ops:%3Credacted%3E@api.example.com/health"
        );
        assert_eq!(
            url("https://api.example.com/health"),
            "https://api.example.com/health"
        );
        assert_eq!(url("not a url @ hunter2"), "<an unparsable URL>");
    }

    #[test]
    fn truncate_cuts_on_a_character_boundary() {
        assert_eq!(truncate("ééééé", 3), "éé…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
