//! Hybrid logical clock stamps (Kulkarni et al. 2014), used only to order
//! writes that are truly concurrent. Causality is decided by the dots a
//! write supersedes, never by stamps.
//!
//! Skew policy, so that a tablet whose clock runs ahead cannot win every
//! conflict forever:
//! - a replica takes a peer's stamp into its own clock only up to
//!   [`MAX_FORWARD_MS`] ahead of its physical clock, so one bad clock does
//!   not drag every replica into the future;
//! - a write made after seeing a future-stamped write supersedes it whatever
//!   the stamps say, so the bad stamp only wins against writes made without
//!   knowledge of it, and only until somebody edits the field again;
//! - the sync server tells each device its clock offset, which the device
//!   applies to the stamps it makes from then on ([`crate::Store::set_clock_offset`]).

use serde::{Deserialize, Serialize};

/// How far ahead of our own clock a peer's stamp may pull it.
pub const MAX_FORWARD_MS: u64 = 60_000;

const LOGICAL_BITS: u32 = 16;

/// Milliseconds since the Unix epoch in the high 48 bits, a logical counter
/// in the low 16: one integer that sorts like the pair.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Stamp(pub u64);

impl Stamp {
    pub fn new(millis: u64, logical: u16) -> Stamp {
        Stamp((millis << LOGICAL_BITS) | logical as u64)
    }

    pub fn millis(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    fn next(self) -> Stamp {
        Stamp(self.0 + 1)
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Hlc {
    last: Stamp,
}

impl Hlc {
    pub fn starting_at(last: Stamp) -> Hlc {
        Hlc { last }
    }

    pub fn last(&self) -> Stamp {
        self.last
    }

    /// A fresh stamp for a local write, after every stamp seen so far.
    pub fn tick(&mut self, physical_ms: u64) -> Stamp {
        let physical = Stamp::new(physical_ms, 0);
        self.last = physical.max(self.last.next());
        self.last
    }

    /// Takes a peer's stamp into account, within the skew policy.
    pub fn observe(&mut self, remote: Stamp, physical_ms: u64) {
        let ceiling = Stamp::new(physical_ms.saturating_add(MAX_FORWARD_MS), 0);
        self.last = self.last.max(remote.min(ceiling));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_strictly_increasing_even_when_the_clock_goes_back() {
        let mut hlc = Hlc::default();
        let a = hlc.tick(1_000);
        let b = hlc.tick(1_000);
        let c = hlc.tick(500);
        assert!(a < b && b < c);
        assert_eq!(c.millis(), 1_000);
        assert_eq!(hlc.tick(2_000), Stamp::new(2_000, 0));
    }

    #[test]
    fn a_far_future_peer_does_not_drag_the_clock_along() {
        let mut hlc = Hlc::default();
        let day = 86_400_000;
        hlc.observe(Stamp::new(10 * day, 0), day);
        assert_eq!(hlc.tick(day).millis(), day + MAX_FORWARD_MS);
        let mut near = Hlc::default();
        near.observe(Stamp::new(day + 5, 3), day);
        assert_eq!(near.tick(day), Stamp::new(day + 5, 4));
    }
}
