//! Recycled sample buffers: the features allocate the same large arrays for every frame, and
//! fresh large allocations cost page faults and zeroing by the kernel. Buffers return to a
//! per-thread free list (one per value type) when dropped.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::thread::LocalKey;

/// Buffers kept per thread and value type at most (enough for one frame's ADM and luma planes).
const KEPT: usize = 64;

type FreeList<T> = RefCell<Vec<Vec<T>>>;

thread_local! {
    static FREE_I32: FreeList<i32> = const { RefCell::new(Vec::new()) };
    static FREE_U16: FreeList<u16> = const { RefCell::new(Vec::new()) };
}

/// A value type with a free list of its own.
pub(crate) trait Recycle: Copy + Default + 'static {
    fn free_list() -> &'static LocalKey<FreeList<Self>>;
}

impl Recycle for i32 {
    fn free_list() -> &'static LocalKey<FreeList<Self>> {
        &FREE_I32
    }
}

impl Recycle for u16 {
    fn free_list() -> &'static LocalKey<FreeList<Self>> {
        &FREE_U16
    }
}

/// The smallest kept buffer that holds `len` values (big ones stay for big uses), else a new one.
fn take_free<T: Recycle>(len: usize) -> Vec<T> {
    T::free_list()
        .try_with(|f| {
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
pub(crate) fn fill_free_list<T: Recycle>(len: usize, value: T) {
    T::free_list().with(|f| {
        let mut f = f.borrow_mut();
        f.clear();
        f.resize_with(KEPT, || vec![value; len]);
    });
}

/// A buffer whose storage is reused after it is dropped. The storage keeps every value it
/// was ever given (its length only grows), so a buffer taken for more values than its last use
/// had needs zeros only where the storage grows, not where the last use was shorter.
#[derive(Debug)]
pub(crate) struct Buf<T: Recycle = i32> {
    storage: Vec<T>,
    len: usize,
}

impl<T: Recycle> Buf<T> {
    /// `len` values left by an earlier use (zeros where the storage grew), for a buffer whose
    /// reader reads only what its writer wrote: zero-filling whole frames cost more than some
    /// of the features' arithmetic.
    pub fn recycled(len: usize) -> Self {
        let mut storage = take_free(len);
        if storage.len() < len {
            storage.resize(len, T::default());
        }
        Buf { storage, len }
    }

    /// A copy of `values`.
    pub fn from_iter(len: usize, values: impl Iterator<Item = T>) -> Self {
        let mut storage = take_free(len);
        storage.clear();
        storage.extend(values);
        let len = storage.len();
        Buf { storage, len }
    }
}

impl<T: Recycle> Clone for Buf<T> {
    fn clone(&self) -> Self {
        Buf::from_iter(self.len, self.iter().copied())
    }
}

impl<T: Recycle> Deref for Buf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.storage[..self.len]
    }
}

impl<T: Recycle> DerefMut for Buf<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.storage[..self.len]
    }
}

impl<T: Recycle> Drop for Buf<T> {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.storage);
        if v.capacity() == 0 {
            return;
        }
        // During thread teardown the list may be gone; the buffer is then simply freed.
        let _ = T::free_list().try_with(|f| {
            let mut f = f.borrow_mut();
            if f.len() < KEPT {
                f.push(v);
            }
        });
    }
}
