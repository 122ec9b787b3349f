//! Frames coded or decoded on worker threads. Callers hand in a frame once everything it
//! depends on is done and take results as they finish, so the work of one mini-GOP overlaps
//! the next; what is coded never depends on the thread count.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};

/// Jobs run as they are handed in: on a pool of worker threads, or with one thread on the
/// caller's, at once. Results come back in the order the jobs finish.
pub struct Workers<R> {
    pool: Option<rayon::ThreadPool>,
    finished: Sender<std::thread::Result<R>>,
    results: Receiver<std::thread::Result<R>>,
    running: usize,
}

impl<R: Send + 'static> Workers<R> {
    /// Workers for `threads` threads (at least one).
    pub fn new(threads: usize) -> Self {
        // A pool that cannot start its threads leaves the work on the caller's thread.
        let pool = (threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("codec-worker-{i}"))
                    .build()
                    .ok()
            })
            .flatten();
        let (finished, results) = channel();
        Workers {
            pool,
            finished,
            results,
            running: 0,
        }
    }

    /// Threads the jobs run on.
    pub fn threads(&self) -> usize {
        self.pool
            .as_ref()
            .map_or(1, rayon::ThreadPool::current_num_threads)
    }

    /// Jobs handed in whose results have not been taken.
    pub fn running(&self) -> usize {
        self.running
    }

    pub fn submit(&mut self, job: impl FnOnce() -> R + Send + 'static) {
        self.running += 1;
        let finished = self.finished.clone();
        let run = move || {
            // The receiver lives as long as `self`; a result sent after it is gone is not
            // wanted.
            let _ = finished.send(catch_unwind(AssertUnwindSafe(job)));
        };
        match &self.pool {
            Some(pool) => pool.spawn(run),
            None => run(),
        }
    }

    /// The next job to finish, waiting for it; `None` when none is running. A job that
    /// panicked panics here.
    pub fn next_finished(&mut self) -> Option<R> {
        if self.running == 0 {
            return None;
        }
        let result = self
            .results
            .recv()
            .expect("the sending half is held by `self`");
        Some(self.taken(result))
    }

    /// A job that has finished, without waiting; `None` when none has.
    pub fn finished_now(&mut self) -> Option<R> {
        let result = self.results.try_recv().ok()?;
        Some(self.taken(result))
    }

    fn taken(&mut self, result: std::thread::Result<R>) -> R {
        self.running -= 1;
        result.unwrap_or_else(|panic| resume_unwind(panic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_job_finishes_once_at_any_thread_count() {
        for threads in [1, 2, 3, 8] {
            let mut workers = Workers::new(threads);
            assert_eq!(workers.threads(), threads);
            let started = Arc::new(AtomicUsize::new(0));
            for job in 0..37u64 {
                let started = Arc::clone(&started);
                workers.submit(move || {
                    started.fetch_add(1, Ordering::Relaxed);
                    // Unequal jobs, so that threads finish out of order.
                    std::thread::sleep(std::time::Duration::from_micros((job % 5) * 200));
                    job * job + 1
                });
            }
            assert_eq!(workers.running(), 37);
            let mut results: Vec<u64> = std::iter::from_fn(|| workers.finished_now()).collect();
            results.extend(std::iter::from_fn(|| workers.next_finished()));
            results.sort_unstable();
            let expected: Vec<u64> = (0..37).map(|j| j * j + 1).collect();
            assert_eq!(results, expected, "{threads} threads");
            assert_eq!(started.load(Ordering::Relaxed), 37);
            assert_eq!(workers.running(), 0);
            assert!(workers.next_finished().is_none());
        }
    }

    #[test]
    fn a_panicking_job_panics_where_its_result_is_taken() {
        for threads in [1, 2] {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let mut workers = Workers::new(threads);
                workers.submit(|| -> u8 { panic!("job failed") });
                workers.next_finished()
            }));
            let message = outcome.expect_err("the panic reaches the caller");
            assert_eq!(message.downcast_ref::<&str>(), Some(&"job failed"));
        }
    }
}
