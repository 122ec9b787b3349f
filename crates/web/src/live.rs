//! Live updates: `GET /api/stream` sends an `update` event (a [`Pulse`] as JSON: status, counts
//! by state, queue, newest ids) at connection and whenever it changes, checked every second.
//! The pages update their counters from it and reload their tables when the newest ids move.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::watch;

use crate::AppState;
use crate::data::{self, Pulse};

const POLL: Duration = Duration::from_secs(1);

/// Resolves once `shutdown` turns true (never, if its sender is gone without saying so).
pub async fn shut_down(mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

pub async fn stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let updates = futures::stream::unfold((state, None::<Pulse>), |(state, last)| async move {
        let mut shutdown = state.shutdown.clone();
        loop {
            if *shutdown.borrow_and_update() {
                return None;
            }
            match data::pulse(&state.lab.store).await {
                Ok(pulse) if last.as_ref() != Some(&pulse) => {
                    match Event::default().event("update").json_data(&pulse) {
                        Ok(event) => return Some((Ok(event), (state, Some(pulse)))),
                        Err(e) => tracing::warn!("live update: {e}"),
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("live update: {e}"),
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(POLL).await;
                    }
                }
            }
        }
    });
    Sse::new(updates).keep_alive(KeepAlive::default())
}
