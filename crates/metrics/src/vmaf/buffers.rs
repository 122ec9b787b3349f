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

/// A zero-filled `i32` buffer whose storage is reused after it is dropped.
#[derive(Debug)]
pub(crate) struct Buf(Vec<i32>);

impl Buf {
    /// `len` zeros.
    pub fn zeroed(len: usize) -> Self {
        let mut v = FREE
            .try_with(|f| {
                let mut f = f.borrow_mut();
                // The smallest kept buffer that is large enough, to keep big ones for big uses.
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
            .unwrap_or_default();
        v.clear();
        v.resize(len, 0);
        Buf(v)
    }

    /// A copy of `values`.
    pub fn from_iter(len: usize, values: impl Iterator<Item = i32>) -> Self {
        let mut b = Buf::zeroed(0);
        b.0.reserve(len);
        b.0.extend(values);
        b
    }
}

impl Clone for Buf {
    fn clone(&self) -> Self {
        Buf::from_iter(self.0.len(), self.0.iter().copied())
    }
}

impl Deref for Buf {
    type Target = Vec<i32>;
    fn deref(&self) -> &Vec<i32> {
        &self.0
    }
}

impl DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut Vec<i32> {
        &mut self.0
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
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
