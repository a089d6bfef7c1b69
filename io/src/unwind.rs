//! Panics in code a refresh runs (user hooks, a user `HttpTransport`, a
//! runtime's timer) caught and turned into [`Panicked`], which names the
//! code and keeps the panic's message. Both the synchronous part of a call
//! and every poll of the future it returns are guarded, so a panic never
//! unwinds through a driver with callers waiting.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use refresh_session_core::error::Panicked;

/// Runs `f`, turning a panic into [`Panicked`] for `what`.
pub fn guarded<T>(what: &'static str, f: impl FnOnce() -> T) -> Result<T, Panicked> {
    // The state `f` touches is dropped or reset by the caller on error.
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| Panicked::new(what, &*payload))
}

/// A future whose polls are guarded: it completes with [`Panicked`] for
/// `what` instead of unwinding.
pub fn guarded_future<F: Future>(what: &'static str, future: F) -> CatchUnwind<F> {
    CatchUnwind {
        what,
        future: Some(Box::pin(future)),
    }
}

/// The future of [`guarded_future`].
pub struct CatchUnwind<F> {
    what: &'static str,
    /// Gone once it has panicked: a future is not polled after that.
    future: Option<Pin<Box<F>>>,
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Panicked>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let what = self.what;
        let Some(future) = self.future.as_mut() else {
            return Poll::Ready(Err(Panicked::new(what, &"polled after it panicked")));
        };
        match guarded(what, || future.as_mut().poll(cx)) {
            Ok(poll) => poll.map(Ok),
            Err(panicked) => {
                self.future = None;
                Poll::Ready(Err(panicked))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    #[test]
    fn a_panic_names_the_code_and_keeps_its_message() {
        let caught = guarded("custom credential provider", || -> u8 {
            panic!("no such key")
        })
        .expect_err("it panicked");
        assert_eq!(
            caught.to_string(),
            "the custom credential provider panicked"
        );
        assert_eq!(caught.message(), "no such key");
        let formatted = guarded("MFA token provider", || -> u8 { panic!("code {}", 7) })
            .expect_err("it panicked");
        assert_eq!(formatted.message(), "code 7");
        assert_eq!(guarded("anything", || 5), Ok(5));
    }

    #[test]
    fn a_future_that_panics_when_polled_completes_with_the_panic() {
        let mut future = guarded_future("HTTP transport", async {
            panic!("socket gone");
        });
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut future).poll(&mut cx) {
            Poll::Ready(Err(panicked)) => assert_eq!(panicked.message(), "socket gone"),
            _ => panic!("the panic is the answer"),
        }
        assert!(matches!(
            Pin::new(&mut future).poll(&mut cx),
            Poll::Ready(Err(_))
        ));
    }
}
