//! Compressed sparse rows of confidences: users × courses for the user sweep, and its transpose
//! (courses × users, the CSC view) for the course sweep; each built once per run.

/// Rows of `(column, value)` pairs, columns ascending within a row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Csr {
    pub columns: usize,
    /// Row `r` is `indices[offsets[r]..offsets[r + 1]]`.
    pub offsets: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Csr {
    /// From `(row, column, value)` triples in any order; a repeated `(row, column)` keeps the
    /// larger value (an enrollment counted once).
    pub fn from_triples(rows: usize, columns: usize, triples: &[(u32, u32, f32)]) -> Self {
        let mut offsets = vec![0usize; rows + 1];
        for &(row, _, _) in triples {
            offsets[row as usize + 1] += 1;
        }
        for r in 0..rows {
            offsets[r + 1] += offsets[r];
        }
        let mut next = offsets.clone();
        let mut indices = vec![0u32; triples.len()];
        let mut values = vec![0f32; triples.len()];
        for &(row, column, value) in triples {
            let at = &mut next[row as usize];
            indices[*at] = column;
            values[*at] = value;
            *at += 1;
        }
        let mut csr = Self {
            columns,
            offsets,
            indices,
            values,
        };
        csr.sort_and_merge_rows();
        csr
    }

    fn sort_and_merge_rows(&mut self) {
        let mut merged_offsets = Vec::with_capacity(self.offsets.len());
        merged_offsets.push(0);
        let mut write = 0;
        let mut pairs: Vec<(u32, f32)> = Vec::new();
        for r in 0..self.rows() {
            pairs.clear();
            let range = self.offsets[r]..self.offsets[r + 1];
            pairs.extend(
                self.indices[range.clone()]
                    .iter()
                    .copied()
                    .zip(self.values[range].iter().copied()),
            );
            pairs.sort_unstable_by_key(|&(column, _)| column);
            let mut last: Option<u32> = None;
            for &(column, value) in &pairs {
                if last == Some(column) {
                    self.values[write - 1] = self.values[write - 1].max(value);
                    continue;
                }
                self.indices[write] = column;
                self.values[write] = value;
                write += 1;
                last = Some(column);
            }
            merged_offsets.push(write);
        }
        self.indices.truncate(write);
        self.values.truncate(write);
        self.offsets = merged_offsets;
    }

    pub fn rows(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let range = self.offsets[r]..self.offsets[r + 1];
        (&self.indices[range.clone()], &self.values[range])
    }

    /// Columns × rows, columns ascending within each row again.
    pub fn transpose(&self) -> Self {
        let mut offsets = vec![0usize; self.columns + 1];
        for &column in &self.indices {
            offsets[column as usize + 1] += 1;
        }
        for c in 0..self.columns {
            offsets[c + 1] += offsets[c];
        }
        let mut next = offsets.clone();
        let mut indices = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        // Rows are visited in order, so each transposed row comes out sorted.
        for r in 0..self.rows() {
            let (columns, row_values) = self.row(r);
            for (&column, &value) in columns.iter().zip(row_values) {
                let at = &mut next[column as usize];
                indices[*at] = r as u32;
                values[*at] = value;
                *at += 1;
            }
        }
        Self {
            columns: self.rows(),
            offsets,
            indices,
            values,
        }
    }

    /// Entries per column: how many users hold each course.
    pub fn column_counts(&self) -> Vec<u64> {
        let mut counts = vec![0u64; self.columns];
        for &column in &self.indices {
            counts[column as usize] += 1;
        }
        counts
    }

    pub fn contains(&self, row: usize, column: u32) -> bool {
        self.row(row).0.binary_search(&column).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_become_sorted_rows_with_duplicates_merged_and_transpose_round_trips() {
        let csr = Csr::from_triples(
            3,
            4,
            &[
                (2, 3, 1.0),
                (0, 2, 5.0),
                (0, 0, 2.0),
                (2, 0, 4.0),
                (0, 2, 6.0),
            ],
        );
        assert_eq!(csr.offsets, [0, 2, 2, 4]);
        assert_eq!(csr.indices, [0, 2, 0, 3]);
        assert_eq!(csr.values, [2.0, 6.0, 4.0, 1.0]);
        assert_eq!(csr.row(1), (&[][..], &[][..]));
        let transposed = csr.transpose();
        assert_eq!(transposed.rows(), 4);
        assert_eq!(transposed.offsets, [0, 2, 2, 3, 4]);
        assert_eq!(transposed.indices, [0, 2, 0, 2]);
        assert_eq!(transposed.values, [2.0, 4.0, 6.0, 1.0]);
        assert_eq!(transposed.transpose(), csr);
        assert_eq!(csr.column_counts(), [2, 0, 1, 1]);
        assert!(csr.contains(2, 3) && !csr.contains(2, 2));
    }
}
