//! Helpers shared by the integration tests.
#![allow(dead_code)]

use guichet_core::{
    Case, CaseDetail, CaseQuery, Channel, Clock, NewCase, Op, Priority, ReplicaId, Status, Store,
    VersionVector,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A plausible "now" for the tests' clocks (mid 2025).
pub const T0: u64 = 1_750_000_000_000;
pub const SECOND: i64 = 1_000;
pub const HOUR: i64 = 3_600 * SECOND;
pub const DAY: i64 = 24 * HOUR;

/// A shared "true time" that every test replica reads through its own skew.
#[derive(Clone)]
pub struct World(Arc<AtomicU64>);

impl World {
    pub fn new() -> World {
        World(Arc::new(AtomicU64::new(T0)))
    }

    pub fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// A device clock that is `offset_ms` away from true time.
    pub fn clock(&self, offset_ms: i64) -> Clock {
        let time = self.0.clone();
        Arc::new(move || (time.load(Ordering::SeqCst) as i64 + offset_ms).max(0) as u64)
    }
}

/// A valid new case; `i` varies the content.
pub fn new_case(i: usize) -> NewCase {
    let through_mediator = i % 4 == 3;
    NewCase {
        service: ["birth-certificate", "water-point", "land-title"][i % 3].to_string(),
        requester_phone: format!("+22177{:07}", i % 10_000_000),
        requester_name: ["Awa Ndiaye", "Moussa Sow", "Fatou Diop", "Ibrahima Fall"][i % 4]
            .to_string(),
        requester_language: ["wo", "fr", "ff"][i % 3].to_string(),
        locality: ["Thiès", "Dakar", "Saint-Louis", "Kaolack"][i % 4].to_string(),
        channel: if through_mediator {
            Channel::Mediator
        } else {
            [Channel::Field, Channel::Ussd, Channel::Sms][i % 3]
        },
        mediator: through_mediator.then(|| "Aïssatou".to_string()),
        unit: ["unit-a", "unit-b"][i % 2].to_string(),
        assignee: [Some("agent-1"), None][i % 2].map(str::to_string),
        priority: [Priority::Low, Priority::Normal, Priority::Urgent][i % 3],
        description: format!("request number {i}"),
        status: [Status::Received, Status::Assigned, Status::InProgress][i % 3],
    }
}

/// Everything a replica shows that must converge: its version vector, every
/// operation of every author, and every case as listed and as detailed.
/// (Purely local things such as the clock or the sync history are left out.)
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub vv: VersionVector,
    pub ops: BTreeMap<ReplicaId, Vec<Op>>,
    pub list: Vec<Case>,
    pub cases: Vec<CaseDetail>,
}

pub fn snapshot(store: &Store) -> Snapshot {
    let vv = store.version_vector().clone();
    let ops = vv
        .dots
        .keys()
        .map(|&r| (r, store.ops_of(r, 0).expect("ops_of")))
        .collect();
    let list = store
        .list_cases(&CaseQuery {
            limit: 1_000,
            ..CaseQuery::default()
        })
        .expect("list_cases");
    let mut ids: Vec<_> = list.iter().map(|c| c.id).collect();
    ids.sort();
    let cases = ids
        .iter()
        .map(|id| store.get_case(*id).expect("get_case"))
        .collect();
    Snapshot {
        vv,
        ops,
        list,
        cases,
    }
}

/// A scratch directory, in memory when the system offers one: the stores
/// sync every commit to disk, which is what makes a scenario slow.
pub fn scratch() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("guichet-test")
            .tempdir_in(shm)
        {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

/// The property tests' settings: `PROPTEST_CASES` schedules, else `cases`.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(cases);
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        max_shrink_time: 120_000,
        ..proptest::test_runner::Config::default()
    }
}

/// The ids of the cases a replica holds, sorted.
pub fn held_ids(store: &Store) -> Vec<guichet_core::CaseId> {
    let q = CaseQuery {
        limit: 10_000,
        ..Default::default()
    };
    let mut ids: Vec<_> = store
        .list_cases(&q)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort();
    ids
}
