//! A folder in an S3 bucket, as the S3 stores use one ([`S3Journals`](crate::S3Journals),
//! [`S3KnownGood`](crate::S3KnownGood)): the bucket name checked, the prefix normalised,
//! path-style requests with a custom endpoint, objects written only if absent, listings of
//! every page.

use aws_config::SdkConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use rollback_core::{Error, Result, TargetId};

use crate::error::sdk_error;
use crate::Aws;

/// `bucket` under `prefix` (`""` or `a/b/`), with its client.
#[derive(Clone)]
pub(crate) struct S3Folder {
    client: crate::config::LazyClient<Client>,
    pub(crate) bucket: String,
    pub(crate) prefix: String,
}

impl S3Folder {
    /// Objects under the prefix read and written, the bucket listed under the prefix.
    pub(crate) fn permissions(&self) -> Vec<rollback_core::Permission> {
        let bucket = format!("arn:aws:s3:::{}", self.bucket);
        let objects = format!("{bucket}/{}*", self.prefix);
        let mut p = rollback_core::Permission::aws_all(&["s3:GetObject", "s3:PutObject"], &objects);
        p.push(rollback_core::Permission::aws("s3:ListBucket", bucket));
        p
    }
}

/// The S3 client of these settings: path-style when the endpoint is a custom one (an
/// emulator, MinIO).
pub(crate) fn s3_client(sdk: &SdkConfig) -> Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    Client::from_conf(config)
}

/// Refuses what is not an S3 bucket name; `what` names the store or target in the error.
pub(crate) fn check_bucket(what: &str, bucket: &str) -> Result<()> {
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'));
    if !valid {
        return Err(Error::invalid(
            what,
            format!("{bucket:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, '.' or '-')"),
        ));
    }
    Ok(())
}

impl S3Folder {
    /// Checks the bucket name (that it exists is learnt at first use) and normalises the
    /// prefix (`rollback/journals` -> `rollback/journals/`). `what` names the store in errors.
    pub(crate) fn new(aws: &Aws, what: &str, bucket: String, prefix: String) -> Result<Self> {
        check_bucket(what, &bucket)?;
        let mut prefix = prefix.trim_matches('/').to_string();
        if !prefix.is_empty() {
            prefix.push('/');
        }
        Ok(S3Folder {
            client: aws.lazy_client(s3_client),
            bucket,
            prefix,
        })
    }

    /// Creates the bucket unless this account already has it (in the configured region:
    /// outside `us-east-1` with that region's location constraint). A bucket of that name
    /// in another account is an error that says so.
    pub(crate) async fn create_bucket(&self, about: &TargetId) -> Result<()> {
        use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
        let region = self
            .client
            .get()
            .await?
            .config()
            .region()
            .map(|r| r.to_string());
        let config = region.filter(|r| r != "us-east-1").map(|r| {
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(r.as_str()))
                .build()
        });
        let out = self
            .client
            .get()
            .await?
            .create_bucket()
            .bucket(&self.bucket)
            .set_create_bucket_configuration(config)
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(e) => Err(sdk_error(about, "CreateBucket", e)),
        }
    }

    /// `s3://bucket/prefix/`.
    pub(crate) fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// Writes `key` (under the prefix) unless an object is there: `false` if one was.
    pub(crate) async fn put_if_absent(
        &self,
        key: &str,
        content_type: &str,
        body: Vec<u8>,
        about: &TargetId,
    ) -> Result<bool> {
        let out = self
            .client
            .get()
            .await?
            .put_object()
            .bucket(&self.bucket)
            .key(format!("{}{key}", self.prefix))
            .if_none_match("*")
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e)
                if e.raw_response().map(|r| r.status().as_u16()) == Some(412)
                    || e.code() == Some("PreconditionFailed") =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(about, "PutObject", e)),
        }
    }

    /// The body of `key` (a full key, as [`S3Folder::list`] gives them).
    pub(crate) async fn get(&self, key: &str, about: &TargetId) -> Result<Vec<u8>> {
        let out = self
            .client
            .get()
            .await?
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error(about, "GetObject", e))?;
        let body = out.body.collect().await.map_err(|e| {
            Error::backend(
                about.to_string(),
                format!("GetObject {key}: the body was cut short: {e}"),
                true,
            )
        })?;
        Ok(body.into_bytes().to_vec())
    }

    /// The full keys under `under` (below the prefix) and, with `folders`, the folders
    /// (common prefixes) right under it instead of the keys below those: every page, in
    /// S3's order (ascending), or only the first `limit` keys.
    pub(crate) async fn list(
        &self,
        under: &str,
        folders: bool,
        limit: Option<i32>,
        about: &TargetId,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let (mut keys, mut dirs) = (Vec::new(), Vec::new());
        let mut token = None;
        loop {
            let out = self
                .client
                .get()
                .await?
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(format!("{}{under}", self.prefix))
                .set_delimiter(folders.then(|| "/".to_string()))
                .set_max_keys(limit)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(about, "ListObjectsV2", e))?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            dirs.extend(
                out.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
            token = out.next_continuation_token().map(str::to_string);
            if token.is_none() || limit.is_some() {
                break;
            }
        }
        Ok((keys, dirs))
    }
}
