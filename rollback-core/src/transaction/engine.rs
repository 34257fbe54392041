//! The lifecycle, phase by phase: [`build`] checks the shape; [`run`] does
//! [preflight](super::preflight), [locks](super::leases) the targets, then hands the steps
//! to [`drive`](super::drive::drive()) (which [`resume()`](super::resume()) also uses to finish a crashed
//! run from its journal), which [compensates](super::compensate) on failure and
//! [reports](super::report).

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;

use super::drive::drive;
use super::leases::{lock_all, spawn_renewal};
use super::preflight::{abort, preflight};
use super::report::finish;
use super::{Report, Transaction, TransactionBuilder};
use crate::error::{Error, Result};
use crate::journal;

pub(crate) fn build(b: TransactionBuilder) -> Result<Transaction> {
    let what = format!("transaction {:?}", b.name);
    if b.name.trim().is_empty() {
        return Err(Error::invalid(
            "transaction",
            "a transaction needs a name (what is being rolled back)",
        ));
    }
    if b.concurrency == 0 {
        return Err(Error::invalid(what, "concurrency must be at least 1"));
    }
    if b.lease_ttl < Duration::from_secs(1) {
        return Err(Error::invalid(what, "lease_ttl must be at least 1 second"));
    }
    let steps: Vec<_> = b.stages.iter().flatten().collect();
    if steps.is_empty() {
        return Err(Error::invalid(
            what,
            "has no steps; add at least one with .step(Step::new(target, selector))",
        ));
    }
    let mut seen = HashSet::new();
    for s in &steps {
        let id = s.target.id();
        if !seen.insert(id.clone()) {
            return Err(Error::invalid(
                id.to_string(),
                "appears in two steps; a transaction moves each target once",
            ));
        }
        if s.timeout.is_zero() {
            return Err(Error::invalid(
                id.to_string(),
                "the step's stability timeout is zero; give it time to converge",
            ));
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    // Chosen once, so that a dry run names the file the run will write.
    let journal = b.journal.clone().unwrap_or_else(|| {
        journal::default_dir().join(format!(
            "{}-{}.jsonl",
            Utc::now().format("%Y%m%dT%H%M%SZ"),
            &id[..8]
        ))
    });
    Ok(Transaction { id, journal, b })
}

pub(crate) async fn run(t: &Transaction, dry_run: bool) -> Result<Report> {
    let b = &t.b;
    // 1. Preflight: read only.
    let (ctx, mut steps, holder) = preflight(t, dry_run).await?;
    if dry_run {
        return Ok(finish(&ctx, &mut steps, None, Vec::new(), Default::default(), true).await);
    }
    // 2. Lock every target.
    if let Err(e) = lock_all(&ctx, &b.locks, &steps, &holder, b.lease_ttl).await {
        abort(&ctx, &e).await;
        return Err(e);
    }
    let renewer = spawn_renewal(ctx.fence.clone());
    super::report::notify_started(&ctx, &steps).await;
    // 3-5. Apply, wait, verify; compensate or halt; report.
    let report = drive(&ctx, &mut steps, None).await;
    drop(renewer);
    ctx.release(b.locks.as_ref()).await;
    Ok(report)
}
