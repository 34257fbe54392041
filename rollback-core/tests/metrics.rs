#![allow(clippy::unwrap_used)]
//! Metric series, threshold checks and runbook 004's decision tree, against recorded
//! Prometheus `query_range` answers (`tests/fixtures/metrics/`, 14:20 to 14:30 UTC on
//! 2025-11-30, one point every 30 s) and a small Prometheus API server on 127.0.0.1.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rollback_core::metrics::{
    decide, parse_response, Decision, DecisionInputs, DecisionPolicy, Recommendation, Series,
    Signal,
};

/// 2025-11-30T14:30:00Z, the end of every recording.
const NOW: i64 = 1_764_513_000;

/// `NOW + secs`.
fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(NOW + secs, 0).unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/metrics/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A recorded answer as series.
fn series(name: &str) -> Vec<Series> {
    parse_response("prometheus/recorded", name, &fixture(name)).unwrap()
}

fn inputs(error_rate: &str, latency: &str) -> DecisionInputs {
    DecisionInputs::new(at(0))
        .error_rate(series(error_rate))
        .p95_latency_seconds(series(latency))
}

fn decide_default(inputs: &DecisionInputs) -> Decision {
    decide(inputs, &DecisionPolicy::default())
}

#[test]
fn policy_defaults_are_the_runbook_s() {
    let p = DecisionPolicy::default();
    assert_eq!(p.error_rate_above, 0.05);
    assert_eq!(p.latency_p95_above_secs, 2.0);
    assert_eq!(p.sustained_for, Duration::from_secs(300));
    assert_eq!(p.slo_burn_rate_above, 1.0);
    assert_eq!(p.rollback_within, Duration::from_secs(600));
}

#[test]
fn error_rate_above_5_percent_for_5_minutes_rolls_back_now() {
    let d = decide_default(
        &inputs("error_rate_sustained.json", "latency_p95_ok.json")
            .slo_burn_rate(series("slo_burn_rate_ok.json")),
    );
    assert_eq!(d.action, Recommendation::RollbackNow, "{d:#?}");
    assert_eq!(d.reasons.len(), 1, "{d:#?}");
    assert_eq!(
        d.reasons[0],
        "error rate above 5% for 5m (2025-11-30T14:25:00Z to 2025-11-30T14:30:00Z): \
         {service=\"checkout\"} breached in all 11 samples (min 6.64%, max 7.32%, last 6.84%) \
         -> roll back immediately"
    );
    let e = &d.evidence[0];
    assert_eq!(e.signal, Signal::ErrorRate);
    assert_eq!(e.labels.get("service").unwrap(), "checkout");
    assert_eq!((e.window_start, e.window_end), (at(-300), at(0)));
    assert_eq!((e.samples, e.breaching_samples, e.series), (11, 11, 2));
    assert_eq!(e.worst, Some(0.0732));
    assert!(e.breached);
    assert!(!d.evidence[1].breached && !d.evidence[2].breached);
}

#[test]
fn the_breach_must_have_lasted_the_whole_window() {
    // Thirty seconds earlier the window still holds a sample at 1.2 %.
    let mut early = inputs("error_rate_sustained.json", "latency_p95_ok.json");
    early.now = at(-30);
    let d = decide_default(&early);
    assert_eq!(d.action, Recommendation::Monitor, "{d:#?}");
    assert!(
        d.reasons[1].starts_with(
            "error rate: not above 5% for the whole 5m: worst {service=\"checkout\"} \
             breached in 10 of 11 samples"
        ),
        "{d:#?}"
    );
}

#[test]
fn p95_latency_above_2s_for_5_minutes_rolls_back_now() {
    let d = decide_default(&inputs("error_rate_ok.json", "latency_p95_sustained.json"));
    assert_eq!(d.action, Recommendation::RollbackNow, "{d:#?}");
    assert!(
        d.reasons[0].starts_with(
            "p95 latency above 2s for 5m (2025-11-30T14:25:00Z to 2025-11-30T14:30:00Z): \
             {service=\"checkout\"} breached in all 11 samples (min 2.364s, max 2.432s"
        ),
        "{d:#?}"
    );
    assert!(d.evidence[1].breached);
    assert_eq!(d.evidence[1].signal, Signal::P95Latency);
    // The idle batch service (NaN) counts as a series with data but never breaches.
    assert_eq!(d.evidence[1].series, 3);
}

#[test]
fn broken_critical_feature_rolls_back_now() {
    let d = decide_default(
        &inputs("error_rate_ok.json", "latency_p95_ok.json").critical_feature_broken(true),
    );
    assert_eq!(d.action, Recommendation::RollbackNow);
    assert_eq!(
        d.reasons,
        vec!["critical feature broken (reported) -> roll back immediately"]
    );
}

#[test]
fn slo_at_risk_rolls_back_within_10_minutes() {
    let d = decide_default(
        &inputs("error_rate_ok.json", "latency_p95_ok.json")
            .slo_burn_rate(series("slo_burn_rate_high.json")),
    );
    assert_eq!(
        d.action,
        Recommendation::RollbackWithin(Duration::from_secs(600)),
        "{d:#?}"
    );
    assert!(
        d.reasons[0].starts_with(
            "SLO at risk: SLO burn rate above 1 for 5m (2025-11-30T14:25:00Z to \
             2025-11-30T14:30:00Z): {slo=\"checkout-availability\"} breached in all 11 samples"
        ),
        "{d:#?}"
    );
    assert!(d.reasons[0].ends_with("-> roll back within 10m"), "{d:#?}");
    assert!(d.evidence[2].breached);

    let sooner = DecisionPolicy {
        rollback_within: Duration::from_secs(300),
        ..DecisionPolicy::default()
    };
    let d = decide(
        &inputs("error_rate_ok.json", "latency_p95_ok.json")
            .slo_burn_rate(series("slo_burn_rate_high.json")),
        &sooner,
    );
    assert_eq!(
        d.action,
        Recommendation::RollbackWithin(Duration::from_secs(300))
    );
}

#[test]
fn healthy_signals_monitor() {
    let d = decide_default(
        &inputs("error_rate_ok.json", "latency_p95_ok.json")
            .slo_burn_rate(series("slo_burn_rate_ok.json")),
    );
    assert_eq!(d.action, Recommendation::Monitor, "{d:#?}");
    assert_eq!(
        d.reasons,
        vec![
            "no rollback condition held -> monitor closely, prepare rollback",
            "error rate: within 5% (worst {service=\"checkout\"}: max 2.16%, last 1.92%; 2 series)",
            "p95 latency: within 2s (worst {service=\"checkout\"}: max 0.404s, last 0.368s; 3 series)",
            "critical feature: not reported broken",
            "SLO at risk: SLO burn rate: within 1 (worst {slo=\"checkout-availability\"}: max 0.44, last 0.38; 1 series)",
        ]
    );
    assert!(d.evidence.iter().all(|e| !e.breached));
}

#[test]
fn a_brief_spike_that_recovers_monitors() {
    let d = decide_default(&inputs("error_rate_spike.json", "latency_p95_ok.json"));
    assert_eq!(d.action, Recommendation::Monitor, "{d:#?}");
    assert!(
        d.reasons[1].starts_with(
            "error rate: not above 5% for the whole 5m: worst {service=\"checkout\"} breached \
             in 4 of 11 samples (max 9.4%, last 1.92%)"
        ),
        "{d:#?}"
    );
    let e = &d.evidence[0];
    assert_eq!(
        (e.breaching_samples, e.worst, e.breached),
        (4, Some(0.094), false)
    );
}

#[test]
fn error_rate_is_checked_before_latency_and_both_are_reported() {
    let d = decide_default(
        &inputs("error_rate_sustained.json", "latency_p95_sustained.json")
            .critical_feature_broken(true)
            .slo_burn_rate(series("slo_burn_rate_high.json")),
    );
    assert_eq!(d.action, Recommendation::RollbackNow);
    assert_eq!(d.reasons.len(), 4, "{d:#?}");
    assert!(d.reasons[0].starts_with("error rate above 5%"), "{d:#?}");
    assert!(
        d.reasons[1].starts_with("also: p95 latency above 2s"),
        "{d:#?}"
    );
    assert!(
        d.reasons[2].starts_with("also: critical feature broken"),
        "{d:#?}"
    );
    assert!(d.reasons[3].starts_with("also: SLO at risk"), "{d:#?}");

    // Latency outranks the SLO: now, not within 10 minutes.
    let d = decide_default(
        &inputs("error_rate_ok.json", "latency_p95_sustained.json")
            .slo_burn_rate(series("slo_burn_rate_high.json")),
    );
    assert_eq!(d.action, Recommendation::RollbackNow);
    assert!(d.reasons[0].starts_with("p95 latency"), "{d:#?}");
}

#[test]
fn decisions_serialize_for_reports() {
    let d = decide_default(&inputs("error_rate_sustained.json", "latency_p95_ok.json"));
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["action"], "rollback_now");
    assert_eq!(json["evidence"][0]["signal"], "error_rate");
    assert_eq!(json["evidence"][0]["labels"]["service"], "checkout");
    assert_eq!(json["evidence"][0]["window_start"], "2025-11-30T14:25:00Z");
    assert_eq!(json["evidence"][0]["breached"], true);
    let back: Decision = serde_json::from_value(json).unwrap();
    assert_eq!(back, d);

    let within = decide_default(&DecisionInputs::new(at(0)).slo_at_risk(true));
    let json = serde_json::to_value(&within).unwrap();
    assert_eq!(json["action"]["rollback_within"], 600_000);
}

#[test]
fn recorded_inputs_round_trip_with_nan() {
    let i = inputs("error_rate_ok.json", "latency_p95_ok.json");
    let json = serde_json::to_string(&i).unwrap();
    assert!(json.contains(r#""value":"NaN""#), "{json}");
    let back: DecisionInputs = serde_json::from_str(&json).unwrap();
    assert_eq!(decide_default(&back), decide_default(&i));
}

/// Against a Prometheus API server on 127.0.0.1 serving the recordings.
#[cfg(feature = "http")]
mod live {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Arc;

    use rollback_core::metrics::{
        decide_from, Comparison, DecisionQueries, MetricSource, PrometheusSource, ThresholdCheck,
    };
    use rollback_core::verify::{Policy, Verifier, VerifierSpec};
    use rollback_core::ErrorKind;
    use serde_json::{json, Value};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;

    const ERR_Q: &str = r#"sum by (service) (rate(http_requests_total{code=~"5.."}[1m])) / sum by (service) (rate(http_requests_total[1m]))"#;
    const LAT_Q: &str = r#"histogram_quantile(0.95, sum by (service, le) (rate(http_request_duration_seconds_bucket[1m])))"#;
    const SLO_Q: &str = r#"slo:sli_error:ratio_rate1h{slo="checkout-availability"} / 0.001"#;

    /// How the server answers one query.
    #[derive(Clone)]
    enum Route {
        /// A recorded answer; a matrix is cut to the asked range, as Prometheus would.
        Fixture(&'static str),
        /// `value` at every step of the asked range.
        Live(f64),
        /// This status with this body (a fixture name or literal text), and `Retry-After`.
        Status(u16, &'static str, Option<&'static str>),
        /// Never answers.
        Hang,
    }

    /// One request as the server saw it.
    #[derive(Debug)]
    struct Seen {
        path: String,
        params: BTreeMap<String, String>,
        headers: BTreeMap<String, String>,
    }

    struct Server {
        base: String,
        seen: mpsc::UnboundedReceiver<Seen>,
    }

    impl Server {
        async fn next(&mut self) -> Seen {
            self.seen.recv().await.unwrap()
        }
    }

    fn param_time(v: &str) -> f64 {
        match DateTime::parse_from_rfc3339(v) {
            Ok(t) => t.timestamp_millis() as f64 / 1000.0,
            Err(_) => v.parse().unwrap(),
        }
    }

    fn answer(
        route: Option<&Route>,
        api: &str,
        params: &BTreeMap<String, String>,
    ) -> (u16, String, Option<&'static str>) {
        let empty = json!({"status":"success","data":{"resultType": if api == "query" {"vector"} else {"matrix"},"result":[]}});
        let Some(route) = route else {
            return (200, empty.to_string(), None);
        };
        match route {
            Route::Fixture(name) => {
                let mut doc: Value = serde_json::from_slice(&fixture(name)).unwrap();
                if api == "query_range" {
                    let (start, end) = (param_time(&params["start"]), param_time(&params["end"]));
                    for r in doc["data"]["result"].as_array_mut().unwrap() {
                        r["values"]
                            .as_array_mut()
                            .unwrap()
                            .retain(|p| (start..=end).contains(&p[0].as_f64().unwrap()));
                    }
                }
                (200, doc.to_string(), None)
            }
            Route::Live(v) => {
                let (start, end) = (param_time(&params["start"]), param_time(&params["end"]));
                let step: f64 = params["step"].parse().unwrap();
                let n = ((end - start) / step).floor() as usize;
                let values: Vec<Value> = (0..=n)
                    .map(|i| json!([start + step * i as f64, v.to_string()]))
                    .collect();
                let doc = json!({"status":"success","data":{"resultType":"matrix","result":[
                    {"metric":{"service":"checkout"},"values":values}]}});
                (200, doc.to_string(), None)
            }
            Route::Status(status, body, retry_after) => {
                let body = if body.ends_with(".json") {
                    String::from_utf8(fixture(body)).unwrap()
                } else {
                    body.to_string()
                };
                (*status, body, *retry_after)
            }
            Route::Hang => unreachable!(),
        }
    }

    /// Serves the Prometheus API for `routes` (by query) under `/` and `/prom/`.
    async fn serve(routes: &[(&str, Route)]) -> Server {
        let routes: Arc<HashMap<String, Route>> = Arc::new(
            routes
                .iter()
                .map(|(q, r)| (q.to_string(), r.clone()))
                .collect(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let routes = routes.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let mut lines = head.lines();
                    let target = lines.next().unwrap().split(' ').nth(1).unwrap().to_string();
                    let url = reqwest::Url::parse(&format!("http://server{target}")).unwrap();
                    let params: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
                    let headers: BTreeMap<String, String> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                        .collect();
                    let path = url.path().to_string();
                    let api = ["/api/v1/", "/prom/api/v1/"]
                        .iter()
                        .find_map(|p| path.strip_prefix(p))
                        .filter(|a| matches!(*a, "query" | "query_range"))
                        .map(str::to_string);
                    let route = params.get("query").and_then(|q| routes.get(q)).cloned();
                    let _ = tx.send(Seen {
                        path,
                        params: params.clone(),
                        headers,
                    });
                    let (status, body, retry_after) = match (&api, &route) {
                        (None, _) => (404, "404 page not found".to_string(), None),
                        (Some(_), Some(Route::Hang)) => std::future::pending().await,
                        (Some(api), route) => answer(route.as_ref(), api, &params),
                    };
                    let retry = retry_after
                        .map(|s| format!("retry-after: {s}\r\n"))
                        .unwrap_or_default();
                    let reply = format!(
                        "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\n{retry}\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Server { base, seen }
    }

    fn step30() -> Duration {
        Duration::from_secs(30)
    }

    #[tokio::test]
    async fn range_query_sends_the_api_parameters_and_reads_the_matrix() {
        let mut server = serve(&[(ERR_Q, Route::Fixture("error_rate_sustained.json"))]).await;
        let prom = PrometheusSource::new(&server.base);
        assert_eq!(prom.name(), format!("prometheus/{}", server.base));
        let got = prom.range(ERR_Q, at(-300), at(0), step30()).await.unwrap();
        let seen = server.next().await;
        assert_eq!(seen.path, "/api/v1/query_range");
        assert_eq!(seen.params["query"], ERR_Q);
        assert_eq!(seen.params["start"], "2025-11-30T14:25:00.000Z");
        assert_eq!(seen.params["end"], "2025-11-30T14:30:00.000Z");
        assert_eq!(seen.params["step"], "30");
        assert_eq!(seen.params.len(), 4);
        assert!(!seen.headers.contains_key("authorization"));

        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name, "");
        assert_eq!(got[0].labels.get("service").unwrap(), "checkout");
        assert_eq!(got[0].samples.len(), 11);
        assert_eq!(got[0].samples[0].at, at(-300));
        assert_eq!(got[0].samples[0].value, 0.0664);

        let _ = prom
            .range(ERR_Q, at(-300), at(0), Duration::from_millis(1500))
            .await
            .unwrap();
        assert_eq!(server.next().await.params["step"], "1.5");
    }

    #[tokio::test]
    async fn instant_query_reads_vectors_scalars_and_special_values() {
        const UP: &str = r#"up{namespace="production"}"#;
        let mut server = serve(&[
            (UP, Route::Fixture("up_vector.json")),
            ("ratio", Route::Fixture("error_ratio_vector.json")),
            ("scalar(0.05)", Route::Fixture("scalar.json")),
        ])
        .await;
        let prom = PrometheusSource::new(format!("{}/", server.base));
        let up = prom.instant(UP, Some(at(0))).await.unwrap();
        let seen = server.next().await;
        assert_eq!(seen.path, "/api/v1/query");
        assert_eq!(seen.params["query"], UP);
        assert_eq!(seen.params["time"], "2025-11-30T14:30:00.000Z");
        assert_eq!(up.len(), 2);
        assert_eq!(up[1].name, "up");
        assert_eq!(up[1].labels["instance"], "10.0.3.18:8080");
        assert_eq!(up[1].samples[0].value, 0.0);
        assert_eq!(
            up[1].selector(),
            r#"up{instance="10.0.3.18:8080",job="checkout",namespace="production"}"#
        );

        let ratio = prom.instant("ratio", None).await.unwrap();
        assert!(!server.next().await.params.contains_key("time"));
        let values: Vec<f64> = ratio.iter().map(|s| s.samples[0].value).collect();
        assert_eq!(values[0], 0.0712);
        assert!(values[1].is_nan());
        assert_eq!(values[2..], [f64::INFINITY, f64::NEG_INFINITY]);
        assert_eq!(ratio[0].samples[0].at.timestamp_millis(), NOW * 1000 + 500);

        let scalar = prom.instant("scalar(0.05)", None).await.unwrap();
        assert_eq!(scalar[0].samples[0].value, 0.05);
        assert!(scalar[0].labels.is_empty());
    }

    #[tokio::test]
    async fn base_url_may_have_a_path() {
        let mut server = serve(&[("up", Route::Fixture("up_vector.json"))]).await;
        let prom = PrometheusSource::new(format!("{}/prom/", server.base));
        assert_eq!(prom.instant("up", None).await.unwrap().len(), 2);
        assert_eq!(server.next().await.path, "/prom/api/v1/query");

        let wrong = PrometheusSource::new(format!("{}/grafana", server.base));
        let e = wrong.instant("up", None).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("HTTP 404"), "{e}");
        assert!(e.to_string().contains("Prometheus server"), "{e}");

        for bad in ["not a url", "ftp://prometheus:9090"] {
            let e = PrometheusSource::new(bad)
                .instant("up", None)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            assert!(e.to_string().contains("http://prometheus:9090"), "{e}");
        }
    }

    #[tokio::test]
    async fn refused_query_is_invalid_input_naming_source_and_query() {
        const BAD: &str = "sum(rate(http_requests_total[1m]";
        let server = serve(&[(BAD, Route::Status(400, "error_bad_data.json", None))]).await;
        let prom = PrometheusSource::new(&server.base);
        let e = prom
            .range(BAD, at(-300), at(0), step30())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(!e.is_retryable());
        assert_eq!(e.target(), format!("prometheus/{}", server.base));
        let text = e.to_string();
        assert!(text.contains(&format!("{BAD:?}")), "{text}");
        assert!(text.contains("bad_data"), "{text}");
        assert!(text.contains("unclosed left parenthesis"), "{text}");

        // Refused before asking: no step, or start after end.
        let e = prom
            .range("up", at(-300), at(0), Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let e = prom
            .range("up", at(0), at(-300), step30())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn server_trouble_is_retryable() {
        let server = serve(&[
            (
                "unavailable",
                Route::Status(503, "error_unavailable.json", None),
            ),
            (
                "gateway",
                Route::Status(502, "<html>Bad Gateway</html>", None),
            ),
            ("busy", Route::Status(429, "too many requests", Some("7"))),
            ("hang", Route::Hang),
        ])
        .await;
        let prom = PrometheusSource::new(&server.base).timeout(Duration::from_millis(300));

        let e = prom.instant("unavailable", None).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
        assert!(e.is_retryable());
        assert!(e.to_string().contains("HTTP 503"), "{e}");
        assert!(e.to_string().contains("unavailable: TSDB not ready"), "{e}");

        let e = prom.instant("gateway", None).await.unwrap_err();
        assert!(
            e.is_retryable() && e.to_string().contains("Bad Gateway"),
            "{e}"
        );

        let e = prom.instant("busy", None).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Throttled, "{e}");
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));

        let e = prom.instant("hang", None).await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert!(e.to_string().contains("within 0.3s"), "{e}");

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let e = PrometheusSource::new(&closed)
            .instant("up", None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
        assert!(e.is_retryable());
        assert!(
            e.to_string().starts_with(&format!("prometheus/{closed}")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn bearer_token_is_sent_and_never_shown() {
        const TOKEN: &str = "s3cr3t-t0ken";
        let mut server = serve(&[
            ("up", Route::Fixture("up_vector.json")),
            ("down", Route::Status(503, "error_unavailable.json", None)),
        ])
        .await;
        let prom = PrometheusSource::new(&server.base).bearer_token(TOKEN);
        prom.instant("up", None).await.unwrap();
        let seen = server.next().await;
        assert_eq!(seen.headers["authorization"], format!("Bearer {TOKEN}"));
        assert_eq!(seen.headers["accept"], "application/json");

        let debug = format!("{prom:?}");
        assert!(!debug.contains(TOKEN), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        let e = prom.instant("down", None).await.unwrap_err();
        assert!(!format!("{e} {e:?}").contains(TOKEN), "{e:?}");
        assert_eq!(server.next().await.params["query"], "down");

        let json = serde_json::to_string(&prom).unwrap();
        assert!(!json.contains(TOKEN), "{json}");
        assert!(json.contains(r#""bearer_token":"<redacted>""#), "{json}");
        let rebuilt: PrometheusSource = serde_json::from_str(&json).unwrap();
        let e = rebuilt.instant("up", None).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("bearer token"), "{e}");

        // From the environment, read at each query (a variable cargo sets for tests: no
        // test may set variables while others run).
        let from_env = PrometheusSource::new(&server.base).bearer_token_env("CARGO_MANIFEST_DIR");
        from_env.instant("up", None).await.unwrap();
        let seen = server.next().await;
        assert_eq!(
            seen.headers["authorization"],
            format!("Bearer {}", env!("CARGO_MANIFEST_DIR"))
        );
        let e = PrometheusSource::new(&server.base)
            .bearer_token_env("ROLLBACK_TEST_UNSET_TOKEN_VARIABLE")
            .instant("up", None)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.to_string().contains("ROLLBACK_TEST_UNSET_TOKEN_VARIABLE"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn password_in_the_base_url_is_redacted() {
        let prom = PrometheusSource::new("http://ops:hunter2@127.0.0.1:1/");
        let shown = format!(
            "{} {prom:?} {}",
            prom.name(),
            serde_json::to_string(&prom).unwrap()
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        let e = prom.instant("up", None).await.unwrap_err();
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
    }

    fn threshold(base: &str, query: &str) -> ThresholdCheck {
        ThresholdCheck::new(
            Arc::new(PrometheusSource::new(base)),
            query,
            Comparison::Above(0.05),
            Duration::from_secs(300),
        )
        .at(at(0))
    }

    #[tokio::test]
    async fn threshold_check_through_prometheus() {
        let mut server = serve(&[
            ("sustained", Route::Fixture("error_rate_sustained.json")),
            ("spike", Route::Fixture("error_rate_spike.json")),
            ("ok", Route::Fixture("error_rate_ok.json")),
        ])
        .await;

        let check = threshold(&server.base, "sustained");
        assert_eq!(check.name(), "sustained > 0.05 for 5m");
        let out = check.check().await.unwrap();
        assert!(!out.passed, "{out:?}");
        assert_eq!(
            out.evidence,
            "sustained: {service=\"checkout\"} stayed > 0.05 for the 5m window \
             2025-11-30T14:25:00Z to 2025-11-30T14:30:00Z: 11/11 samples breached \
             (min 0.0664, max 0.0732, last 0.0684)"
        );
        let seen = server.next().await;
        assert_eq!(seen.params["start"], "2025-11-30T14:25:00.000Z");
        assert_eq!(seen.params["end"], "2025-11-30T14:30:00.000Z");
        assert_eq!(seen.params["step"], "30");

        let out = threshold(&server.base, "spike").check().await.unwrap();
        assert!(out.passed, "{out:?}");
        assert!(
            out.evidence
                .contains("worst {service=\"checkout\"}: 4/11 samples breached"),
            "{out:?}"
        );
        let out = threshold(&server.base, "ok")
            .step(Duration::from_secs(15))
            .check()
            .await
            .unwrap();
        assert!(out.passed, "{out:?}");
        server.next().await;
        assert_eq!(server.next().await.params["step"], "15");

        let out = threshold(&server.base, "absent").check().await.unwrap();
        assert!(!out.passed);
        assert!(
            out.evidence
                .starts_with("no data for absent in the 5m window"),
            "{out:?}"
        );
        let out = threshold(&server.base, "absent")
            .pass_on_no_data()
            .check()
            .await
            .unwrap();
        assert!(out.passed, "{out:?}");
    }

    #[tokio::test]
    async fn threshold_check_now_under_a_policy() {
        let server = serve(&[("high", Route::Live(0.07)), ("low", Route::Live(0.01))]).await;
        let src: Arc<dyn MetricSource> = Arc::new(PrometheusSource::new(&server.base));
        let check = |q: &str| {
            ThresholdCheck::new(
                src.clone(),
                q,
                Comparison::Above(0.05),
                Duration::from_secs(300),
            )
        };
        let verdict = Policy::once().run(&check("high"), |_, _| {}).await;
        assert!(!verdict.passed, "{verdict:?}");
        assert!(
            verdict.evidence.contains("11/11 samples breached"),
            "{verdict:?}"
        );
        let verdict = Policy::once().run(&check("low"), |_, _| {}).await;
        assert!(verdict.passed, "{verdict:?}");

        let down = ThresholdCheck::new(
            Arc::new(PrometheusSource::new("http://127.0.0.1:1")),
            "high",
            Comparison::Above(0.05),
            Duration::from_secs(300),
        );
        let e = down.check().await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        let verdict = Policy::once().run(&down, |_, _| {}).await;
        assert!(!verdict.passed);
        assert!(
            verdict.evidence.starts_with("check could not run"),
            "{verdict:?}"
        );
    }

    #[tokio::test]
    async fn threshold_check_is_journaled_without_its_token() {
        let server = serve(&[("sustained", Route::Fixture("error_rate_sustained.json"))]).await;
        let plain = threshold(&server.base, "sustained");
        let json = serde_json::to_value(plain.spec()).unwrap();
        assert_eq!(json["type"], "threshold");
        assert_eq!(json["source"]["type"], "prometheus");
        assert_eq!(json["source"]["base_url"], server.base.as_str());
        assert_eq!(json["comparison"]["above"], 0.05);
        assert_eq!(json["for"], 300_000);
        let spec: VerifierSpec = serde_json::from_value(json).unwrap();
        assert_eq!(spec, plain.spec());
        let rebuilt = spec.build().unwrap();
        assert_eq!(rebuilt.check().await.unwrap(), plain.check().await.unwrap());

        let secret = ThresholdCheck::new(
            Arc::new(PrometheusSource::new(&server.base).bearer_token("s3cr3t")),
            "sustained",
            Comparison::Above(0.05),
            Duration::from_secs(300),
        );
        let text = serde_json::to_string(&secret.spec()).unwrap();
        assert!(!text.contains("s3cr3t"), "{text}");
        let spec: VerifierSpec = serde_json::from_str(&text).unwrap();
        let e = spec.build().unwrap().check().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn decide_from_prometheus_end_to_end() {
        let mut server = serve(&[
            (ERR_Q, Route::Fixture("error_rate_sustained.json")),
            (LAT_Q, Route::Fixture("latency_p95_sustained.json")),
            (SLO_Q, Route::Fixture("slo_burn_rate_high.json")),
        ])
        .await;
        let prom = PrometheusSource::new(&server.base);
        let queries = DecisionQueries::new(ERR_Q, LAT_Q).slo_burn_rate(SLO_Q);
        let d = decide_from(&prom, &queries, false, &DecisionPolicy::default(), at(0))
            .await
            .unwrap();
        assert_eq!(d.action, Recommendation::RollbackNow, "{d:#?}");
        assert!(
            d.reasons[0].starts_with("error rate above 5% for 5m"),
            "{d:#?}"
        );
        assert!(
            d.reasons[1].starts_with("also: p95 latency above 2s"),
            "{d:#?}"
        );
        assert!(d.reasons[2].starts_with("also: SLO at risk"), "{d:#?}");
        let mut asked = Vec::new();
        for _ in 0..3 {
            let seen = server.next().await;
            assert_eq!(seen.path, "/api/v1/query_range");
            assert_eq!(seen.params["start"], "2025-11-30T14:25:00.000Z");
            assert_eq!(seen.params["end"], "2025-11-30T14:30:00.000Z");
            assert_eq!(seen.params["step"], "30");
            asked.push(seen.params["query"].clone());
        }
        asked.sort();
        let mut expected = vec![ERR_Q.to_string(), LAT_Q.to_string(), SLO_Q.to_string()];
        expected.sort();
        assert_eq!(asked, expected);

        // The same recording, judged from the decision's own inputs, agrees.
        let offline = decide_default(
            &inputs("error_rate_sustained.json", "latency_p95_sustained.json")
                .slo_burn_rate(series("slo_burn_rate_high.json")),
        );
        assert_eq!(offline.reasons, d.reasons);
    }

    #[tokio::test]
    async fn decide_from_monitors_healthy_signals_and_fails_on_errors() {
        let server = serve(&[
            (ERR_Q, Route::Fixture("error_rate_spike.json")),
            (LAT_Q, Route::Fixture("latency_p95_ok.json")),
            (SLO_Q, Route::Status(503, "error_unavailable.json", None)),
        ])
        .await;
        let prom = PrometheusSource::new(&server.base);
        let policy = DecisionPolicy::default();
        let d = decide_from(
            &prom,
            &DecisionQueries::new(ERR_Q, LAT_Q),
            false,
            &policy,
            at(0),
        )
        .await
        .unwrap();
        assert_eq!(d.action, Recommendation::Monitor, "{d:#?}");
        let d = decide_from(
            &prom,
            &DecisionQueries::new(ERR_Q, LAT_Q),
            true,
            &policy,
            at(0),
        )
        .await
        .unwrap();
        assert_eq!(d.action, Recommendation::RollbackNow, "{d:#?}");

        let e = decide_from(
            &prom,
            &DecisionQueries::new(ERR_Q, LAT_Q).slo_burn_rate(SLO_Q),
            false,
            &policy,
            at(0),
        )
        .await
        .unwrap_err();
        assert!(e.is_retryable(), "{e}");
    }
}
