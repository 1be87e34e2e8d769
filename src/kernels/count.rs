//! Nonzero bytes per column of a row-major byte matrix: the positives of
//! 0/1 labels (uint8 or bool) per class, for the scoring API. NumPy's
//! reductions over such columns convert every byte (or walk a strided
//! column each); this adds the bytes where they lie, in one pass.

use super::KernelError;
use super::parallel::run_chunks;
use super::pool::num_threads;

/// Rows counted in bytes before they are added into the totals: 255 rows
/// of 0/1 values cannot overflow a byte.
const ROWS_PER_BYTE: usize = 255;

/// Bytes per parallel chunk.
const CHUNK_BYTES: usize = 1 << 20;

/// Counts the nonzero bytes of each of the `cols` columns of `data`, a
/// row-major matrix of `data.len() / cols` whole rows.
pub fn nonzero_per_column(data: &[u8], cols: usize) -> Result<Vec<u64>, KernelError> {
    let mut totals = vec![0u64; cols];
    if cols == 0 || data.is_empty() {
        return Ok(totals);
    }
    let rows = data.len() / cols;
    let rows_per_chunk = (CHUNK_BYTES / cols).max(1);
    let chunks = rows.div_ceil(rows_per_chunk);
    let threads = if data.len() >= 4 * CHUNK_BYTES { num_threads() } else { 1 };
    let count = |c: usize| {
        let first = c * rows_per_chunk;
        let last = (first + rows_per_chunk).min(rows);
        Ok(count_rows(&data[first * cols..last * cols], cols))
    };
    run_chunks(chunks, threads, cols * 8, count, |part: Vec<u64>| {
        for (total, n) in totals.iter_mut().zip(part) {
            *total += n;
        }
    })?;
    Ok(totals)
}

/// Nonzero bytes per column of whole rows, counted in byte lanes (a lane
/// per column, which the compiler vectorizes) flushed every 255 rows.
fn count_rows(rows: &[u8], cols: usize) -> Vec<u64> {
    let mut totals = vec![0u64; cols];
    let mut lanes = vec![0u8; cols];
    for block in rows.chunks(ROWS_PER_BYTE * cols) {
        for row in block.chunks_exact(cols) {
            for (lane, &v) in lanes.iter_mut().zip(row) {
                *lane += u8::from(v != 0);
            }
        }
        for (total, lane) in totals.iter_mut().zip(lanes.iter_mut()) {
            *total += u64::from(*lane);
            *lane = 0;
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(data: &[u8], cols: usize) -> Vec<u64> {
        (0..cols).map(|c| data.iter().skip(c).step_by(cols).filter(|&&v| v != 0).count() as u64).collect()
    }

    #[test]
    fn counts_every_column_for_any_shape_and_values() {
        let _guard = crate::kernels::test_lock();
        let mut state = 12345u64;
        for (rows, cols) in [(0, 3), (1, 1), (254, 1), (255, 2), (256, 3), (1000, 20), (70_000, 7), (300_000, 20)] {
            let data: Vec<u8> = (0..rows * cols)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    // Mostly 0/1, sometimes other nonzero bytes (counted once each).
                    [0u8, 1, 1, 0, 0, 255, 2, 0][(state >> 61) as usize]
                })
                .collect();
            assert_eq!(nonzero_per_column(&data, cols).unwrap(), reference(&data, cols), "{rows} x {cols}");
        }
        assert_eq!(nonzero_per_column(&[], 0).unwrap(), Vec::<u64>::new());
    }

    #[test]
    fn the_same_counts_on_any_number_of_threads() {
        let _guard = crate::kernels::test_lock();
        let data: Vec<u8> = (0..5_000_000u32).map(|i| u8::from(i % 7 == 0 || i % 11 == 3)).collect();
        let before = num_threads();
        let counts: Vec<Vec<u64>> = [1, 2, 3]
            .iter()
            .map(|&t| {
                crate::kernels::set_num_threads(t).unwrap();
                nonzero_per_column(&data, 10).unwrap()
            })
            .collect();
        crate::kernels::set_num_threads(before).unwrap();
        assert_eq!(counts[0], reference(&data, 10));
        assert!(counts.iter().all(|c| *c == counts[0]));
    }
}
