//! Recycled sample buffers: the features allocate the same large arrays for every frame, and
//! fresh large allocations cost page faults and zeroing by the kernel. Buffers return to a
//! per-thread free list when dropped.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

/// Buffers kept per thread at most (enough for one frame's ADM and luma planes).
const KEPT: usize = 64;

thread_local! {
    static FREE: RefCell<Vec<Vec<i32>>> = const { RefCell::new(Vec::new()) };
}

/// The smallest kept buffer that holds `len` values (big ones stay for big uses), else a new one.
fn take_free(len: usize) -> Vec<i32> {
    FREE.try_with(|f| {
        let mut f = f.borrow_mut();
        let best = f
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        best.map(|i| f.swap_remove(i))
    })
    .ok()
    .flatten()
    .unwrap_or_default()
}

/// Fills this thread's free list with buffers of `len` copies of `value`, so that a test can
/// check that no reader of a recycled buffer sees what an earlier use left.
#[cfg(test)]
pub(crate) fn fill_free_list(len: usize, value: i32) {
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        f.clear();
        f.resize_with(KEPT, || vec![value; len]);
    });
}

/// An `i32` buffer whose storage is reused after it is dropped. The storage keeps every value it
/// was ever given (its length only grows), so a buffer taken for more values than its last use
/// had needs zeros only where the storage grows, not where the last use was shorter.
#[derive(Debug)]
pub(crate) struct Buf {
    storage: Vec<i32>,
    len: usize,
}

impl Buf {
    /// `len` values left by an earlier use (zeros where the storage grew), for a buffer whose
    /// reader reads only what its writer wrote: zero-filling whole frames cost more than some
    /// of the features' arithmetic.
    pub fn recycled(len: usize) -> Self {
        let mut storage = take_free(len);
        if storage.len() < len {
            storage.resize(len, 0);
        }
        Buf { storage, len }
    }

    /// A copy of `values`.
    pub fn from_iter(len: usize, values: impl Iterator<Item = i32>) -> Self {
        let mut storage = take_free(len);
        storage.clear();
        storage.extend(values);
        let len = storage.len();
        Buf { storage, len }
    }
}

impl Clone for Buf {
    fn clone(&self) -> Self {
        Buf::from_iter(self.len, self.iter().copied())
    }
}

impl Deref for Buf {
    type Target = [i32];
    fn deref(&self) -> &[i32] {
        &self.storage[..self.len]
    }
}

impl DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [i32] {
        &mut self.storage[..self.len]
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.storage);
        if v.capacity() == 0 {
            return;
        }
        // During thread teardown the list may be gone; the buffer is then simply freed.
        let _ = FREE.try_with(|f| {
            let mut f = f.borrow_mut();
            if f.len() < KEPT {
                f.push(v);
            }
        });
    }
}
