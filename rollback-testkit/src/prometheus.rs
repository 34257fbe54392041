//! A scripted Prometheus HTTP API on 127.0.0.1, for tests of what watches metrics
//! (`rollback watch`): each query answers the next entry of its script at each request
//! (the last one repeats), as a flat series over the range asked for, so that a test
//! moves the numbers across a threshold exactly when it means to.
//!
//! Only `GET /api/v1/query_range` is served (what a decision asks); anything else is a
//! 404 in Prometheus's error shape.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use chrono::DateTime;

use crate::form_decode as decode;

/// What one request of a query is answered with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    /// One series (`{service="app"}`) holding this value over the whole range.
    Value(f64),
    /// A successful answer with no series (the metric is gone, no traffic).
    NoData,
    /// HTTP 503, as a Prometheus that is down behind its proxy answers.
    Unavailable,
}

#[derive(Debug, Default)]
struct State {
    scripts: BTreeMap<String, Vec<Answer>>,
    served: BTreeMap<String, usize>,
}

/// The server; it stops when the test process ends.
#[derive(Debug, Clone)]
pub struct ScriptedPrometheus {
    base_url: String,
    state: Arc<Mutex<State>>,
}

impl ScriptedPrometheus {
    /// Listens on a free port of 127.0.0.1 and answers each query of `scripts` with its
    /// answers in turn; a query without a script has no data.
    pub fn start(
        scripts: impl IntoIterator<Item = (String, Vec<Answer>)>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State {
            scripts: scripts.into_iter().collect(),
            served: BTreeMap::new(),
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &state);
                });
            }
        });
        Ok(ScriptedPrometheus { base_url, state })
    }

    /// `http://127.0.0.1:PORT`, what a `{kind: prometheus, url: ...}` source takes.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// How many times `query` was asked.
    pub fn served(&self, query: &str) -> usize {
        self.state
            .lock()
            .map(|s| s.served.get(query).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params: BTreeMap<String, String> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    let (status, body) = if path == "/api/v1/query_range" {
        answer(&params, state)
    } else {
        (
            "404 Not Found",
            r#"{"status":"error","errorType":"not_found","error":"not served"}"#.to_string(),
        )
    };
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

fn answer(params: &BTreeMap<String, String>, state: &Mutex<State>) -> (&'static str, String) {
    let bad = |why: &str| {
        (
            "400 Bad Request",
            serde_json::json!({"status": "error", "errorType": "bad_data", "error": why})
                .to_string(),
        )
    };
    let (Some(q), Some(start), Some(end), Some(step)) = (
        params.get("query"),
        params.get("start").and_then(|t| time(t)),
        params.get("end").and_then(|t| time(t)),
        params.get("step").and_then(|s| s.parse::<f64>().ok()),
    ) else {
        return bad("query, start, end and step are needed");
    };
    if step <= 0.0 || end < start {
        return bad("a positive step and start <= end are needed");
    }
    let next = {
        let Ok(mut s) = state.lock() else {
            return bad("the script's lock is poisoned");
        };
        let i = s.served.get(q).copied().unwrap_or(0);
        *s.served.entry(q.clone()).or_insert(0) += 1;
        s.scripts
            .get(q)
            .and_then(|script| script.get(i).or(script.last()))
            .copied()
            .unwrap_or(Answer::NoData)
    };
    let result = match next {
        Answer::Unavailable => {
            return (
                "503 Service Unavailable",
                r#"{"status":"error","errorType":"unavailable","error":"scripted outage"}"#
                    .to_string(),
            )
        }
        Answer::NoData => Vec::new(),
        Answer::Value(v) => {
            let mut values = Vec::new();
            let mut t = start;
            while t <= end + 1e-9 {
                values.push(serde_json::json!([t, v.to_string()]));
                t += step;
            }
            vec![serde_json::json!({"metric": {"service": "app"}, "values": values})]
        }
    };
    (
        "200 OK",
        serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": result}})
            .to_string(),
    )
}

/// An RFC 3339 time or Unix seconds, as Prometheus takes them, in Unix seconds.
fn time(t: &str) -> Option<f64> {
    t.parse::<f64>().ok().or_else(|| {
        DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|d| d.timestamp_millis() as f64 / 1000.0)
    })
}
