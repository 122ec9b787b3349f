//! Running independent pieces of work on several threads. Results come back in the order of
//! the jobs whatever the thread count, so what is coded never depends on it.

use std::sync::Mutex;

/// `work` applied to every job, on up to `threads` scoped threads (the calling thread alone
/// for one thread or one job); results in the jobs' order.
pub fn map_in_threads<J: Send, R: Send>(
    threads: usize,
    jobs: Vec<J>,
    work: impl Fn(J) -> R + Sync,
) -> Vec<R> {
    let workers = threads.min(jobs.len());
    if workers <= 1 {
        return jobs.into_iter().map(work).collect();
    }
    let count = jobs.len();
    // Jobs are taken from the front as threads come free, so unequal jobs balance.
    let queue = Mutex::new(jobs.into_iter().enumerate());
    let done = Mutex::new(Vec::with_capacity(count));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = queue
                        .lock()
                        .expect("no worker panics holding the queue")
                        .next();
                    let Some((index, job)) = next else { break };
                    let result = work(job);
                    done.lock()
                        .expect("no worker panics holding the results")
                        .push((index, result));
                }
            });
        }
    });
    let mut done = done.into_inner().expect("every worker has finished");
    done.sort_unstable_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_jobs_order_at_any_thread_count() {
        let jobs: Vec<u64> = (0..37).collect();
        let expected: Vec<u64> = jobs.iter().map(|j| j * j + 1).collect();
        for threads in [1, 2, 3, 8, 64] {
            let results = map_in_threads(threads, jobs.clone(), |j| {
                // Unequal jobs, so that threads finish out of order.
                std::thread::sleep(std::time::Duration::from_micros((j % 5) * 200));
                j * j + 1
            });
            assert_eq!(results, expected, "{threads} threads");
        }
        assert!(map_in_threads(4, Vec::<u8>::new(), |j| j).is_empty());
    }
}
