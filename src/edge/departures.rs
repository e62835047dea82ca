//! How the app learns that a client has gone. Rocket 0.5 runs each handler
//! in its own task and never cancels it when the connection closes, so an
//! upload would go on decoding for nobody. The edge, which does see the
//! client leave, registers every upload it passes on here under a number
//! it sends along (`X-Kitteh-Edge-Request`); the handler takes the other
//! end and stops when it fires.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

/// The uploads in flight through the edge, by number.
#[derive(Debug, Default)]
pub struct Departures {
    waiting: Mutex<HashMap<u64, oneshot::Receiver<()>>>,
    next: AtomicU64,
}

/// Held by the edge while it waits for the app's answer; dropping it (the
/// answer came, or the client went away) is the signal.
#[derive(Debug)]
pub struct Watch {
    id: u64,
    book: Arc<Departures>,
    _sender: oneshot::Sender<()>,
    answered: bool,
}

/// How long the signal of a client that left waits for its handler to
/// take it: the handler may not have reached the upload yet.
const UNCLAIMED_FOR: std::time::Duration = std::time::Duration::from_secs(60);

impl Watch {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The app has answered: nobody will wait for this signal any more.
    pub fn answered(mut self) {
        self.answered = true;
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.answered {
            self.book.take(self.id);
            return;
        }
        // The client left: a handler that takes the signal later finds it
        // already fired. If none does, it is forgotten after a while.
        let (book, id) = (Arc::clone(&self.book), self.id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                tokio::time::sleep(UNCLAIMED_FOR).await;
                book.take(id);
            });
        } else {
            book.take(id);
        }
    }
}

impl Departures {
    pub fn register(self: &Arc<Self>) -> Watch {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, receiver);
        Watch {
            id,
            book: Arc::clone(self),
            _sender: sender,
            answered: false,
        }
    }

    /// The signal for request `id`: it resolves when the client has gone
    /// (or the edge has its answer, which the handler never waits past).
    pub fn take(&self, id: u64) -> Option<oneshot::Receiver<()>> {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
    }
}

/// Runs `work` until it finishes or the client behind `gone` leaves; in
/// the second case `work` is dropped (which stops its decode) and `left`
/// is returned.
pub async fn unless_gone<T>(
    gone: Option<oneshot::Receiver<()>>,
    work: impl Future<Output = T>,
    left: impl FnOnce() -> T,
) -> T {
    let Some(gone) = gone else {
        return work.await;
    };
    tokio::select! {
        biased;
        out = work => out,
        _ = gone => {
            tracing::info!("the client went away; its upload was stopped and nothing was stored");
            left()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropping_the_watch_stops_the_work_and_forgets_the_entry() {
        let book = Arc::new(Departures::default());
        let watch = book.register();
        let gone = book.take(watch.id());
        assert!(book.take(watch.id()).is_none(), "taken once");
        drop(watch);
        let out = unless_gone(gone, std::future::pending::<u8>(), || 7).await;
        assert_eq!(out, 7);
        let watch = book.register();
        let id = watch.id();
        watch.answered();
        assert!(book.take(id).is_none(), "an answered watch leaves no entry");
    }

    #[tokio::test]
    async fn a_client_that_left_before_its_handler_looked_is_still_seen_gone() {
        let book = Arc::new(Departures::default());
        let watch = book.register();
        let id = watch.id();
        drop(watch);
        let gone = book.take(id);
        assert!(gone.is_some(), "the signal waits for its handler");
        let out = unless_gone(gone, std::future::pending::<u8>(), || 7).await;
        assert_eq!(out, 7);
    }
}
