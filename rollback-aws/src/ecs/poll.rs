//! Batched stability looks: every ECS waiter of one [`Aws`](crate::Aws) looks on one time
//! grid, and the waiters of a cluster due at one tick are described together, up to
//! [`MAX_SERVICES`] per DescribeServices call (the API's limit; `aws ecs wait
//! services-stable` batches the same way).
//!
//! The grid: ticks `tick` apart from the poller's epoch (the
//! [stability schedule](PollSchedule::stability)'s early delay, 400 ms). A waiter looks
//! first at the first tick at least `first` (250 ms) after it starts, since a deployment is
//! never stable at once; then at every tick while it is younger than `early_for` (10 s), and
//! at every `late / early`-th tick (4th: 1.6 s) after that, so that old waiters share their
//! ticks too. A look at the deadline is the one look off the grid.
//!
//! No task is spawned. A tick's batch (per cluster) is a [`Shared`] future, held by the
//! poller's index until the tick comes and by each waiter that joined it; whichever waiter is
//! polled drives it for all, so a waiter dropped mid-wait leaves the others to drive it. At its
//! tick it closes (a waiter later than that makes a new batch), takes itself out of the index
//! and makes its calls, each under [`limited`]. A batch whose waiters were all dropped before
//! its tick is dropped from the index by the next batch made.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::types::Service;
use aws_sdk_ecs::Client;
use futures::future::{join_all, BoxFuture, FutureExt, Shared};
use rollback_core::wait::{limited, PollSchedule};
use rollback_core::{Error, ErrorKind, Progress, Result, Stability, TargetId};
use tokio::time::Instant;

use crate::config::LazyClient;
use crate::error::sdk_error;

/// The most services one DescribeServices call takes.
pub(crate) const MAX_SERVICES: usize = 10;

/// One DescribeServices call: a cluster and up to [`MAX_SERVICES`] service names.
pub(crate) type Describe = Arc<
    dyn Fn(String, Vec<String>) -> BoxFuture<'static, Result<DescribeServicesOutput>> + Send + Sync,
>;

/// What one look saw of one service.
#[derive(Clone, Debug)]
pub(crate) enum Look {
    /// The service as described.
    Found(Arc<Service>),
    /// Not described; AWS's reason (`MISSING`).
    Missing(String),
    /// The call naming it failed (its error names the cluster, see [`for_target`]).
    Failed(Arc<Error>),
}

/// The looks of one batch, by service name.
type Looks = Shared<BoxFuture<'static, Arc<HashMap<String, Look>>>>;

/// The names of a batch, `None` once it has fired.
type Names = Arc<Mutex<Option<BTreeSet<String>>>>;

struct Batch {
    names: Names,
    looks: Looks,
}

type Index = Mutex<HashMap<(String, Instant), Batch>>;

/// The stability poller of one `Aws`: its grid and the batches not yet fired.
pub(crate) struct Poller {
    describe: Describe,
    epoch: Instant,
    first: Duration,
    tick: Duration,
    early_for: Duration,
    late_every: u32,
    batches: Arc<Index>,
    soon: Mutex<HashMap<String, Soon>>,
}

/// The describe-now batches of one cluster: the one taking names (until its call is made)
/// and the one made last, whose call the next one waits for.
#[derive(Default)]
struct Soon {
    open: Option<Batch>,
    last: Option<Looks>,
}

impl fmt::Debug for Poller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poller")
            .field("tick", &self.tick)
            .field("batches", &lock(&self.batches).len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data stays consistent across a panic (each change is one insert or remove).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Poller {
    /// The poller of `client`, on the stability schedule with a first look 250 ms in.
    pub(crate) fn new(client: LazyClient<Client>) -> Self {
        let describe: Describe = Arc::new(move |cluster: String, names: Vec<String>| {
            let client = client.clone();
            async move {
                client
                    .get()
                    .await?
                    .describe_services()
                    .cluster(&cluster)
                    .set_services(Some(names))
                    .send()
                    .await
                    .map_err(|e| {
                        sdk_error(
                            &TargetId::new(super::KIND, cluster.as_str()),
                            "DescribeServices",
                            e,
                        )
                    })
            }
            .boxed()
        });
        Self::with(
            describe,
            PollSchedule::stability().first_look(Duration::from_millis(250)),
        )
    }

    /// A poller making its calls with `describe`, on the grid of `schedule`: its `first`
    /// delay, ticks `early` apart, every `late / early`-th tick after `early_for`.
    pub(crate) fn with(describe: Describe, schedule: PollSchedule) -> Self {
        let tick = schedule.early.max(Duration::from_millis(1));
        let late_every = u32::try_from(schedule.late.as_nanos() / tick.as_nanos())
            .unwrap_or(u32::MAX)
            .max(1);
        Poller {
            describe,
            epoch: Instant::now(),
            first: schedule.first,
            tick,
            early_for: schedule.early_for,
            late_every,
            batches: Arc::default(),
            soon: Mutex::default(),
        }
    }

    /// The first tick at or after `t` whose number is a multiple of `every`.
    fn tick_from(&self, t: Instant, every: u32) -> Instant {
        let step = self.tick.as_nanos() * u128::from(every);
        let k = t
            .saturating_duration_since(self.epoch)
            .as_nanos()
            .div_ceil(step);
        let nanos = u64::try_from(k * step).unwrap_or(u64::MAX);
        self.epoch
            .checked_add(Duration::from_nanos(nanos))
            .unwrap_or(t)
    }

    /// When a waiter started at `start` looks first.
    fn first_look(&self, start: Instant) -> Instant {
        self.tick_from(start + self.first, 1)
    }

    /// When a waiter `age` into its wait looks next, after a look that ended at `now`.
    fn next_look(&self, now: Instant, age: Duration) -> Instant {
        let every = if age < self.early_for {
            1
        } else {
            self.late_every
        };
        self.tick_from(now + Duration::from_millis(1), every)
    }

    /// Joins `service` to the batch of `cluster` at `at` (making it if there is none open):
    /// the looks it will give.
    fn join(&self, cluster: &str, service: &str, at: Instant) -> Looks {
        let mut index = lock(&self.batches);
        let key = (cluster.to_string(), at);
        if let Some(b) = index.get(&key) {
            if let Some(names) = lock(&b.names).as_mut() {
                names.insert(service.to_string());
                return b.looks.clone();
            }
        }
        // Batches whose waiters were all dropped before their tick: nobody will drive them.
        if let Some(stale) = Instant::now().checked_sub(self.tick * 2) {
            index.retain(|(_, at), _| *at >= stale);
        }
        let names: Names = Arc::new(Mutex::new(Some(BTreeSet::from([service.to_string()]))));
        let looks = self.batch(cluster.to_string(), at, names.clone());
        index.insert(
            key,
            Batch {
                names,
                looks: looks.clone(),
            },
        );
        looks
    }

    /// The batch of `cluster` at `at`: at its tick, closes, leaves the index, and describes
    /// its services ten at a time.
    fn batch(&self, cluster: String, at: Instant, slot: Names) -> Looks {
        let describe = self.describe.clone();
        let index = Arc::downgrade(&self.batches);
        let tick_ms =
            u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX);
        async move {
            tokio::time::sleep_until(at).await;
            let names: Vec<String> = lock(&slot).take().unwrap_or_default().into_iter().collect();
            if let Some(index) = index.upgrade() {
                let mut index = lock(&index);
                let key = (cluster.clone(), at);
                if index
                    .get(&key)
                    .is_some_and(|b| Arc::ptr_eq(&b.names, &slot))
                {
                    index.remove(&key);
                }
            }
            Arc::new(describe_all(&describe, &cluster, &names, Some(tick_ms)).await)
        }
        .boxed()
        .shared()
    }

    /// `service` of `cluster` as described now, in one call with the cluster's other
    /// services asked for meanwhile: in the same turn of the scheduler, or while the
    /// cluster's previous such call was in flight. So a fleet's preflights and applies
    /// describe up to ten services per call, not one each, and a lone caller waits for
    /// nothing. No place is taken: the callers hold their own.
    pub(crate) async fn describe_now(&self, cluster: &str, service: &str) -> Look {
        let looks = {
            let mut soon = lock(&self.soon);
            let entry = soon.entry(cluster.to_string()).or_default();
            let open = entry.open.as_ref().and_then(|b| {
                let mut names = lock(&b.names);
                let names = names.as_mut()?;
                names.insert(service.to_string());
                Some(b.looks.clone())
            });
            match open {
                Some(looks) => looks,
                None => {
                    let names: Names =
                        Arc::new(Mutex::new(Some(BTreeSet::from([service.to_string()]))));
                    let looks = self.soon_batch(cluster, names.clone(), entry.last.take());
                    entry.open = Some(Batch {
                        names,
                        looks: looks.clone(),
                    });
                    entry.last = Some(looks.clone());
                    looks
                }
            }
        };
        looks
            .await
            .get(service)
            .cloned()
            .unwrap_or_else(|| Look::Missing("MISSING".into()))
    }

    /// A describe-now batch: takes names until a turn of the scheduler brings no more and
    /// `before` (the cluster's previous batch) has had its answer, then closes and makes its
    /// calls.
    fn soon_batch(&self, cluster: &str, slot: Names, before: Option<Looks>) -> Looks {
        let describe = self.describe.clone();
        let cluster = cluster.to_string();
        async move {
            // Whoever asks next drives this future too (it is shared), so one yield is not
            // a turn of the scheduler: yield until a yield passes with nobody joining.
            let joined = || lock(&slot).as_ref().map_or(0, BTreeSet::len);
            for _ in 0..MAX_SERVICES * 4 {
                let seen = joined();
                tokio::task::yield_now().await;
                if joined() == seen {
                    break;
                }
            }
            if let Some(before) = before {
                before.await;
            }
            let names: Vec<String> = lock(&slot).take().unwrap_or_default().into_iter().collect();
            Arc::new(describe_all(&describe, &cluster, &names, None).await)
        }
        .boxed()
        .shared()
    }

    /// One look at `service` of `cluster`, in the batch of `at`.
    pub(crate) async fn look(&self, cluster: &str, service: &str, at: Instant) -> Look {
        let looks = self.join(cluster, service, at).await;
        looks
            .get(service)
            .cloned()
            .unwrap_or_else(|| Look::Missing("MISSING".into()))
    }

    /// Waits until `judge` says the described service is stable, within `timeout`, looking on
    /// the grid: as [`poll_until`](rollback_core::wait::poll_until) does (progress messages
    /// when they change, [`Stability::Failed`] ends the wait as a rollout failure, retryable
    /// errors are reported and waited through, a timeout says what was seen last), with a
    /// service MISSING (or its cluster not found) a failure.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn wait(
        &self,
        target: &TargetId,
        cluster: &str,
        service: &str,
        what: &str,
        timeout: Duration,
        progress: &Progress,
        judge: impl Fn(&Service) -> Stability,
    ) -> Result<()> {
        let start = Instant::now();
        let deadline = start
            .checked_add(timeout)
            .unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 86_400));
        let mut last = String::from("nothing yet");
        let mut at = self.first_look(start).min(deadline);
        loop {
            let seen = match self.look(cluster, service, at).await {
                Look::Found(svc) => Ok(judge(&svc)),
                Look::Missing(reason) => Ok(Stability::Failed(format!("the service is {reason}"))),
                Look::Failed(e) if e.kind() == ErrorKind::NotFound => {
                    Ok(Stability::Failed("the service is MISSING".into()))
                }
                Look::Failed(e) => Err(for_target(&e, target)),
            };
            match seen {
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
            at = self.next_look(now, now - start).min(deadline);
        }
    }
}

/// `names` of `cluster` described ten per call, the calls at once: each under [`limited`]
/// when they are a wait's looks (`tick_ms`, the tick they are made at), and under the
/// callers' own places when they are not.
async fn describe_all(
    describe: &Describe,
    cluster: &str,
    names: &[String],
    tick_ms: Option<u64>,
) -> HashMap<String, Look> {
    let chunks: Vec<&[String]> = names.chunks(MAX_SERVICES).collect();
    let calls = chunks.iter().map(|chunk| {
        let call = describe(cluster.to_string(), chunk.to_vec());
        async move {
            match tick_ms {
                Some(_) => limited(call).await,
                None => call.await,
            }
        }
    });
    let answers = join_all(calls).await;
    let mut looks = HashMap::with_capacity(names.len());
    for (chunk, answer) in chunks.iter().zip(answers) {
        tracing::debug!(
            cluster = %cluster,
            tick_ms,
            services = chunk.len(),
            ok = answer.is_ok(),
            "DescribeServices"
        );
        match answer {
            Ok(out) => {
                for name in *chunk {
                    let look = match found(&out, name) {
                        Ok(svc) => Look::Found(Arc::new(svc)),
                        Err(reason) => Look::Missing(reason),
                    };
                    looks.insert(name.clone(), look);
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for name in *chunk {
                    looks.insert(name.clone(), Look::Failed(e.clone()));
                }
            }
        }
    }
    looks
}

/// The service `name` names in a DescribeServices answer (its name or ARN), or AWS's reason
/// for its absence (`MISSING`).
pub(crate) fn found(
    out: &DescribeServicesOutput,
    name: &str,
) -> std::result::Result<Service, String> {
    let is = |arn: Option<&str>| arn.is_some_and(|a| a == name || a.ends_with(&format!("/{name}")));
    if let Some(svc) = out
        .services()
        .iter()
        .find(|s| s.service_name() == Some(name) || is(s.service_arn()))
    {
        return Ok(svc.clone());
    }
    let failures = out.failures();
    let reason = failures
        .iter()
        .find(|f| is(f.arn()))
        .or(if failures.len() == 1 {
            failures.first()
        } else {
            None
        })
        .and_then(|f| f.reason())
        .unwrap_or("MISSING");
    Err(reason.to_string())
}

/// A batch's error as one waiter's: the same kind, message and retry hint, naming
/// `target`, with the batch's error (and through it the SDK's) as its source.
pub(crate) fn for_target(e: &Arc<Error>, target: &TargetId) -> Error {
    let mut record = e.record();
    record.target = target.to_string();
    Error::from_record(&record).with_source(Cause(e.clone()))
}

/// The error of a batched call, shared by the waiters it failed.
#[derive(Debug)]
struct Cause(Arc<Error>);

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::Failure;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The calls a fake DescribeServices got: cluster and names, in order.
    type Calls = Arc<Mutex<Vec<(String, Vec<String>)>>>;

    /// A poller whose DescribeServices is `answer(cluster, name, how many times the name was
    /// described before)`: `Ok(Some(running))` a service with that many of 1 task running,
    /// `Ok(None)` MISSING, `Err` the call fails.
    fn poller(
        schedule: PollSchedule,
        answer: impl Fn(&str, &str, usize) -> Result<Option<i32>> + Send + Sync + 'static,
    ) -> (Poller, Calls) {
        let calls: Calls = Arc::default();
        let looks: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let answer = Arc::new(answer);
        let seen = calls.clone();
        let describe: Describe = Arc::new(move |cluster: String, names: Vec<String>| {
            lock(&seen).push((cluster.clone(), names.clone()));
            let mut out = DescribeServicesOutput::builder();
            for name in &names {
                let n = {
                    let mut looks = lock(&looks);
                    let n = looks.entry(name.clone()).or_default();
                    *n += 1;
                    *n - 1
                };
                match answer(&cluster, name, n) {
                    Ok(Some(running)) => {
                        out = out.services(
                            Service::builder()
                                .service_name(name)
                                .desired_count(1)
                                .running_count(running)
                                .build(),
                        )
                    }
                    Ok(None) => {
                        out = out.failures(
                            Failure::builder()
                                .arn(format!("arn:aws:ecs:us-east-1:1:service/{cluster}/{name}"))
                                .reason("MISSING")
                                .build(),
                        )
                    }
                    Err(e) => return futures::future::ready(Err(e)).boxed(),
                }
            }
            futures::future::ready(Ok(out.build())).boxed()
        });
        (Poller::with(describe, schedule), calls)
    }

    /// A grid 200 ms apart, the first look 100 ms in: waiters started together (within
    /// 100 ms of the poller) share every tick.
    fn fast() -> PollSchedule {
        PollSchedule {
            first: Duration::from_millis(100),
            initial: Duration::from_millis(200),
            early: Duration::from_millis(200),
            early_for: Duration::from_secs(60),
            late: Duration::from_millis(800),
        }
    }

    fn judge(svc: &Service) -> Stability {
        if svc.running_count() == svc.desired_count() {
            Stability::Stable
        } else {
            Stability::Waiting(format!("{} of 1 running", svc.running_count()))
        }
    }

    fn id(name: &str) -> TargetId {
        TargetId::new("ecs-service", format!("c/{name}"))
    }

    /// `p.wait` for `cluster/name` with a 30 s timeout.
    async fn wait(p: &Poller, cluster: &str, name: &str, progress: &Progress) -> Result<()> {
        let t = Duration::from_secs(30);
        p.wait(&id(name), cluster, name, "stable", t, progress, judge)
            .await
    }

    fn sizes(calls: &Calls, cluster: &str) -> Vec<usize> {
        lock(calls)
            .iter()
            .filter(|(c, _)| c == cluster)
            .map(|(_, n)| n.len())
            .collect()
    }

    #[test]
    fn the_grid_is_shared_and_old_waiters_look_every_fourth_tick() {
        let (p, _) = poller(
            PollSchedule::stability().first_look(Duration::from_millis(250)),
            |_, _, _| Ok(Some(1)),
        );
        let ms = |n: u64| p.epoch + Duration::from_millis(n);
        assert_eq!(p.first_look(ms(0)), ms(400));
        assert_eq!(p.first_look(ms(150)), ms(400));
        assert_eq!(p.first_look(ms(151)), ms(800));
        assert_eq!(p.next_look(ms(405), Duration::from_secs(1)), ms(800));
        assert_eq!(p.next_look(ms(800), Duration::from_secs(1)), ms(1200));
        // After 10 s, every fourth tick (1.6 s), the same ticks for every old waiter.
        assert_eq!(p.next_look(ms(405), Duration::from_secs(11)), ms(1600));
        assert_eq!(p.next_look(ms(1600), Duration::from_secs(11)), ms(3200));
    }

    #[tokio::test]
    async fn looks_due_at_one_tick_share_calls_of_ten_per_cluster() {
        let (p, calls) = poller(fast(), |_, _, _| Ok(Some(1)));
        let at = Instant::now() + Duration::from_millis(50);
        let names: Vec<String> = (0..25).map(|i| format!("s{i:02}")).collect();
        let mut looks: Vec<_> = names.iter().map(|n| p.look("a", n, at)).collect();
        // Two waiters on one service (its revision and its desired count) share its name.
        looks.push(p.look("a", "s00", at));
        looks.extend(["x", "y", "z"].map(|n| p.look("b", n, at)));
        let seen = futures::future::join_all(looks).await;
        assert!(seen.iter().all(|l| matches!(l, Look::Found(_))), "{seen:?}");
        let mut a = sizes(&calls, "a");
        a.sort_unstable();
        assert_eq!(a, [5, 10, 10]);
        assert_eq!(sizes(&calls, "b"), [3]);
        assert_eq!(lock(&p.batches).len(), 0, "fired batches leave the index");
    }

    #[tokio::test]
    async fn waiters_started_together_look_at_the_same_ticks() {
        // Service i is stable at its (1 + i % 3)-th look: 9 at the first, 8 at the second,
        // 8 at the third. Every tick describes every waiter still waiting, ten per call.
        let (p, calls) = poller(fast(), |_, name, n| {
            let i: usize = name[1..].parse().unwrap_or(0);
            Ok(Some(i32::from(n >= i % 3)))
        });
        let reported = Arc::new(AtomicUsize::new(0));
        let progress = {
            let reported = reported.clone();
            Progress::new(move |_| {
                reported.fetch_add(1, Ordering::SeqCst);
            })
        };
        let names: Vec<String> = (0..25).map(|i| format!("s{i:02}")).collect();
        let waits = names.iter().map(|n| wait(&p, "c", n, &progress));
        let results = futures::future::join_all(waits).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(sizes(&calls, "c"), [10, 10, 5, 10, 6, 8]);
        // One message per waiter that waited (16), when it changed.
        assert_eq!(reported.load(Ordering::SeqCst), 16);
        assert_eq!(lock(&p.batches).len(), 0);
    }

    #[tokio::test]
    async fn a_missing_service_fails_its_own_waiter_only() {
        let (p, calls) = poller(fast(), |_, name, _| Ok((name != "gone").then_some(1)));
        let none = Progress::none();
        let (gone, here) =
            futures::join!(wait(&p, "c", "gone", &none), wait(&p, "c", "here", &none),);
        let err = gone.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RolloutFailed, "{err}");
        assert!(err.to_string().contains("MISSING"), "{err}");
        assert!(err.to_string().contains("c/gone"), "{err}");
        assert!(here.is_ok(), "{here:?}");
        assert_eq!(sizes(&calls, "c"), [2], "one call for both");
    }

    #[tokio::test]
    async fn errors_are_each_waiters_own_and_retryable_ones_are_waited_through() {
        let (p, calls) = poller(fast(), |cluster, _, n| match (cluster, n) {
            ("flaky", 0) => Err(Error::backend(
                "ecs-service/flaky",
                "DescribeServices: HTTP 503",
                true,
            )),
            ("denied", _) => Err(Error::backend(
                "ecs-service/denied",
                "DescribeServices: AccessDeniedException",
                false,
            )),
            ("gone", _) => Err(Error::not_found(
                "ecs-service/gone",
                "cluster gone",
                "check it",
            )),
            _ => Ok(Some(1)),
        });
        let messages = Arc::new(Mutex::new(Vec::<String>::new()));
        let progress = {
            let messages = messages.clone();
            Progress::new(move |m| lock(&messages).push(m.to_string()))
        };
        let (flaky, d1, d2, gone) = futures::join!(
            wait(&p, "flaky", "f", &progress),
            wait(&p, "denied", "d1", &progress),
            wait(&p, "denied", "d2", &progress),
            wait(&p, "gone", "g", &progress),
        );
        assert!(flaky.is_ok(), "{flaky:?}");
        assert!(
            lock(&messages)
                .iter()
                .any(|m| m.starts_with("retrying after:") && m.contains("503")),
            "{messages:?}"
        );
        for (err, who) in [(d1.unwrap_err(), "c/d1"), (d2.unwrap_err(), "c/d2")] {
            assert_eq!(err.kind(), ErrorKind::Backend);
            assert_eq!(err.target(), format!("ecs-service/{who}"));
            assert!(err.to_string().contains("AccessDenied"), "{err}");
            let source = std::error::Error::source(&err).map(ToString::to_string);
            assert!(source.is_some_and(|s| s.contains("ecs-service/denied")));
        }
        assert_eq!(sizes(&calls, "denied"), [2], "one failed call for both");
        assert_eq!(gone.unwrap_err().kind(), ErrorKind::RolloutFailed);
    }

    #[tokio::test]
    async fn a_timeout_looks_once_at_the_deadline_and_says_what_it_saw() {
        let (p, calls) = poller(fast(), |_, _, _| Ok(Some(0)));
        let err = p
            .wait(
                &id("s"),
                "c",
                "s",
                "revision f:1 to be stable",
                Duration::from_millis(450),
                &Progress::none(),
                judge,
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(err.to_string().contains("0 of 1 running"), "{err}");
        // Ticks at 200 and 400 ms, then the deadline.
        assert_eq!(sizes(&calls, "c"), [1, 1, 1]);
    }

    #[tokio::test]
    async fn a_waiter_dropped_mid_call_leaves_the_others_to_finish() {
        let entered = Arc::new(tokio::sync::Notify::new());
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let describe: Describe = {
            let (entered, gate, calls) = (entered.clone(), gate.clone(), calls.clone());
            Arc::new(move |_, names: Vec<String>| {
                let (entered, gate) = (entered.clone(), gate.clone());
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    entered.notify_one();
                    let _open = gate.acquire().await;
                    let mut out = DescribeServicesOutput::builder();
                    for n in names {
                        out = out.services(Service::builder().service_name(n).build());
                    }
                    Ok(out.build())
                }
                .boxed()
            })
        };
        let p = Poller::with(describe, fast());
        let at = Instant::now();
        let a = p.join("c", "a", at);
        let b = p.join("c", "b", at);
        // a drives the batch into its call, and is dropped there.
        let driver = tokio::spawn(a);
        entered.notified().await;
        driver.abort();
        assert!(driver.await.unwrap_err().is_cancelled());
        gate.add_permits(1);
        let looks = b.await;
        assert!(matches!(looks.get("b"), Some(Look::Found(_))), "{looks:?}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the call a started served b"
        );
        assert_eq!(lock(&p.batches).len(), 0);
    }

    #[tokio::test]
    async fn batches_nobody_drove_leave_the_index_with_the_next_one() {
        let (p, calls) = poller(fast(), |_, _, _| Ok(Some(1)));
        let long_ago = Instant::now().checked_sub(Duration::from_secs(5));
        if let Some(long_ago) = long_ago {
            drop(p.join("c", "abandoned", long_ago));
            assert_eq!(lock(&p.batches).len(), 1);
        }
        let look = p.look("c", "s", Instant::now()).await;
        assert!(matches!(look, Look::Found(_)));
        assert_eq!(lock(&p.batches).len(), 0);
        assert_eq!(sizes(&calls, "c"), [1], "the abandoned batch made no call");
    }
}
