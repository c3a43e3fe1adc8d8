//! Identities: replicas, operation dots and case ids.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A replica is one store: a tablet, the sync server or the USSD gateway.
/// Numbers are handed out by the authority at enrolment, never reused.
pub type ReplicaId = u32;

/// Highest replica number: case ids pack the replica into 23 bits.
pub const MAX_REPLICA: ReplicaId = (1 << 23) - 1;

/// Highest per-replica operation counter (40 bits, see [`CaseId`]).
pub const MAX_COUNTER: u64 = (1 << 40) - 1;

/// The unique id of an operation: its author and the author's counter.
pub type Dot = crdts::Dot<ReplicaId>;

/// A replica's knowledge: for each author, the highest counter it holds
/// (it always holds every lower one).
pub type VersionVector = crdts::VClock<ReplicaId>;

/// A case is named by the dot of the operation that created it, packed into
/// one integer: globally unique without coordination, and increasing per
/// replica so SQLite appends to its indexes instead of splitting pages at
/// random (random UUID keys were the dominant cost in our measurements).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "(u32, u64)", try_from = "(u32, u64)")]
pub struct CaseId(u64);

impl CaseId {
    pub fn from_dot(dot: Dot) -> Option<CaseId> {
        valid_dot(dot).then_some(CaseId(((dot.actor as u64) << 40) | dot.counter))
    }

    pub fn dot(self) -> Dot {
        Dot::new((self.0 >> 40) as ReplicaId, self.0 & MAX_COUNTER)
    }

    /// The integer stored in SQLite.
    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }

    pub fn from_i64(raw: i64) -> Option<CaseId> {
        let id = CaseId(u64::try_from(raw).ok()?);
        CaseId::from_dot(id.dot())
    }
}

pub(crate) fn valid_dot(dot: Dot) -> bool {
    (1..=MAX_REPLICA).contains(&dot.actor) && (1..=MAX_COUNTER).contains(&dot.counter)
}

impl From<CaseId> for (u32, u64) {
    fn from(id: CaseId) -> Self {
        let dot = id.dot();
        (dot.actor, dot.counter)
    }
}

impl TryFrom<(u32, u64)> for CaseId {
    type Error = String;
    fn try_from((actor, counter): (u32, u64)) -> Result<Self, String> {
        CaseId::from_dot(Dot::new(actor, counter))
            .ok_or_else(|| format!("invalid case id {actor}-{counter}"))
    }
}

/// Printed as `replica-counter`, the form used in APIs and URLs.
impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dot = self.dot();
        write!(f, "{}-{}", dot.actor, dot.counter)
    }
}

impl fmt::Debug for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaseId({self})")
    }
}

impl std::str::FromStr for CaseId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, c) = s.split_once('-').ok_or("a case id looks like 12-345")?;
        let actor = a.parse().map_err(|_| "a case id looks like 12-345")?;
        let counter = c.parse().map_err(|_| "a case id looks like 12-345")?;
        CaseId::try_from((actor, counter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_id_round_trips_through_dot_integer_and_text() {
        let id = CaseId::from_dot(Dot::new(4242, 987_654_321)).unwrap();
        assert_eq!(id.dot(), Dot::new(4242, 987_654_321));
        assert_eq!(CaseId::from_i64(id.as_i64()), Some(id));
        assert_eq!(id.to_string().parse::<CaseId>(), Ok(id));
        assert_eq!(CaseId::from_dot(Dot::new(0, 1)), None);
        assert_eq!(CaseId::from_dot(Dot::new(MAX_REPLICA + 1, 1)), None);
        assert_eq!(CaseId::from_dot(Dot::new(1, MAX_COUNTER + 1)), None);
        assert!("12".parse::<CaseId>().is_err());
    }
}
