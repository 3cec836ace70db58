//! Reading an SDK paginator up to a number of pages: the one loop behind every bounded
//! listing of the adapters and quarantinectl.

use std::error::Error as StdError;
use std::fmt::Debug;
use std::ops::ControlFlow;

use aws_sdk_iot::error::ProvideErrorMetadata;
use aws_smithy_async::future::pagination_stream::PaginationStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use mitigation::ActionError;

use crate::errors::classify;

/// Hands each of at most `max_pages` pages to `each`, which may stop early with
/// `ControlFlow::Break`; the first failed page ends it, classified as `operation` on
/// `subject`.
pub async fn read_pages<O, E>(
    mut pages: PaginationStream<Result<O, SdkError<E, HttpResponse>>>,
    max_pages: usize,
    operation: &'static str,
    subject: &str,
    mut each: impl FnMut(O) -> ControlFlow<()>,
) -> Result<(), ActionError>
where
    E: ProvideErrorMetadata + StdError + Debug + Send + Sync + 'static,
{
    for _ in 0..max_pages {
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|e| classify(operation, subject, e))?;
        if each(page).is_break() {
            break;
        }
    }
    Ok(())
}
