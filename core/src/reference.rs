//! Public case references: digits a citizen types on a keypad.
//!
//! Layout: `L` `replica` `sequence` `check`, where `L` is the number of
//! digits of the replica number, the sequence is the replica's own case
//! counter zero-padded to 5 digits, and the last digit is a Damm check
//! digit. Each replica numbers its own cases, so two offline tablets can
//! never hand out the same reference; the length digit keeps the layout
//! unambiguous. Replicas 1-9 give 8 digits, 10-99 give 9, 100-999 give 10.
//!
//! The Damm algorithm detects every single wrong digit and every swap of
//! two adjacent digits. It is a 10x10 table; the only crate for it is an
//! unmaintained 0.1, so it lives here.

use crate::ids::{ReplicaId, MAX_REPLICA};
use crate::Error;

/// Minimum width of the per-replica sequence part.
const SEQUENCE_WIDTH: usize = 5;

/// The weakly totally anti-symmetric quasigroup of order 10 (Damm 2004).
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

fn damm_interim(digits: &[u8]) -> u8 {
    digits
        .iter()
        .fold(0, |interim, &d| DAMM[interim as usize][(d - b'0') as usize])
}

/// Builds the reference of a replica's `sequence`-th case.
pub fn make(replica: ReplicaId, sequence: u64) -> String {
    let replica = replica.to_string();
    let mut body = format!(
        "{}{}{:0width$}",
        replica.len(),
        replica,
        sequence,
        width = SEQUENCE_WIDTH
    );
    let check = damm_interim(body.as_bytes());
    body.push((b'0' + check) as char);
    body
}

/// Checks what a citizen typed and returns the canonical reference.
/// Spaces, dashes and dots people add while copying are ignored.
pub fn parse(typed: &str) -> Result<String, Error> {
    let digits: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.'))
        .collect();
    let invalid = |why: &str| Error::InvalidReference(why.to_string());
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("a reference has digits only"));
    }
    if digits.len() < 2 + 1 + SEQUENCE_WIDTH {
        return Err(invalid("a reference has at least 8 digits"));
    }
    if damm_interim(digits.as_bytes()) != 0 {
        return Err(invalid("the check digit does not match: a digit is wrong"));
    }
    let replica_len = (digits.as_bytes()[0] - b'0') as usize;
    if replica_len == 0 || digits.len() < 1 + replica_len + SEQUENCE_WIDTH + 1 {
        return Err(invalid("the reference is malformed"));
    }
    Ok(digits)
}

/// The replica that issued a valid reference.
pub fn issuer(reference: &str) -> Option<ReplicaId> {
    let replica_len = (reference.as_bytes().first()? - b'0') as usize;
    let replica: ReplicaId = reference.get(1..1 + replica_len)?.parse().ok()?;
    (replica.to_string().len() == replica_len && (1..=MAX_REPLICA).contains(&replica))
        .then_some(replica)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_damm_vector() {
        // Damm's published example: 572 -> check digit 4.
        assert_eq!(damm_interim(b"572"), 4);
        assert_eq!(damm_interim(b"5724"), 0);
    }

    #[test]
    fn references_have_expected_lengths_and_issuer() {
        assert_eq!(make(7, 42).len(), 8);
        assert_eq!(make(42, 1).len(), 9);
        assert_eq!(make(421, 99_999).len(), 10);
        assert_eq!(make(421, 100_000).len(), 11);
        let r = make(421, 12);
        assert_eq!(parse(&r).unwrap(), r);
        assert_eq!(issuer(&r), Some(421));
    }

    #[test]
    fn every_single_digit_error_and_adjacent_swap_is_refused() {
        for (replica, seq) in [(1, 1), (37, 4711), (905, 99_999), (12345, 7)] {
            let r = make(replica, seq);
            let bytes = r.as_bytes();
            for i in 0..bytes.len() {
                for d in b'0'..=b'9' {
                    if d == bytes[i] {
                        continue;
                    }
                    let mut typo = bytes.to_vec();
                    typo[i] = d;
                    assert!(parse(std::str::from_utf8(&typo).unwrap()).is_err());
                }
                if i + 1 < bytes.len() && bytes[i] != bytes[i + 1] {
                    let mut swap = bytes.to_vec();
                    swap.swap(i, i + 1);
                    assert!(parse(std::str::from_utf8(&swap).unwrap()).is_err());
                }
            }
        }
    }

    #[test]
    fn distinct_replicas_and_sequences_never_collide() {
        let mut seen = std::collections::HashSet::new();
        for replica in [1, 9, 10, 11, 99, 100, 101, 999, 1000] {
            for seq in [1, 2, 9, 10, 99_999, 100_000, 1_000_000] {
                assert!(seen.insert(make(replica, seq)), "{replica} {seq}");
            }
        }
    }

    #[test]
    fn typing_noise_is_ignored_and_junk_refused() {
        let r = make(3, 17);
        let spaced = format!("{} {}-{}", &r[..3], &r[3..6], &r[6..]);
        assert_eq!(parse(&spaced).unwrap(), r);
        assert!(parse("12ab5678").is_err());
        assert!(parse("123").is_err());
        assert!(parse("").is_err());
    }
}
