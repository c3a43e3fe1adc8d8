//! Group commit: writes from many async tasks, stored by one thread in as
//! few transactions as the disk allows. A caller awaits its own result
//! without holding a thread; while one commit waits on the disk, the next
//! batch gathers. (Letting a batch wait a millisecond more saved no
//! measurable CPU and cost paced latency.)

use crate::gateway::locked;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Mutex;
use tokio::sync::oneshot;

pub struct GroupCommit<J, R> {
    queue: Mutex<mpsc::Sender<(J, oneshot::Sender<R>)>>,
}

impl<J: Send + 'static, R: Send + 'static> GroupCommit<J, R> {
    /// Starts the committer thread. `commit` stores a batch and returns one
    /// result per job, in order. The thread stops once the `GroupCommit` is
    /// dropped and the queue is empty.
    pub fn start(
        name: &str,
        mut commit: impl FnMut(Vec<J>) -> Vec<R> + Send + 'static,
    ) -> std::io::Result<Self> {
        let (queue, waiting) = mpsc::channel::<(J, oneshot::Sender<R>)>();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Ok(first) = waiting.recv() {
                    let (jobs, callers): (Vec<J>, Vec<_>) =
                        std::iter::once(first).chain(waiting.try_iter()).unzip();
                    // A bug in one batch must not stop every later commit:
                    // its callers get no answer (an error), the thread goes
                    // on. A transaction cut short by the panic rolls back.
                    let Ok(results) = catch_unwind(AssertUnwindSafe(|| commit(jobs))) else {
                        tracing::error!(batch = callers.len(), "a commit panicked");
                        continue;
                    };
                    for (caller, result) in callers.into_iter().zip(results) {
                        // A caller that went away no longer needs its answer.
                        let _ = caller.send(result);
                    }
                }
            })?;
        Ok(GroupCommit {
            queue: Mutex::new(queue),
        })
    }

    /// Stores `job` with whatever else is waiting; None if the committer
    /// has stopped (or dropped the job without an answer).
    pub async fn submit(&self, job: J) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        locked(&self.queue).send((job, tx)).ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn every_caller_gets_its_own_result_and_batches_form_under_load() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = batches.clone();
        let doubler = Arc::new(
            GroupCommit::start("test-commit", move |jobs: Vec<u32>| {
                seen.lock().unwrap().push(jobs.len());
                // As slow as a commit waiting on the disk.
                std::thread::sleep(std::time::Duration::from_millis(5));
                jobs.into_iter().map(|j| j * 2).collect()
            })
            .unwrap(),
        );
        let tasks: Vec<_> = (0..50u32)
            .map(|j| {
                let doubler = doubler.clone();
                tokio::spawn(async move { (j, doubler.submit(j).await) })
            })
            .collect();
        for task in tasks {
            let (j, result) = task.await.unwrap();
            assert_eq!(result, Some(j * 2));
        }
        let batches = batches.lock().unwrap();
        assert_eq!(batches.iter().sum::<usize>(), 50);
        assert!(batches.len() < 50, "some jobs shared a commit: {batches:?}");
    }

    #[tokio::test]
    async fn a_panicking_batch_fails_its_callers_and_later_ones_are_served() {
        let commit = GroupCommit::start("test-commit", |jobs: Vec<u32>| {
            assert!(!jobs.contains(&13), "a bug");
            jobs
        })
        .unwrap();
        assert_eq!(commit.submit(13).await, None);
        assert_eq!(commit.submit(14).await, Some(14));
    }

    #[test]
    fn the_thread_stops_once_dropped() {
        let token = Arc::new(());
        let held = token.clone();
        let commit = GroupCommit::start("test-commit", move |jobs: Vec<()>| {
            let _ = &held;
            jobs
        })
        .unwrap();
        drop(commit);
        for _ in 0..200 {
            if Arc::strong_count(&token) == 1 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("the committer thread did not stop");
    }
}
