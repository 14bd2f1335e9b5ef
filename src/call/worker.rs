//! A named thread that runs until asked to stop: the shape of the ring tone and the
//! camera preview, which each own a device for a while and must let it go before a
//! call's media opens it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use tracing::warn;

/// A thread running `work(stop)` until [`Worker::stop`] (or drop) sets `stop`.
#[derive(Debug)]
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts `work` on a thread named `name`; `work` checks the flag it is given and
    /// returns once it is set. A thread that cannot be started is logged.
    pub fn spawn(name: &str, work: impl FnOnce(&AtomicBool) + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || work(&flag))
            .map_err(|e| warn!("cannot start the {name} thread: {e}"))
            .ok();
        Self { stop, thread }
    }

    /// Asks the thread to stop and waits until it has (off the async runtime's threads).
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for Worker {
    /// Asks the thread to stop without waiting.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_waits_for_the_thread_and_drop_asks_it_to_end() {
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = Worker::spawn("test", move |stop| {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            tx.send(()).unwrap();
        });
        worker.stop().await;
        assert!(
            rx.try_recv().is_ok(),
            "the thread finished before stop returned"
        );
        let (tx, rx) = std::sync::mpsc::channel();
        drop(Worker::spawn("test", move |stop| {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            tx.send(()).unwrap();
        }));
        assert!(rx.recv_timeout(std::time::Duration::from_secs(5)).is_ok());
    }
}
