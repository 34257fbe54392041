//! What every AWS target shares about the SDK: its times as chrono's, and every page of a
//! listing through the SDK's paginators.

use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use rollback_core::{Error, Result, TargetId};

use crate::error::sdk_error;

/// An SDK time as chrono's; `None` outside chrono's range.
pub(crate) fn chrono_time(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// A chrono time as the SDK's.
pub(crate) fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs_and_nanos(t.timestamp(), t.timestamp_subsec_nanos())
}

/// The most pages a listing is read to. A listing longer than that is an endpoint that
/// never stops paging, or a resource to narrow down; either way it is refused, saying so,
/// rather than acted on in part (a history cut short, alarms left unchecked).
pub(crate) const MAX_PAGES: usize = 1000;

/// Every page of a listing (`client.list_...().into_paginator().send()`): one call per page,
/// as many as AWS has, up to [`MAX_PAGES`]. The SDK's paginator stops at an empty or a
/// repeated token. A failed page fails the listing ([`sdk_error`] for `op`).
pub(crate) async fn all_pages<O, E>(
    target: &TargetId,
    op: &str,
    mut pages: PaginationStream<std::result::Result<O, SdkError<E, HttpResponse>>>,
) -> Result<Vec<O>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        if out.len() == MAX_PAGES {
            return all_pages_refused(target, op);
        }
        out.push(page.map_err(|e| sdk_error(target, op, e))?);
    }
    Ok(out)
}

/// The error of a listing with more than [`MAX_PAGES`] pages.
pub(crate) fn all_pages_refused<T>(target: &TargetId, op: &str) -> Result<T> {
    Err(Error::backend(
        target.to_string(),
        format!(
            "{op}: AWS has more than {MAX_PAGES} pages, more than this listing reads; check the endpoint, or narrow the listing down (nothing was changed)"
        ),
        false,
    ))
}
