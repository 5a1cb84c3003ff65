//! Work over disjoint chunks of a slice on a few threads. Which thread takes a chunk never
//! changes what is computed, so results are identical for any thread count.

use std::sync::Mutex;

/// Calls `work(index, chunk)` for every `chunk_len`-long chunk of `data`, on `threads` threads
/// that take the next chunk as they finish one (rows differ widely in cost).
pub fn for_each_chunk<T: Send>(
    data: &mut [T],
    chunk_len: usize,
    threads: usize,
    work: impl Fn(usize, &mut [T]) + Sync,
) {
    let queue = Mutex::new(data.chunks_mut(chunk_len.max(1)).enumerate());
    let next = || {
        queue
            .lock()
            .expect("no worker panics holding the queue")
            .next()
    };
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                while let Some((index, chunk)) = next() {
                    work(index, chunk);
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_is_visited_once_with_its_index() {
        let mut data = vec![0usize; 1003];
        for_each_chunk(&mut data, 10, 3, |index, chunk| {
            for (offset, value) in chunk.iter_mut().enumerate() {
                *value += index * 10 + offset;
            }
        });
        assert!(data.iter().enumerate().all(|(i, v)| *v == i));
    }
}
