//! The order in which several replay inputs hand out their frames: by packet time, as
//! `mergecap` merges files. Each input is read front to back; of the frames at the head
//! of every input, the earliest goes next, and on equal times the input given first on
//! the command line goes first (mergecap keeps the first of equal timestamps too). So
//! the order of the files on the command line no longer matters, and a replay of several
//! files is the replay of their mergecap merge.
//!
//! Only the heads are compared: a file whose own packets go back in time is not sorted.
//! The input whose frame went out last stays out of the heap; when its next frame is
//! still the earliest (always so with a single input, and for most frames of files that
//! follow each other in time) the heap is not touched.

use crate::time::Timestamp;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The heads of the inputs waiting to go next, earliest (then lowest index) first.
#[derive(Debug, Default)]
pub struct MergeQueue {
    waiting: BinaryHeap<Reverse<(Timestamp, usize)>>,
}

impl MergeQueue {
    pub fn with_capacity(inputs: usize) -> MergeQueue {
        MergeQueue { waiting: BinaryHeap::with_capacity(inputs) }
    }

    /// Adds an input whose head frame has time `ts`.
    pub fn insert(&mut self, ts: Timestamp, input: usize) {
        self.waiting.push(Reverse((ts, input)));
    }

    /// The input whose frame goes next. `advanced` is the input whose frame went last,
    /// with the time of its new head, or `None` when it has none (ended, failed, or no
    /// frame went out yet).
    #[inline(always)]
    pub fn next(&mut self, advanced: Option<(Timestamp, usize)>) -> Option<usize> {
        match advanced {
            // A single input, or the last one left.
            Some((_, input)) if self.waiting.is_empty() => Some(input),
            _ => self.next_among(advanced),
        }
    }

    fn next_among(&mut self, advanced: Option<(Timestamp, usize)>) -> Option<usize> {
        let Some(key) = advanced else {
            return self.waiting.pop().map(|Reverse((_, input))| input);
        };
        match self.waiting.peek_mut() {
            Some(mut first) if first.0 < key => {
                let input = first.0 .1;
                *first = Reverse(key);
                Some(input)
            }
            _ => Some(key.1),
        }
    }

    /// Inputs waiting besides the one whose frame went last.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Merges lists of times the way a replay does: returns (input, time) in output order.
    fn merge(inputs: &[Vec<i64>]) -> Vec<(usize, i64)> {
        let mut next_of = vec![0usize; inputs.len()];
        let mut queue = MergeQueue::with_capacity(inputs.len());
        for (i, times) in inputs.iter().enumerate() {
            if let Some(&t) = times.first() {
                queue.insert(Timestamp(t), i);
                next_of[i] = 1;
            }
        }
        let mut out = Vec::new();
        let mut advanced = None;
        while let Some(i) = queue.next(advanced) {
            out.push((i, inputs[i][next_of[i] - 1]));
            advanced = inputs[i].get(next_of[i]).map(|&t| (Timestamp(t), i));
            next_of[i] += 1;
        }
        out
    }

    #[test]
    fn earliest_head_goes_first_and_ties_keep_command_line_order() {
        let out = merge(&[vec![5, 7, 7, 9], vec![1, 7, 8], vec![], vec![7, 20]]);
        assert_eq!(out, vec![(1, 1), (0, 5), (0, 7), (0, 7), (1, 7), (3, 7), (1, 8), (0, 9), (3, 20)]);
    }

    #[test]
    fn a_single_input_keeps_its_own_order_even_when_time_goes_back() {
        let out = merge(&[vec![3, 1, 2, 2, 0]]);
        assert_eq!(out, vec![(0, 3), (0, 1), (0, 2), (0, 2), (0, 0)]);
    }

    #[test]
    fn files_given_in_reverse_order_merge_the_same() {
        let early = vec![1, 2, 3];
        let late = vec![10, 11];
        let forward = merge(&[early.clone(), late.clone()]);
        let reverse = merge(&[late, early]);
        let times = |o: &[(usize, i64)]| o.iter().map(|x| x.1).collect::<Vec<_>>();
        assert_eq!(times(&forward), vec![1, 2, 3, 10, 11]);
        assert_eq!(times(&forward), times(&reverse));
    }

    proptest! {
        /// For time-sorted inputs the merge is the stable sort of all frames by time, with
        /// the input index as the tie-break (what mergecap writes).
        #[test]
        fn sorted_inputs_merge_like_a_stable_sort(mut inputs in proptest::collection::vec(
            proptest::collection::vec(0i64..20, 0..12), 0..6)) {
            for times in &mut inputs {
                times.sort();
            }
            let mut expected: Vec<(usize, i64)> =
                inputs.iter().enumerate().flat_map(|(i, t)| t.iter().map(move |&x| (i, x))).collect();
            expected.sort_by_key(|&(i, t)| (t, i));
            prop_assert_eq!(merge(&inputs), expected);
        }
    }
}
