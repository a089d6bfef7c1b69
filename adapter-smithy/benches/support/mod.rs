//! What the benches share: the runtime components the SDK's identity cache
//! reads (a clock and tokio's sleep), and polling a future that must be
//! ready.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

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

/// The output of a future that must be ready on its first poll.
#[allow(dead_code)] // Not every bench polls by hand.
pub(crate) fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a hit must not wait"),
    }
}
