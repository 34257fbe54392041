//! The conformance suite every [`LockManager`] runs: the contract the engine's locking and
//! fencing rely on, checked against a live store (a folder, a DynamoDB table, a
//! Kubernetes namespace).
//!
//! ```no_run
//! use rollback_core::conformance::locks::assert_lock_conformance;
//! use rollback_core::FileLocks;
//!
//! # async fn demo() {
//! let dir = tempfile::tempdir().unwrap();
//! assert_lock_conformance(&FileLocks::new(dir.path())).await;
//! # }
//! ```
//!
//! Every check uses targets of its own (kind `conformance`, names made unique per run), so
//! the suite can run against a store other runs use, and gives back what it takes.

use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;

use super::ConformanceReport;
use crate::error::{ErrorKind, Result};
use crate::lock::{Holder, Lease, LockManager};
use crate::target::TargetId;

/// How many holders race for one target in the `race` check.
pub const RACERS: usize = 8;

/// Runs [`run`] and panics listing every failure.
pub async fn assert_lock_conformance(locks: &dyn LockManager) {
    let report = run(locks).await;
    if !report.is_ok() {
        panic!("{locks:?} does not conform to the LockManager contract:\n{report}");
    }
}

type Check = std::result::Result<(), String>;

/// Runs every check against `locks` and reports each one.
pub async fn run(locks: &dyn LockManager) -> ConformanceReport {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let suite = Suite {
        locks,
        run: run[..12].to_string(),
    };
    let mut report = ConformanceReport::default();
    let mut record = |name: &str, r: Check| match r {
        Ok(()) => report.passed.push(name.to_string()),
        Err(e) => report.failures.push(format!("{name}: {e}")),
    };
    record("spec", suite.spec());
    record("acquire", suite.acquire().await);
    record("refuse_other_holder", suite.refuse_other_holder().await);
    record("reacquire_own", suite.reacquire_own().await);
    record("renew", suite.renew().await);
    record("release", suite.release().await);
    record("token_grows", suite.token_grows().await);
    record("expired_taken_over", suite.expired_taken_over().await);
    record("renew_after_release", suite.renew_after_release().await);
    record("targets_independent", suite.targets_independent().await);
    record("race", suite.race().await);
    report
}

struct Suite<'a> {
    locks: &'a dyn LockManager,
    run: String,
}

const TTL: Duration = Duration::from_secs(60);

fn holder(name: &str, transaction: &str) -> Holder {
    Holder {
        name: format!("{name}@conformance"),
        transaction: transaction.to_string(),
        journal: None,
    }
}

fn show<T: std::fmt::Debug>(r: &Result<T>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("{e} ({:?})", e.kind()),
    }
}

impl Suite<'_> {
    fn target(&self, name: &str) -> TargetId {
        TargetId::new("conformance", format!("{name}-{}", self.run))
    }

    fn holder(&self, name: &str) -> Holder {
        holder(name, &format!("{name}-{}", self.run))
    }

    async fn take(
        &self,
        t: &TargetId,
        h: &Holder,
        ttl: Duration,
    ) -> std::result::Result<Lease, String> {
        self.locks
            .acquire(t, h, ttl)
            .await
            .map_err(|e| format!("acquire {t} as {h}: {e}"))
    }

    async fn give_back(&self, lease: &Lease) -> Check {
        self.locks
            .release(lease)
            .await
            .map_err(|e| format!("release {}: {e}", lease.target))
    }

    async fn current(&self, t: &TargetId) -> std::result::Result<Option<Lease>, String> {
        self.locks
            .current(t)
            .await
            .map_err(|e| format!("current {t}: {e}"))
    }

    fn spec(&self) -> Check {
        match self.locks.spec() {
            Some(s) if s.kind.trim().is_empty() => Err("spec() has an empty kind".into()),
            Some(s) => {
                let text = serde_json::to_string(&s).map_err(|e| e.to_string())?;
                let back: crate::lock::LockSpec =
                    serde_json::from_str(&text).map_err(|e| e.to_string())?;
                (back == s)
                    .then_some(())
                    .ok_or_else(|| format!("spec does not round-trip through JSON: {text}"))
            }
            None => Ok(()),
        }
    }

    async fn acquire(&self) -> Check {
        let t = self.target("acquire");
        let a = self.holder("alice");
        let before = Utc::now();
        let lease = self.take(&t, &a, TTL).await?;
        let r = async {
            if lease.target != t || lease.holder.transaction != a.transaction {
                return Err(format!(
                    "the lease names another target or holder: {lease:?}"
                ));
            }
            if lease.token == 0 {
                return Err("a new lease has token 0; tokens start at 1".into());
            }
            let slack = chrono::Duration::seconds(5);
            let ttl = chrono::Duration::from_std(TTL).unwrap_or_default();
            if lease.expires_at < before + ttl - slack
                || lease.expires_at > Utc::now() + ttl + slack
            {
                return Err(format!(
                    "expires_at {} is not about {TTL:?} from now",
                    lease.expires_at
                ));
            }
            match self.current(&t).await? {
                Some(c) if c.holder.transaction == a.transaction && c.token == lease.token => {
                    Ok(())
                }
                other => Err(format!("current() after acquire: {other:?}")),
            }
        }
        .await;
        self.give_back(&lease).await?;
        r
    }

    async fn refuse_other_holder(&self) -> Check {
        let t = self.target("refuse");
        let a = self.holder("alice");
        let lease = self.take(&t, &a, TTL).await?;
        let r = async {
            let e = self.locks.acquire(&t, &self.holder("bob"), TTL).await;
            match &e {
                Err(e) if e.kind() == ErrorKind::Locked => {
                    if !e.to_string().contains(&a.name) {
                        return Err(format!("Locked does not name the holder {:?}: {e}", a.name));
                    }
                }
                other => return Err(format!("a second holder got {}", show(other))),
            }
            match self.current(&t).await? {
                Some(c) if c.holder.transaction == a.transaction => Ok(()),
                other => Err(format!("the refused acquire changed the lease: {other:?}")),
            }
        }
        .await;
        self.give_back(&lease).await?;
        r
    }

    async fn reacquire_own(&self) -> Check {
        let t = self.target("reacquire");
        let a = self.holder("alice");
        let first = self.take(&t, &a, TTL).await?;
        let again = self.take(&t, &a, TTL * 2).await;
        let r = match &again {
            Ok(l) if l.token != first.token => Err(format!(
                "the same transaction's lease changed token {} -> {}",
                first.token, l.token
            )),
            Ok(l) if l.expires_at < first.expires_at => {
                Err("taking one's own lease again shortened it".into())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e.clone()),
        };
        self.give_back(&first).await?;
        r
    }

    async fn renew(&self) -> Check {
        let t = self.target("renew");
        let lease = self.take(&t, &self.holder("alice"), TTL).await?;
        let renewed = self.locks.renew(&lease, TTL * 2).await;
        let r = match &renewed {
            Ok(n) if n.token != lease.token => Err("renew changed the token".to_string()),
            Ok(n) if n.expires_at <= lease.expires_at => Err(format!(
                "renew did not extend: {} -> {}",
                lease.expires_at, n.expires_at
            )),
            Ok(_) => match self.current(&t).await? {
                Some(c) if c.expires_at > lease.expires_at => Ok(()),
                other => Err(format!("the store does not hold the renewal: {other:?}")),
            },
            Err(_) => Err(format!("renew of a held lease: {}", show(&renewed))),
        };
        self.give_back(&lease).await?;
        r
    }

    async fn release(&self) -> Check {
        let t = self.target("release");
        let lease = self.take(&t, &self.holder("alice"), TTL).await?;
        self.give_back(&lease).await?;
        if let Some(c) = self.current(&t).await? {
            return Err(format!("current() after release: {c:?}"));
        }
        // Giving back twice is not an error.
        self.give_back(&lease).await?;
        let b = self.take(&t, &self.holder("bob"), TTL).await?;
        self.give_back(&b).await
    }

    async fn token_grows(&self) -> Check {
        let t = self.target("token");
        let a = self.take(&t, &self.holder("alice"), TTL).await?;
        self.give_back(&a).await?;
        let b = self.take(&t, &self.holder("bob"), TTL).await?;
        self.give_back(&b).await?;
        (b.token > a.token).then_some(()).ok_or_else(|| {
            format!(
                "a lease taken after another was given back has token {} (the earlier one had {})",
                b.token, a.token
            )
        })
    }

    async fn expired_taken_over(&self) -> Check {
        let t = self.target("expired");
        let a = self.take(&t, &self.holder("alice"), Duration::ZERO).await?;
        let b = self.take(&t, &self.holder("bob"), TTL).await?;
        let r = async {
            if b.token <= a.token {
                return Err(format!(
                    "the takeover's token {} is not greater than {}",
                    b.token, a.token
                ));
            }
            match self.locks.renew(&a, TTL).await {
                Err(e) if e.kind() == ErrorKind::Locked && e.to_string().contains("bob@") => {}
                other => {
                    return Err(format!(
                        "the old holder's renew after a takeover got {} (want Locked naming bob)",
                        show(&other)
                    ))
                }
            }
            // The old holder giving back leaves the new holder's lease alone.
            self.give_back(&a).await?;
            match self.current(&t).await? {
                Some(c) if c.holder.transaction == b.holder.transaction => Ok(()),
                other => Err(format!(
                    "the old holder's release touched the new lease: {other:?}"
                )),
            }
        }
        .await;
        self.give_back(&b).await?;
        r
    }

    async fn renew_after_release(&self) -> Check {
        let t = self.target("renew-released");
        let a = self.take(&t, &self.holder("alice"), TTL).await?;
        self.give_back(&a).await?;
        let r = self.locks.renew(&a, TTL).await;
        let out = match &r {
            Err(e) if matches!(e.kind(), ErrorKind::LeaseLost | ErrorKind::Locked) => Ok(()),
            _ => Err(format!(
                "renewing a lease given back got {} (want LeaseLost)",
                show(&r)
            )),
        };
        if let Ok(l) = r {
            self.give_back(&l).await?;
        }
        out
    }

    async fn targets_independent(&self) -> Check {
        let (x, y) = (self.target("x"), self.target("y"));
        let a = self.take(&x, &self.holder("alice"), TTL).await?;
        let b = self.take(&y, &self.holder("bob"), TTL).await;
        self.give_back(&a).await?;
        self.give_back(&b?).await
    }

    async fn race(&self) -> Check {
        let t = self.target("race");
        let holders: Vec<Holder> = (0..RACERS)
            .map(|i| self.holder(&format!("racer{i}")))
            .collect();
        let results = join_all(holders.iter().map(|h| self.locks.acquire(&t, h, TTL))).await;
        let won: Vec<&Lease> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let bad: Vec<String> = results
            .iter()
            .filter(|r| matches!(r, Err(e) if e.kind() != ErrorKind::Locked))
            .map(show)
            .collect();
        for l in &won {
            self.give_back(l).await?;
        }
        if !bad.is_empty() {
            return Err(format!("racers got other errors than Locked: {bad:?}"));
        }
        match won.len() {
            1 => Ok(()),
            n => Err(format!(
                "{n} of {RACERS} racing holders got the lease (want exactly 1)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FileLocks;

    #[tokio::test]
    async fn file_locks_conform() {
        let dir = tempfile::tempdir().unwrap();
        let report = run(&FileLocks::new(dir.path())).await;
        assert!(report.is_ok(), "{report}");
        assert_eq!(report.passed.len(), 11, "{report}");
    }

    /// Grants every lease to everyone: the suite must see it.
    #[derive(Debug)]
    struct Careless;

    #[async_trait::async_trait]
    impl LockManager for Careless {
        async fn acquire(
            &self,
            target: &TargetId,
            holder: &Holder,
            ttl: Duration,
        ) -> Result<Lease> {
            let now = Utc::now();
            Ok(Lease {
                target: target.clone(),
                holder: holder.clone(),
                acquired_at: now,
                expires_at: now + chrono::Duration::from_std(ttl).unwrap(),
                token: 1,
            })
        }
        async fn renew(&self, lease: &Lease, _ttl: Duration) -> Result<Lease> {
            Ok(lease.clone())
        }
        async fn current(&self, _target: &TargetId) -> Result<Option<Lease>> {
            Ok(None)
        }
        async fn release(&self, _lease: &Lease) -> Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_manager_without_exclusion_fails_the_suite() {
        let report = run(&Careless).await;
        for check in [
            "acquire",
            "refuse_other_holder",
            "renew",
            "token_grows",
            "expired_taken_over",
            "renew_after_release",
            "race",
        ] {
            assert!(report.failed(check), "{check} should fail:\n{report}");
        }
        assert!(
            !report.failed("spec") && !report.failed("targets_independent"),
            "{report}"
        );
    }
}
