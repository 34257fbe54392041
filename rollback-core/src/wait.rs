//! Waiting and retrying: adaptive polling within a deadline, and retry of retryable errors
//! with exponential backoff and jitter.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::target::{Progress, Stability};

/// An exponential backoff: `initial`, then times `factor`, up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    /// The first delay.
    #[serde(with = "crate::serde_duration")]
    pub initial: Duration,
    /// The largest delay.
    #[serde(with = "crate::serde_duration")]
    pub max: Duration,
    /// The growth factor.
    pub factor: f64,
}

impl Backoff {
    /// The delay before attempt `n` (0-based).
    pub fn delay(&self, n: u32) -> Duration {
        let secs = self.initial.as_secs_f64() * self.factor.powi(n.min(64) as i32);
        Duration::from_secs_f64(secs.min(self.max.as_secs_f64()))
    }
}

/// When a wait looks: `first` after it starts, then `initial` apart growing by half each
/// time, up to `early` apart during the first `early_for` of the wait and up to `late`
/// apart after that. So convergence is noticed within `early` of happening while a
/// rollout is young, and within `late` once it has taken long, for a bounded number of
/// calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollSchedule {
    /// The delay before the first look.
    pub first: Duration,
    /// The delay after the first look.
    pub initial: Duration,
    /// The longest delay during the first `early_for`.
    pub early: Duration,
    /// How long a rollout counts as young.
    pub early_for: Duration,
    /// The longest delay after that.
    pub late: Duration,
}

impl PollSchedule {
    /// The stability poll: a first look at once, then 250 ms apart growing to 400 ms for
    /// the first 10 s, then up to 1.6 s apart: convergence is noticed within 0.5 s of
    /// happening early on and within 2 s later.
    pub fn stability() -> Self {
        PollSchedule {
            first: Duration::ZERO,
            initial: Duration::from_millis(250),
            early: Duration::from_millis(400),
            early_for: Duration::from_secs(10),
            late: Duration::from_millis(1600),
        }
    }

    /// The same schedule with its first look `first` after the start (for backends whose
    /// change can never be done at once, an ECS deployment say).
    pub fn first_look(mut self, first: Duration) -> Self {
        self.first = first;
        self
    }

    /// The delay after look `n` (0-based), `elapsed` into the wait.
    pub fn delay(&self, n: u32, elapsed: Duration) -> Duration {
        let cap = if elapsed < self.early_for {
            self.early
        } else {
            self.late
        };
        let secs = self.initial.as_secs_f64() * 1.5f64.powi(n.min(64) as i32);
        Duration::from_secs_f64(secs.min(cap.as_secs_f64()))
    }
}

impl Default for PollSchedule {
    fn default() -> Self {
        Self::stability()
    }
}

/// Polls `check` until it reports [`Stability::Stable`], within `timeout`, at the times
/// `schedule` gives.
///
/// Progress messages are reported when they change. A [`Stability::Failed`] ends the wait
/// at once with [`Error::RolloutFailed`]; a retryable error is reported and polled
/// through; any other error ends the wait. Inside a transaction each look counts against
/// its concurrency ([`limited`]): a thousand targets converging at once make at most
/// `concurrency` calls at a time.
pub async fn poll_until<F, Fut>(
    target: &str,
    what: &str,
    timeout: Duration,
    schedule: PollSchedule,
    progress: &Progress,
    mut check: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Stability>>,
{
    let start = Instant::now();
    let deadline = start + timeout;
    let mut last = String::from("nothing yet");
    let mut attempt = 0u32;
    if !schedule.first.is_zero() {
        tokio::time::sleep(schedule.first.min(timeout)).await;
    }
    loop {
        match limited(check()).await {
            Ok(Stability::Stable) => return Ok(()),
            Ok(Stability::Failed(message)) => {
                return Err(Error::rollout_failed(target.to_string(), message))
            }
            Ok(Stability::Waiting(message)) => {
                if message != last {
                    progress.report(&message);
                    last = message;
                }
            }
            Err(e) if e.is_retryable() => {
                let message = format!("retrying after: {e}");
                if message != last {
                    progress.report(&message);
                    last = message;
                }
            }
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::timeout(
                target.to_string(),
                what.to_string(),
                now - start,
                last,
            ));
        }
        let delay = schedule.delay(attempt, now - start).min(deadline - now);
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(delay).await;
    }
}

tokio::task_local! {
    /// The transaction's bound on calls in flight, while it runs.
    static CALLS: Arc<Semaphore>;
}

/// Runs `call` under the running transaction's bound on calls in flight (its
/// [`concurrency`](crate::TransactionBuilder::concurrency)); outside a transaction, as is.
///
/// The engine bounds the calls it makes itself (preflight's reads, each apply); a target
/// whose [`wait_stable`](crate::RollbackTarget::wait_stable) polls on its own wraps each
/// look in this, as [`poll_until`] does, so that targets converging do not hold the bound
/// while they wait. Never call it inside `apply` or `prepare` (they already hold a place).
pub async fn limited<F: Future>(call: F) -> F::Output {
    match CALLS.try_with(Arc::clone) {
        Ok(calls) => {
            let _place = calls.acquire_owned().await;
            call.await
        }
        Err(_) => call.await,
    }
}

/// Runs `f` with `calls` as the bound of [`limited`].
pub(crate) async fn with_limit<F: Future>(calls: Arc<Semaphore>, f: F) -> F::Output {
    CALLS.scope(calls, f).await
}

/// How retryable errors are retried: exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// The backoff between attempts; each delay is drawn uniformly from `[delay/2, delay]`.
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            backoff: Backoff {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(5),
                factor: 2.0,
            },
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        }
    }

    /// The delay after failed attempt `n` (0-based), with jitter, honouring a backend's
    /// retry-after when it is longer.
    pub fn delay(&self, n: u32, err: &Error) -> Duration {
        jittered(&self.backoff, n, err)
    }

    /// Runs `op`, retrying it while it fails with a retryable error and attempts remain.
    /// `on_retry` hears of each retry (attempt number, error, delay).
    pub async fn run<T, F, Fut>(
        &self,
        op: F,
        on_retry: impl FnMut(u32, &Error, Duration),
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let max = self.max_attempts;
        retry_while(
            &self.backoff,
            op,
            |n| (n + 1 < max).then_some(Duration::MAX),
            on_retry,
        )
        .await
    }
}

/// Runs `op`, retrying retryable errors after a jittered backoff while `budget(attempt)`
/// allows another attempt (`Some(longest wait)`); the shared loop of both retry policies.
async fn retry_while<T, F, Fut>(
    backoff: &Backoff,
    mut op: F,
    mut budget: impl FnMut(u32) -> Option<Duration>,
    mut on_retry: impl FnMut(u32, &Error, Duration),
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 0u32;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() => {
                let Some(cap) = budget(attempt) else {
                    return Err(e);
                };
                let d = jittered(backoff, attempt, &e).min(cap);
                attempt = attempt.saturating_add(1);
                on_retry(attempt, &e, d);
                tracing::debug!(attempt, error = %e, delay = ?d, "retrying");
                tokio::time::sleep(d).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Backoff delay `n` drawn from `[delay/2, delay]`, or the error's retry-after if longer.
fn jittered(backoff: &Backoff, n: u32, err: &Error) -> Duration {
    let base = backoff.delay(n);
    let half = base / 2;
    let jitter = if half.is_zero() {
        Duration::ZERO
    } else {
        rand::rng().random_range(Duration::ZERO..=half)
    };
    let d = half + jitter;
    match err.retry_after() {
        Some(ra) if ra > d => ra,
        _ => d,
    }
}

/// How putting things back is retried: compensation and reverting temporary steps. Much
/// more patient than [`RetryPolicy`], because giving up leaves a target half rolled back
/// for a person to restore by hand: retryable errors (throttling, 5xx, and those of the
/// wait for stability) are retried with exponential backoff and full jitter, honouring a
/// backend's retry-after, until `deadline` has passed since the first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CompensationRetry {
    /// How long one target may be retried in all (default 5 minutes).
    #[serde(with = "crate::serde_duration")]
    pub deadline: Duration,
    /// The backoff between attempts (default 250 ms, doubling, up to 15 s).
    pub backoff: Backoff,
}

impl Default for CompensationRetry {
    fn default() -> Self {
        CompensationRetry {
            deadline: Duration::from_secs(300),
            backoff: Backoff {
                initial: Duration::from_millis(250),
                max: Duration::from_secs(15),
                factor: 2.0,
            },
        }
    }
}

impl CompensationRetry {
    /// Runs `op`, retrying it while it fails with a retryable error and the retry that
    /// would follow starts before `until`. The wait before a retry is cut to what is left;
    /// `on_retry` hears of each retry (attempt number, error, delay).
    pub async fn run_until<T, F, Fut>(
        &self,
        until: Instant,
        op: F,
        on_retry: impl FnMut(u32, &Error, Duration),
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let left = |_: u32| {
            let now = Instant::now();
            (now < until).then(|| until - now)
        };
        retry_while(&self.backoff, op, left, on_retry).await
    }

    /// [`run_until`](Self::run_until) with the deadline counted from now.
    pub async fn run<T, F, Fut>(
        &self,
        op: F,
        on_retry: impl FnMut(u32, &Error, Duration),
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.run_until(Instant::now() + self.deadline, op, on_retry)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_grows_to_its_cap() {
        let b = RetryPolicy::default().backoff;
        assert_eq!(b.delay(0), Duration::from_millis(200));
        assert!(b.delay(1) > b.delay(0));
        assert_eq!(b.delay(30), Duration::from_secs(5));
    }

    #[test]
    fn the_stability_poll_looks_within_half_a_second_early_and_two_seconds_late() {
        let p = PollSchedule::stability();
        let early = (0..100).map(|n| p.delay(n, Duration::from_secs(9)));
        assert!(early.clone().all(|d| d <= Duration::from_millis(500)));
        assert_eq!(p.delay(0, Duration::ZERO), Duration::from_millis(250));
        let late = (0..100).map(|n| p.delay(n, Duration::from_secs(11)));
        assert!(late.clone().all(|d| d <= Duration::from_secs(2)));
        assert_eq!(
            p.delay(30, Duration::from_secs(11)),
            Duration::from_millis(1600)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn limited_bounds_calls_in_flight_inside_a_transaction_only() {
        let in_flight = std::sync::Arc::new(AtomicU32::new(0));
        let most = std::sync::Arc::new(AtomicU32::new(0));
        let call = || {
            let (in_flight, most) = (in_flight.clone(), most.clone());
            limited(async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
            })
        };
        with_limit(
            Arc::new(Semaphore::new(3)),
            futures::future::join_all((0..20).map(|_| call())),
        )
        .await;
        assert_eq!(most.load(Ordering::SeqCst), 3);
        most.store(0, Ordering::SeqCst);
        futures::future::join_all((0..20).map(|_| call())).await;
        assert_eq!(most.load(Ordering::SeqCst), 20);
    }

    #[test]
    fn jitter_stays_within_half_to_full() {
        let p = RetryPolicy::default();
        let e = Error::backend("t", "503", true);
        for n in 0..6 {
            let d = p.delay(n, &e);
            let base = p.backoff.delay(n);
            assert!(d >= base / 2 && d <= base, "{d:?} vs {base:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_retryable_until_success() {
        let calls = AtomicU32::new(0);
        let mut retries = 0;
        let v = RetryPolicy::default()
            .run(
                || async {
                    if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err(Error::throttled("t", "Rate exceeded", None))
                    } else {
                        Ok(7)
                    }
                },
                |_, _, _| retries += 1,
            )
            .await
            .unwrap();
        assert_eq!(v, 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(retries, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_non_retryable_and_stops_at_max() {
        let calls = AtomicU32::new(0);
        let e = RetryPolicy::default()
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err::<(), _>(Error::invalid("t", "bad"))
                },
                |_, _, _| {},
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        RetryPolicy::default()
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err::<(), _>(Error::backend("t", "503", true))
                },
                |_, _, _| {},
            )
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn poll_reports_changes_and_times_out() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let progress = Progress::new(move |m| s2.lock().unwrap().push(m.to_string()));
        let e = poll_until(
            "memory/a",
            "stable",
            Duration::from_secs(5),
            PollSchedule::stability(),
            &progress,
            || async { Ok(Stability::Waiting("1 of 2 updated".into())) },
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Timeout);
        assert_eq!(seen.lock().unwrap().as_slice(), ["1 of 2 updated"]);
        let e = poll_until(
            "memory/a",
            "stable",
            Duration::from_secs(5),
            PollSchedule::stability(),
            &progress,
            || async { Ok(Stability::Failed("circuit breaker".into())) },
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::RolloutFailed);
    }

    fn throttled(retry_after: Option<Duration>) -> Error {
        Error::throttled("t", "Rate exceeded", retry_after)
    }

    #[tokio::test(start_paused = true)]
    async fn compensation_retry_outlasts_the_ordinary_budget_within_its_deadline() {
        let calls = AtomicU32::new(0);
        let mut retries = 0;
        let v = CompensationRetry::default()
            .run(
                || async {
                    if calls.fetch_add(1, Ordering::SeqCst) < 20 {
                        Err(throttled(None))
                    } else {
                        Ok(1)
                    }
                },
                |_, _, _| retries += 1,
            )
            .await
            .unwrap();
        assert_eq!(v, 1);
        assert_eq!(calls.load(Ordering::SeqCst), 21);
        assert_eq!(retries, 20);
        assert!(retries as u32 > RetryPolicy::default().max_attempts);

        // It stops once the deadline has passed, and never for a non-retryable error.
        let start = Instant::now();
        let p = CompensationRetry::default();
        let e = p
            .run(|| async { Err::<(), _>(throttled(None)) }, |_, _, _| {})
            .await
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Throttled);
        let took = Instant::now() - start;
        assert!(
            took >= p.deadline && took <= p.deadline + Duration::from_secs(1),
            "{took:?}"
        );
        let calls = AtomicU32::new(0);
        p.run(
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Error::invalid("t", "bad"))
            },
            |_, _, _| {},
        )
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn compensation_retry_honours_retry_after() {
        let calls = AtomicU32::new(0);
        let mut delays = Vec::new();
        CompensationRetry::default()
            .run(
                || async {
                    if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err(throttled(Some(Duration::from_secs(7))))
                    } else {
                        Ok(())
                    }
                },
                |_, _, d| delays.push(d),
            )
            .await
            .unwrap();
        assert_eq!(delays, [Duration::from_secs(7), Duration::from_secs(7)]);
    }
}
