//! The one shape of this crate's targets: what each writes ([`AwsTarget`]: its kind, its
//! parameters, how it is made from them) and what they share (the journaled spec, the
//! registry factory, `Debug`), written once here.

use std::fmt;
use std::sync::Arc;

use rollback_core::{Registry, Result, RollbackTarget, TargetSpec};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::{Aws, AwsCache, AwsConfig};

/// An AWS target as data: its kind, the parameters a journal records, and how it is made
/// again from them and loaded AWS settings.
pub(crate) trait AwsTarget: RollbackTarget + Sized + 'static {
    /// The target kind, which picks the factory in a [`Registry`].
    const KIND: &'static str;
    /// The target's own parameters (names, never credentials or values), recorded flat
    /// beside the AWS settings.
    type Params: Serialize + DeserializeOwned + Send + 'static;
    /// The parameters of this target.
    fn params(&self) -> Self::Params;
    /// The AWS settings it was made with.
    fn aws(&self) -> &AwsConfig;
    /// The target for `params` with `aws` (the constructor a person calls).
    fn from_params(aws: &Aws, params: Self::Params) -> Result<Self>;
}

/// A spec's parameters: the target's own and, under `aws`, the AWS settings (absent in
/// older journals: the environment's).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Spec<P> {
    #[serde(flatten)]
    pub(crate) params: P,
    #[serde(default)]
    pub(crate) aws: AwsConfig,
}

/// [`RollbackTarget::spec`] of an AWS target.
pub(crate) fn spec<T: AwsTarget>(target: &T) -> TargetSpec {
    TargetSpec::new(
        T::KIND,
        Spec {
            params: target.params(),
            aws: target.aws().clone(),
        },
    )
}

/// Registers `T`'s factory: the spec's parameters, the AWS settings from `cache` (each
/// distinct configuration resolved once), [`AwsTarget::from_params`].
pub(crate) fn register<T: AwsTarget>(registry: &mut Registry, cache: &AwsCache) {
    let cache = cache.clone();
    registry.register(T::KIND, move |spec: TargetSpec| {
        let cache = cache.clone();
        async move {
            let spec: Spec<T::Params> = spec.params()?;
            let aws = cache.get(&spec.aws).await;
            Ok(Arc::new(T::from_params(&aws, spec.params)?) as Arc<dyn RollbackTarget>)
        }
    });
}

/// `Debug` of an AWS target: its id and its spec's parameters (names and AWS settings,
/// never credentials, clients or values).
pub(crate) fn debug<T: AwsTarget>(
    target: &T,
    name: &str,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    let params = spec(target).params;
    f.debug_struct(name)
        .field("id", &format_args!("{}", target.id()))
        .field("params", &format_args!("{params}"))
        .finish()
}

/// `impl Debug` through [`debug`].
macro_rules! debug_as_target {
    ($t:ident) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                crate::target::debug(self, stringify!($t), f)
            }
        }
    };
}
pub(crate) use debug_as_target;

/// `Debug` and [`AwsTarget`] for a target whose `Params` fields are fields of its own of
/// the same names, with its [`AwsConfig`] in field `aws`:
/// `aws_target!(LambdaAlias, KIND, Params { function, alias }, |aws, p| Self::new(aws, p.function, p.alias));`
macro_rules! aws_target {
    ($t:ident, $kind:expr, $params:ident { $($field:ident),* $(,)? }, |$aws:ident, $p:ident| $new:expr) => {
        crate::target::debug_as_target!($t);

        impl crate::target::AwsTarget for $t {
            const KIND: &'static str = $kind;
            type Params = $params;

            fn params(&self) -> $params {
                $params {
                    $($field: self.$field.clone()),*
                }
            }

            fn aws(&self) -> &crate::config::AwsConfig {
                &self.aws
            }

            fn from_params($aws: &crate::config::Aws, $p: $params) -> rollback_core::Result<Self> {
                $new
            }
        }
    };
}
pub(crate) use aws_target;
