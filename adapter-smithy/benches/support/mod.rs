//! What the benches share: the runtime components the SDK's identity cache
//! reads (a clock and tokio's sleep).

use aws_smithy_async::rt::sleep::TokioSleep;
use aws_smithy_async::time::SystemTimeSource;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};

/// Components as an SDK operation hands them to its identity cache.
pub(crate) fn sdk_components() -> RuntimeComponents {
    RuntimeComponentsBuilder::for_tests()
        .with_time_source(Some(SystemTimeSource::new()))
        .with_sleep_impl(Some(TokioSleep::new()))
        .build()
        .expect("test components")
}
