//! The tokio runtime of the extension: Delta log reads and scans run on it.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tokio::runtime::{Handle, Runtime};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The extension's multi-thread runtime, started on first use.
pub fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("workbench-delta")
            .build()
            .expect("the workbench extension could not start its tokio runtime")
    })
}

/// A future polled inside `handle`'s runtime context, whoever polls it.
///
/// FFI polls a provider's `scan` future on the host's side, where this library's
/// `Handle::current()` would panic; entering the handle on every poll fixes that
/// without blocking a thread.
pub struct InRuntime<'a, T> {
    pub handle: Handle,
    pub future: Pin<Box<dyn Future<Output = T> + Send + 'a>>,
}

impl<T> Future for InRuntime<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        let _entered = this.handle.enter();
        this.future.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_future_needing_a_runtime_runs_when_polled_from_outside_it() {
        let handle = runtime().handle().clone();
        let future = InRuntime {
            handle,
            future: Box::pin(async { Handle::current().runtime_flavor() }),
        };
        // futures' executor is not a tokio runtime: without InRuntime this panics.
        let flavor = futures::executor::block_on(future);
        assert_eq!(flavor, tokio::runtime::RuntimeFlavor::MultiThread);
    }
}
