//! The sessions remembered for one beaconing series. Almost every series of a busy
//! network is a single session that never repeats, so the first one is kept inline and
//! a ring buffer is allocated only from the second session on: no allocation and no
//! free for the one-off series that fill the series map.

use std::collections::VecDeque;

/// A VecDeque that holds its first element inline (front to back, oldest first).
pub enum Beats<T> {
    Empty,
    One(T),
    Ring(VecDeque<T>),
}

impl<T> Beats<T> {
    pub fn new() -> Self {
        Beats::Empty
    }

    pub fn len(&self) -> usize {
        match self {
            Beats::Empty => 0,
            Beats::One(_) => 1,
            Beats::Ring(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn front(&self) -> Option<&T> {
        match self {
            Beats::Empty => None,
            Beats::One(b) => Some(b),
            Beats::Ring(r) => r.front(),
        }
    }

    pub fn back(&self) -> Option<&T> {
        match self {
            Beats::Empty => None,
            Beats::One(b) => Some(b),
            Beats::Ring(r) => r.back(),
        }
    }

    pub fn pop_front(&mut self) {
        match self {
            Beats::Empty => {}
            Beats::One(_) => *self = Beats::Empty,
            Beats::Ring(r) => {
                r.pop_front();
            }
        }
    }

    pub fn push_back(&mut self, beat: T) {
        match std::mem::replace(self, Beats::Empty) {
            Beats::Empty => *self = Beats::One(beat),
            Beats::One(first) => {
                let mut r = VecDeque::with_capacity(4);
                r.push_back(first);
                r.push_back(beat);
                *self = Beats::Ring(r);
            }
            Beats::Ring(mut r) => {
                r.push_back(beat);
                *self = Beats::Ring(r);
            }
        }
    }

    /// Inserts `beat` at `index` (0 = front; `len()` = back).
    pub fn insert(&mut self, index: usize, beat: T) {
        if index >= self.len() {
            self.push_back(beat);
            return;
        }
        match std::mem::replace(self, Beats::Empty) {
            Beats::Empty => *self = Beats::One(beat),
            Beats::One(first) => {
                let mut r = VecDeque::with_capacity(4);
                r.push_back(beat);
                r.push_back(first);
                *self = Beats::Ring(r);
            }
            Beats::Ring(mut r) => {
                r.insert(index, beat);
                *self = Beats::Ring(r);
            }
        }
    }

    /// The element at `index` (0 = front).
    pub fn get(&self, index: usize) -> Option<&T> {
        match self {
            Beats::Empty => None,
            Beats::One(b) => (index == 0).then_some(b),
            Beats::Ring(r) => r.get(index),
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        let (one, ring) = match self {
            Beats::Empty => (None, None),
            Beats::One(b) => (Some(b), None),
            Beats::Ring(r) => (None, Some(r.iter())),
        };
        one.into_iter().chain(ring.into_iter().flatten())
    }

    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut T> {
        let (one, ring) = match self {
            Beats::Empty => (None, None),
            Beats::One(b) => (Some(b), None),
            Beats::Ring(r) => (None, Some(r.iter_mut())),
        };
        one.into_iter().chain(ring.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_fifo_order_inline_and_in_the_ring() {
        let mut b = Beats::new();
        assert!(b.is_empty() && b.front().is_none() && b.back().is_none());
        b.push_back(1);
        assert!(matches!(b, Beats::One(1)));
        assert_eq!((b.len(), b.front(), b.back()), (1, Some(&1), Some(&1)));
        b.pop_front();
        assert!(b.is_empty());
        for x in 1..=4 {
            b.push_back(x);
        }
        b.pop_front();
        assert_eq!(b.iter().copied().collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(b.iter().rev().copied().collect::<Vec<_>>(), vec![4, 3, 2]);
        if let Some(x) = b.iter_mut().rev().find(|x| **x == 3) {
            *x = 30;
        }
        assert_eq!((b.len(), b.front(), b.back()), (3, Some(&2), Some(&4)));
        assert_eq!(b.iter().copied().collect::<Vec<_>>(), vec![2, 30, 4]);
        b.insert(1, 25);
        b.insert(0, 1);
        b.insert(9, 5);
        assert_eq!(b.iter().copied().collect::<Vec<_>>(), vec![1, 2, 25, 30, 4, 5]);
        assert_eq!((b.get(2), b.get(6)), (Some(&25), None));
        let mut one = Beats::new();
        one.insert(0, 7);
        one.insert(0, 6);
        assert_eq!(one.iter().copied().collect::<Vec<_>>(), vec![6, 7]);
        assert_eq!(one.get(1), Some(&7));
    }
}
