//! The pending-event queue: a radix heap ordered by (time, insertion order).
//!
//! A discrete-event simulator only ever schedules events at or after the current time, so
//! the queue is *monotone*: no key is smaller than the last one popped. A radix heap exploits
//! that. Times are read as 16 hexadecimal digits; an event waits in the bucket named by the
//! most significant digit where its time differs from the last popped time (the *level*) and
//! its own value of that digit. Popping refills the "now" list from the lowest non-empty
//! bucket: its smallest time becomes the new floor and its events drop to lower levels. An
//! event moves down at most 16 times, in practice once or twice (a base-2 radix heap moves
//! events once per bit of their distance, which showed up as 13-20% of engine time), and all
//! moves are sequential appends.
//!
//! Ties are broken by insertion order without storing a sequence number: all events with
//! the same time always sit in the same bucket, pushes append, and redistribution is
//! stable, so the now list (all events at the current time) is FIFO.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const DIGIT_BITS: u32 = 4;
const DIGITS: usize = 1 << DIGIT_BITS;
const BUCKETS: usize = 64 / DIGIT_BITS as usize * DIGITS;
const WORDS: usize = BUCKETS / 64;

/// A monotone priority queue of `(time, item)` pairs, FIFO among equal times.
///
/// ```
/// use sim_core::queue::EventQueue;
/// let mut q = EventQueue::new();
/// q.push(5, 'a');
/// q.push(3, 'b');
/// q.push(5, 'c');
/// assert_eq!(q.pop(), Some((3, 'b')));
/// assert_eq!(q.pop(), Some((5, 'a')));
/// assert_eq!(q.pop(), Some((5, 'c')));
/// assert_eq!(q.pop(), None);
/// ```
#[derive(Clone, Debug)]
pub struct EventQueue<T> {
    last: u64,
    len: usize,
    /// Events at time `last`, in insertion order, from `head` on (a vector drained from the
    /// front and emptied when drained: cheaper than a ring buffer on the hot path).
    now: Vec<T>,
    head: usize,
    /// Bucket `level * 16 + digit`: events whose time first differs from `last` in hex digit
    /// `level` (from the least significant), where their digit is `digit`.
    buckets: Vec<Vec<(u64, T)>>,
    /// Smallest time in each bucket (valid while the bucket is non-empty): no scan on refill.
    mins: Vec<u64>,
    /// Bit `i` of word `i / 64` set iff `buckets[i]` is non-empty.
    nonempty: [u64; WORDS],
}

impl<T: Copy> Default for EventQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The bucket of time `t > last`.
#[inline]
fn bucket_of(t: u64, last: u64) -> usize {
    let level = (63 - (t ^ last).leading_zeros()) / DIGIT_BITS;
    let digit = (t >> (level * DIGIT_BITS)) as usize & (DIGITS - 1);
    level as usize * DIGITS + digit
}

impl<T: Copy> EventQueue<T> {
    /// An empty queue at time 0.
    pub fn new() -> Self {
        EventQueue {
            last: 0,
            len: 0,
            now: Vec::new(),
            head: 0,
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            mins: vec![u64::MAX; BUCKETS],
            nonempty: [0; WORDS],
        }
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no event is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedules `item` at `time`. A time before the last popped one is clamped to it (the
    /// engine never does this; clamping keeps the queue valid if a caller does).
    #[inline]
    pub fn push(&mut self, time: u64, item: T) {
        self.len += 1;
        if time <= self.last {
            self.now.push(item);
        } else {
            self.push_bucket(time, item);
        }
    }

    #[inline(always)]
    fn push_bucket(&mut self, time: u64, item: T) {
        let b = bucket_of(time, self.last);
        self.buckets[b].push((time, item));
        self.mins[b] = self.mins[b].min(time);
        self.nonempty[b / 64] |= 1 << (b % 64);
    }

    /// The time of the next event, without removing it (and without moving the queue's
    /// floor: an event pushed afterwards at an earlier time still comes first).
    #[inline]
    pub fn peek_time(&self) -> Option<u64> {
        if self.head < self.now.len() {
            return Some(self.last);
        }
        self.lowest_bucket().map(|i| self.mins[i])
    }

    /// Removes and returns the earliest event (FIFO among equal times).
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, T)> {
        if self.len == 0 {
            return None;
        }
        if self.now.is_empty() {
            self.refill(u64::MAX);
        }
        let x = self.take_now()?;
        self.len -= 1;
        Some((self.last, x))
    }

    /// Removes and returns the earliest event if its time is before `until` (one check of
    /// the queue instead of a peek and a pop). When it is not, the queue is left as it was:
    /// its floor stays at the last popped time, so events pushed afterwards at times from
    /// `until` on keep their own times, even before the next pending one.
    #[inline]
    pub fn pop_before(&mut self, until: u64) -> Option<(u64, T)> {
        if self.len == 0 || until == 0 {
            return None;
        }
        if self.now.is_empty() {
            if !self.refill(until - 1) {
                return None;
            }
        } else if self.last >= until {
            return None;
        }
        let x = self.take_now()?;
        self.len -= 1;
        Some((self.last, x))
    }

    #[inline(always)]
    fn take_now(&mut self) -> Option<T> {
        let x = *self.now.get(self.head)?;
        self.head += 1;
        if self.head == self.now.len() {
            self.now.clear();
            self.head = 0;
        }
        Some(x)
    }

    /// The lowest non-empty bucket: it holds the earliest pending times (every time in a
    /// bucket is below every time in a higher one).
    #[inline(always)]
    fn lowest_bucket(&self) -> Option<usize> {
        let w = self.nonempty.iter().position(|&m| m != 0)?;
        Some(w * 64 + self.nonempty[w].trailing_zeros() as usize)
    }

    /// Moves the earliest pending events to the now list if their time is at most `limit`
    /// (the floor moves to that time); returns false, changing nothing, otherwise.
    // out of line but not cold: in continuous time nearly every pop refills
    #[inline(never)]
    fn refill(&mut self, limit: u64) -> bool {
        let Some(i) = self.lowest_bucket() else {
            return false;
        };
        let min = self.mins[i];
        if min > limit {
            return false;
        }
        self.nonempty[i / 64] &= !(1 << (i % 64));
        self.mins[i] = u64::MAX;
        self.last = min;
        // every destination bucket is below `i`: drain in place
        let (lower, rest) = self.buckets.split_at_mut(i);
        let src = &mut rest[0];
        if src.len() == 1 {
            // the common case near the floor: one event, no redistribution
            if let Some((_, x)) = src.pop() {
                self.now.push(x);
            }
            return true;
        }
        for (t, x) in src.drain(..) {
            if t == min {
                self.now.push(x);
            } else {
                let b = bucket_of(t, min);
                lower[b].push((t, x));
                self.mins[b] = self.mins[b].min(t);
                self.nonempty[b / 64] |= 1 << (b % 64);
            }
        }
        true
    }

    /// Removes every pending event (the floor stays).
    pub fn clear(&mut self) {
        self.now.clear();
        self.head = 0;
        for b in &mut self.buckets {
            b.clear();
        }
        self.mins.fill(u64::MAX);
        self.nonempty = [0; WORDS];
        self.len = 0;
    }

    /// Pending events in no particular order (for validation and snapshots).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        let last = self.last;
        self.now[self.head..]
            .iter()
            .map(move |x| (last, x))
            .chain(self.buckets.iter().flatten().map(|(t, x)| (*t, x)))
    }
}

/// Serialised as the floor and the pending events (the now list first, then bucket by
/// bucket, each in insertion order); deserialising pushes them back, so the buckets are
/// rebuilt by the queue itself and any input gives a consistent queue, with the order among
/// equal times kept (equal times share a bucket).
#[derive(Serialize, Deserialize)]
struct Wire<T> {
    last: u64,
    events: Vec<(u64, T)>,
}

impl<T: Serialize + Copy> Serialize for EventQueue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct WireRef<'a, T> {
            last: u64,
            events: Vec<(u64, &'a T)>,
        }
        WireRef {
            last: self.last,
            events: self.iter().collect(),
        }
        .serialize(s)
    }
}

impl<'de, T: Deserialize<'de> + Copy> Deserialize<'de> for EventQueue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::<T>::deserialize(d)?;
        let mut q = EventQueue::new();
        q.last = w.last;
        for (t, x) in w.events {
            if t < w.last {
                return Err(D::Error::custom("event before the queue's floor"));
            }
            q.push(t, x);
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Against a reference: a stable sort by time of everything pushed, with pushes interleaved.
        #[test]
        fn matches_stable_sort(ops in proptest::collection::vec((0u64..1000, any::<bool>()), 1..400)) {
            let mut q = EventQueue::new();
            let mut reference: Vec<(u64, usize)> = Vec::new();
            let mut now = 0u64;
            for (i, (dt, pop)) in ops.into_iter().enumerate() {
                if pop {
                    // pop_before with a bound at or past the next time is pop; below it, nothing
                    reference.sort_by_key(|e| e.0);
                    if let Some(&(t, _)) = reference.first() {
                        prop_assert_eq!(q.pop_before(t), None);
                    }
                    let got = if i % 2 == 0 { q.pop() } else { q.pop_before(u64::MAX) };
                    let want = if reference.is_empty() { None } else { Some(reference.remove(0)) };
                    prop_assert_eq!(got, want);
                    if let Some((t, _)) = got { now = t; }
                } else {
                    let t = now + dt * dt; // spread over many buckets
                    q.push(t, i);
                    reference.push((t, i));
                }
                prop_assert_eq!(q.len(), reference.len());
            }
            // a serialised queue pops the same sequence as the original
            let bytes = postcard::to_allocvec(&q).unwrap();
            let mut back: EventQueue<usize> = postcard::from_bytes(&bytes).unwrap();
            reference.sort_by_key(|e| e.0);
            for want in reference {
                prop_assert_eq!(q.pop(), Some(want));
                prop_assert_eq!(back.pop(), Some(want));
            }
            prop_assert_eq!(back.pop(), None);
        }

        /// Distances from nanoseconds to centuries, many equal times, pops interleaved.
        #[test]
        fn wide_distances(ops in proptest::collection::vec((0u64..4, 0u32..62, any::<bool>()), 1..400)) {
            let mut q = EventQueue::new();
            let mut reference: Vec<(u64, usize)> = Vec::new();
            let mut now = 0u64;
            for (i, (m, shift, pop)) in ops.into_iter().enumerate() {
                if pop {
                    reference.sort_by_key(|e| e.0);
                    let want = if reference.is_empty() { None } else { Some(reference.remove(0)) };
                    let got = q.pop();
                    prop_assert_eq!(got, want);
                    if let Some((t, _)) = got { now = t; }
                } else {
                    let t = now.saturating_add(m << shift);
                    q.push(t, i);
                    reference.push((t, i));
                }
            }
            reference.sort_by_key(|e| e.0);
            for want in reference {
                prop_assert_eq!(q.pop(), Some(want));
            }
            prop_assert!(q.is_empty());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// `pop_before` with any bound, pushes at any time from the last popped one on: a
        /// refused `pop_before` leaves the queue as it was (events pushed after it between
        /// the bound and the next pending time still come first, at their own times).
        #[test]
        fn pop_before_leaves_the_floor(ops in proptest::collection::vec((0u64..40, 0u64..3000, 0u8..3), 1..400)) {
            let mut q = EventQueue::new();
            let mut reference: Vec<(u64, usize)> = Vec::new();
            let mut now = 0u64;
            for (i, (dt, bound, op)) in ops.into_iter().enumerate() {
                reference.sort_by_key(|e| e.0);
                match op {
                    0 => {
                        let until = now + bound;
                        let want = match reference.first() {
                            Some(&(t, _)) if t < until => Some(reference.remove(0)),
                            _ => None,
                        };
                        prop_assert_eq!(q.pop_before(until), want);
                        prop_assert_eq!(q.peek_time(), reference.first().map(|e| e.0));
                        if let Some((t, _)) = want { now = t; }
                    }
                    1 => {
                        let want = if reference.is_empty() { None } else { Some(reference.remove(0)) };
                        prop_assert_eq!(q.pop(), want);
                        if let Some((t, _)) = want { now = t; }
                    }
                    _ => {
                        let t = now + dt * dt;
                        q.push(t, i);
                        reference.push((t, i));
                    }
                }
                prop_assert_eq!(q.len(), reference.len());
            }
        }
    }

    /// The case that `pop_before_leaves_the_floor` generalises: a refused `pop_before(50)`
    /// must not move the floor to the pending event at 100.
    #[test]
    fn an_event_pushed_after_a_refused_pop_before_keeps_its_time() {
        let mut q = EventQueue::new();
        q.push(100, 'a');
        assert_eq!(q.pop_before(50), None);
        assert_eq!(q.peek_time(), Some(100));
        q.push(60, 'b');
        assert_eq!(q.peek_time(), Some(60));
        assert_eq!(q.pop_before(60), None);
        assert_eq!(q.pop_before(61), Some((60, 'b')));
        assert_eq!(q.pop(), Some((100, 'a')));
        assert_eq!(q.pop_before(u64::MAX), None);
        q.push(u64::MAX, 'c');
        assert_eq!(q.pop_before(u64::MAX), None);
        assert_eq!(q.pop(), Some((u64::MAX, 'c')));
    }

    #[test]
    fn events_before_the_floor_are_a_deserialisation_error() {
        let mut q = EventQueue::new();
        q.push(10, 1u8);
        q.push(20, 2u8);
        assert_eq!(q.pop(), Some((10, 1)));
        let mut bytes = postcard::to_allocvec(&q).unwrap();
        // floor 10, one event at 20: make the floor 30
        assert_eq!(bytes[0], 10);
        bytes[0] = 30;
        assert!(postcard::from_bytes::<EventQueue<u8>>(&bytes).is_err());
    }
}
