//! On-failure and on-success actions: each journaled before it runs (`action_intent`) and
//! after (`action`); one that fails needs a person and changes no outcome.

use std::sync::Arc;

use super::context::{Ctx, LOG_TARGET};
use super::{ActionReport, ActionRun, ActionWhen, AfterAction};
use crate::journal::Entry;

/// Runs `actions` in order, recording each. None runs once the run has lost a lease (they
/// change things too), and each is reported as not run. On-success actions stop on a stop
/// request: none starts after it and one under way is left (its intent journaled, no
/// outcome, so a resume runs it again), and `None` is returned (the journal holds what
/// ran). On-failure actions run to the end whatever is asked: they are what makes a failed
/// run safe.
pub(crate) async fn run_actions(
    ctx: &Ctx,
    when: ActionWhen,
    actions: &[Arc<dyn AfterAction>],
) -> Option<Vec<ActionReport>> {
    let mut reports = Vec::new();
    let lost = ctx.fence.lost();
    let run = ActionRun::new(ctx.id.clone(), when);
    let stoppable = when == ActionWhen::OnSuccess;
    let stop = || async {
        if stoppable {
            ctx.interrupt.interrupted().await
        } else {
            std::future::pending().await
        }
    };
    for a in actions {
        if stoppable && ctx.interrupt.is_interrupted() {
            return None;
        }
        let name = a.name();
        let (ok, message) = match &lost {
            Some(e) => (false, format!("not run: {e}")),
            None => {
                let intent = Entry::ActionIntent {
                    name: name.clone(),
                    when,
                };
                match ctx.record(None, intent, format!("{when} {name}")).await {
                    // No intent on disk, no action: a resume could not tell it ran.
                    Err(e) => (false, format!("not run: {e}")),
                    Ok(()) => {
                        tracing::info!(target: LOG_TARGET, transaction = %ctx.id, action = %name, %when, "running action");
                        tokio::select! {
                            r = a.run_in(&run) => match r {
                                Ok(m) => (true, m),
                                Err(e) => (false, e.to_string()),
                            },
                            () = stop() => return None,
                        }
                    }
                }
            }
        };
        ctx.note_action(&name, ok, &message).await;
        if !ok {
            let hint = match when {
                ActionWhen::OnFailure => "",
                ActionWhen::OnSuccess => "; the rollback itself succeeded, do this step by hand",
            };
            ctx.attention(
                None,
                format!("{when} action {name:?} failed: {message}{hint}"),
            );
        }
        reports.push(ActionReport { name, ok, message });
    }
    Some(reports)
}
