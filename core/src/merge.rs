//! The merge rule, in one place.
//!
//! Each field of a case is a multi-value register. A write names the writes
//! of that field it supersedes: the ones its author had on screen. The
//! field's *heads* are the writes no other write supersedes. So:
//! - causality decides first: a write made after seeing another one
//!   replaces it, whatever either clock said;
//! - truly concurrent writes all stay heads. The one with the latest stamp
//!   (then the highest replica, then counter) is shown, the others are kept
//!   and shown as a conflict until someone writes the field again;
//! - timeline events are a grow-only set and never conflict.
//!
//! Heads are a function of the set of writes alone, so every replica holding
//! the same operations shows the same case, in whatever order they arrived.
//! Replicas only accept an operation once they hold everything it
//! supersedes (see `Store::apply`), which keeps the incremental update below
//! exact.

use crate::hlc::Stamp;
use crate::ids::{Dot, ReplicaId};
use crate::model::{Field, Status};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;

/// A write that is currently a head of its field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub dot: Dot,
    pub stamp: Stamp,
}

/// Among concurrent heads, the greatest is shown.
fn precedence(head: &Head) -> (Stamp, ReplicaId, u64) {
    (head.stamp, head.dot.actor, head.dot.counter)
}

/// Integrates a write into the heads of its field. Heads stay sorted, the
/// shown value first.
pub fn integrate(heads: &mut Vec<Head>, write: Head, supersedes: &[Dot]) {
    heads.retain(|h| !supersedes.contains(&h.dot));
    heads.push(write);
    heads.sort_by_key(|h| Reverse(precedence(h)));
}

/// Whether a status write is a transition the workflow allows, from the
/// statuses it superseded. Re-affirming one of them (settling a conflict)
/// is allowed.
pub fn status_write_is_valid(from: &[Status], to: Status) -> bool {
    from.iter().any(|f| *f == to || f.can_become(to))
}

/// The merge metadata of one case: the heads of every field that has been
/// written since creation (a field absent here still has the creating
/// operation as its only head), and the status heads whose transition the
/// workflow forbids.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseHeads {
    fields: Vec<(Field, Vec<Head>)>,
    anomalies: Vec<Dot>,
}

impl CaseHeads {
    pub fn of(&self, field: Field, creation: Head) -> Vec<Head> {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map_or_else(|| vec![creation], |(_, h)| h.clone())
    }

    /// Kept in field order, so that every replica stores and lists the
    /// same thing whatever order the writes arrived in.
    pub fn set(&mut self, field: Field, heads: Vec<Head>) {
        if field == Field::Status {
            self.anomalies.retain(|d| heads.iter().any(|h| h.dot == *d));
        }
        match self.fields.binary_search_by_key(&field, |(f, _)| *f) {
            Ok(i) => self.fields[i].1 = heads,
            Err(i) => self.fields.insert(i, (field, heads)),
        }
    }

    pub fn mark_anomaly(&mut self, dot: Dot) {
        let key = |d: &Dot| (d.actor, d.counter);
        if let Err(i) = self.anomalies.binary_search_by_key(&key(&dot), key) {
            self.anomalies.insert(i, dot);
        }
    }

    pub fn anomalies(&self) -> &[Dot] {
        &self.anomalies
    }

    /// Fields with more than one head.
    pub fn conflicts(&self) -> impl Iterator<Item = (Field, &[Head])> {
        self.fields
            .iter()
            .filter(|(_, h)| h.len() > 1)
            .map(|(f, h)| (*f, h.as_slice()))
    }

    pub fn needs_attention(&self) -> bool {
        self.conflicts().next().is_some() || !self.anomalies.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.anomalies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(actor: u32, counter: u64, millis: u64) -> Head {
        Head {
            dot: Dot::new(actor, counter),
            stamp: Stamp::new(millis, 0),
        }
    }

    #[test]
    fn a_write_that_saw_another_replaces_it_even_with_an_older_stamp() {
        let first = head(1, 1, 5_000);
        let mut heads = vec![first];
        let later_but_slow_clock = head(2, 1, 1_000);
        integrate(&mut heads, later_but_slow_clock, &[first.dot]);
        assert_eq!(heads, vec![later_but_slow_clock]);
    }

    #[test]
    fn concurrent_writes_all_stay_and_the_latest_stamp_is_shown() {
        let base = head(1, 1, 1_000);
        let mut heads = vec![base];
        let a = head(2, 1, 3_000);
        let b = head(3, 1, 2_000);
        integrate(&mut heads, a, &[base.dot]);
        integrate(&mut heads, b, &[base.dot]);
        assert_eq!(heads, vec![a, b]);
        let mut other_order = vec![base];
        integrate(&mut other_order, b, &[base.dot]);
        integrate(&mut other_order, a, &[base.dot]);
        assert_eq!(heads, other_order);
        let settle = head(1, 2, 500);
        integrate(&mut heads, settle, &[a.dot, b.dot]);
        assert_eq!(heads, vec![settle]);
    }

    #[test]
    fn equal_stamps_are_ordered_by_replica() {
        let base = head(1, 1, 1_000);
        let mut heads = vec![base];
        integrate(&mut heads, head(7, 1, 2_000), &[base.dot]);
        integrate(&mut heads, head(9, 1, 2_000), &[base.dot]);
        assert_eq!(heads[0].dot.actor, 9);
    }

    #[test]
    fn anomalies_leave_with_their_head() {
        let mut case = CaseHeads::default();
        let bad = head(2, 4, 10);
        case.set(Field::Status, vec![bad]);
        case.mark_anomaly(bad.dot);
        assert!(case.needs_attention());
        case.set(Field::Status, vec![head(3, 1, 20)]);
        assert!(!case.needs_attention());
    }

    #[test]
    fn heads_are_kept_in_the_same_order_whatever_the_arrival_order() {
        let (a, b) = (head(8, 1, 10), head(9, 1, 10));
        let mut one = CaseHeads::default();
        one.set(Field::Unit, vec![a, b]);
        one.set(Field::Locality, vec![a, b]);
        one.set(Field::Status, vec![a, b]);
        one.mark_anomaly(b.dot);
        one.mark_anomaly(a.dot);
        let mut other = CaseHeads::default();
        other.set(Field::Status, vec![a, b]);
        other.set(Field::Locality, vec![a, b]);
        other.set(Field::Unit, vec![a, b]);
        other.mark_anomaly(a.dot);
        other.mark_anomaly(b.dot);
        other.mark_anomaly(a.dot);
        assert_eq!(one, other);
        let order: Vec<Field> = one.conflicts().map(|(f, _)| f).collect();
        assert_eq!(order, vec![Field::Locality, Field::Unit, Field::Status]);
    }

    #[test]
    fn settling_a_status_conflict_is_a_valid_transition() {
        use Status::*;
        assert!(status_write_is_valid(&[Resolved, Cancelled], Resolved));
        assert!(status_write_is_valid(&[InProgress], Resolved));
        assert!(!status_write_is_valid(&[Received], Closed));
    }
}
