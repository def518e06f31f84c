//! Which offsets of each partition may be committed.
//!
//! Kafka commits one offset per partition, and it means "everything before this is
//! done". Deliveries are settled in any order, and a held one must not be skipped by
//! committing past it, so each partition keeps the offsets delivered and not yet
//! settled; its commit point is the lowest of them (or one past the highest offset
//! seen, when none is unsettled). A partition taken away by a rebalance is forgotten:
//! its unsettled messages are the next owner's, from the last commit point, and a
//! settle that comes later (for an older assignment, told apart by its generation)
//! changes nothing.

use std::collections::{BTreeSet, HashMap};

/// A topic and one of its partitions.
pub(super) type Partition = (String, i32);

#[derive(Debug)]
struct PartitionOffsets {
    generation: u64,
    unsettled: BTreeSet<i64>,
    /// One past the highest offset seen.
    next: i64,
    /// The commit point last handed out for storing.
    stored: i64,
}

impl PartitionOffsets {
    fn commit_point(&self) -> i64 {
        self.unsettled.first().copied().unwrap_or(self.next)
    }
}

#[derive(Debug, Default)]
pub(super) struct Offsets {
    partitions: HashMap<Partition, PartitionOffsets>,
    generations: u64,
}

impl Offsets {
    /// Records a message read at `offset`; returns the partition's generation, which
    /// its settle must name.
    pub fn received(&mut self, partition: &Partition, offset: i64) -> u64 {
        let generations = &mut self.generations;
        let state = self.partitions.entry(partition.clone()).or_insert_with(|| {
            *generations += 1;
            PartitionOffsets {
                generation: *generations,
                unsettled: BTreeSet::new(),
                next: offset,
                stored: offset,
            }
        });
        state.unsettled.insert(offset);
        state.next = state.next.max(offset + 1);
        state.generation
    }

    /// Whether a message is still this consumer's to deliver or settle.
    pub fn is_current(&self, partition: &Partition, generation: u64, offset: i64) -> bool {
        self.partitions
            .get(partition)
            .is_some_and(|s| s.generation == generation && s.unsettled.contains(&offset))
    }

    /// Marks a message settled; false if its partition moved on since.
    pub fn settle(&mut self, partition: &Partition, generation: u64, offset: i64) -> bool {
        match self.partitions.get_mut(partition) {
            Some(state) if state.generation == generation => state.unsettled.remove(&offset),
            _ => false,
        }
    }

    /// The commit points that moved since last asked, to store.
    pub fn advanced(&mut self) -> Vec<(Partition, i64)> {
        let mut moved = Vec::new();
        for (partition, state) in &mut self.partitions {
            let point = state.commit_point();
            if point > state.stored {
                state.stored = point;
                moved.push((partition.clone(), point));
            }
        }
        moved
    }

    /// Forgets a partition taken away; returns its commit point if it moved since it
    /// was last stored.
    pub fn revoke(&mut self, partition: &Partition) -> Option<i64> {
        let state = self.partitions.remove(partition)?;
        let point = state.commit_point();
        (point > state.stored).then_some(point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: i32) -> Partition {
        ("t".to_string(), n)
    }

    #[test]
    fn the_commit_point_never_passes_an_unsettled_message() {
        let mut offsets = Offsets::default();
        let generation = offsets.received(&p(0), 10);
        offsets.received(&p(0), 11);
        offsets.received(&p(0), 12);
        assert!(offsets.settle(&p(0), generation, 11));
        assert!(offsets.settle(&p(0), generation, 12));
        assert_eq!(offsets.advanced(), [], "10 is still held");
        assert!(offsets.settle(&p(0), generation, 10));
        assert_eq!(offsets.advanced(), [(p(0), 13)]);
        assert_eq!(offsets.advanced(), [], "handed out once");
    }

    #[test]
    fn partitions_advance_independently() {
        let mut offsets = Offsets::default();
        let g0 = offsets.received(&p(0), 0);
        let g1 = offsets.received(&p(1), 5);
        offsets.received(&p(1), 6);
        offsets.settle(&p(1), g1, 5);
        let mut moved = offsets.advanced();
        moved.sort();
        assert_eq!(moved, [(p(1), 6)]);
        offsets.settle(&p(0), g0, 0);
        assert_eq!(offsets.advanced(), [(p(0), 1)]);
    }

    #[test]
    fn a_settle_from_before_a_revoke_changes_nothing() {
        let mut offsets = Offsets::default();
        let old = offsets.received(&p(0), 3);
        offsets.received(&p(0), 4);
        assert!(offsets.settle(&p(0), old, 3));
        assert_eq!(offsets.revoke(&p(0)), Some(4));
        assert!(!offsets.is_current(&p(0), old, 4));
        // Assigned again and read again from the commit point.
        let new = offsets.received(&p(0), 4);
        assert_ne!(old, new);
        assert!(!offsets.settle(&p(0), old, 4));
        assert!(offsets.is_current(&p(0), new, 4));
        assert_eq!(offsets.revoke(&p(0)), None, "nothing moved");
    }
}
