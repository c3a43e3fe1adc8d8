//! Convergence of devices that hold only their units' cases, syncing
//! through the server, while units change: the property test drives the
//! gateway (every unit) and three tablets through random schedules of
//! edits, cases moving between units, tablets given and losing units, cases
//! opened outside a tablet's units (quarantined), releases, and exchanges
//! whose answers are lost. Then it heals and checks that
//! - no device is stalled: every sync finishes with nothing pending;
//! - each device shows exactly the server's cases of its units, identical,
//!   plus those it opened that the server still holds in quarantine;
//! - no write is lost: every operation a device wrote is applied on the
//!   server or held in its quarantine.
//!
//! 1,000 schedules by default; `PROPTEST_CASES` sets another number.

mod common;

use common::{held_ids as held, proptest_config, scratch};
use guichet_core::{
    CaseId, Channel, Dot, EventKind, Field, NewCase, Priority, ReplicaId, Scope, Status, Store,
    Value,
};
use proptest::prelude::*;
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

const SERVER: &str = "https://sync.example";
const UNITS: [&str; 3] = ["u1", "u2", "u3"];
/// The gateway, then three tablets.
const DEVICES: [ReplicaId; 4] = [2, 3, 4, 5];

#[derive(Clone, Debug)]
enum Step {
    /// A device opens a case in one of its units or, `outside`, in one it
    /// does not serve.
    Create {
        on: usize,
        unit: usize,
        outside: bool,
    },
    /// A device edits a case it holds (a field or the timeline).
    Edit { on: usize, pick: usize, what: usize },
    /// A device moves a case it holds to another unit.
    Move { on: usize, pick: usize, unit: usize },
    /// One exchange of a device with the server.
    Exchange {
        on: usize,
        upload: usize,
        lose_answer: bool,
    },
    /// The server gives a tablet other units (a bit mask, never empty).
    Rescope { tablet: usize, units: u8 },
    /// A supervisor releases what a tablet's units now allow.
    Release { tablet: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..4usize, 0..3usize, prop::bool::weighted(0.15))
            .prop_map(|(on, unit, outside)| Step::Create { on, unit, outside }),
        4 => (0..4usize, 0..64usize, 0..4usize)
            .prop_map(|(on, pick, what)| Step::Edit { on, pick, what }),
        2 => (0..4usize, 0..64usize, 0..3usize)
            .prop_map(|(on, pick, unit)| Step::Move { on, pick, unit }),
        5 => (0..4usize, 1..6usize, prop::bool::weighted(0.2))
            .prop_map(|(on, upload, lose_answer)| Step::Exchange { on, upload, lose_answer }),
        1 => (1..4usize, 1..8u8).prop_map(|(tablet, units)| Step::Rescope { tablet, units }),
        1 => (1..4usize).prop_map(|tablet| Step::Release { tablet }),
    ]
}

struct Net {
    server: Store,
    devices: Vec<Store>,
    scopes: Vec<Scope>,
    made: usize,
}

fn units_of(mask: u8) -> Scope {
    Scope::Units(
        UNITS
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, u)| u.to_string())
            .collect(),
    )
}

fn new_case(unit: &str, i: usize) -> NewCase {
    NewCase {
        service: "etat-civil".into(),
        requester_phone: format!("+22177000{i:04}"),
        requester_name: format!("Citoyen {i}"),
        requester_language: "wo".into(),
        locality: "Thiès".into(),
        channel: Channel::Field,
        mediator: None,
        unit: unit.into(),
        assignee: None,
        priority: Priority::Normal,
        description: format!("Demande {i}"),
        status: Status::Received,
    }
}

impl Net {
    fn new(dir: &Path) -> Net {
        let open = |replica: ReplicaId| {
            Store::open(dir.join(format!("r{replica}.db")), replica).expect("open store")
        };
        Net {
            server: open(1),
            devices: DEVICES.iter().map(|r| open(*r)).collect(),
            scopes: vec![
                Scope::All,
                units_of(0b001),
                units_of(0b010),
                units_of(0b011),
            ],
            made: 0,
        }
    }

    fn pick(&self, on: usize, pick: usize) -> Option<CaseId> {
        let ids = held(&self.devices[on]);
        (!ids.is_empty()).then(|| ids[pick % ids.len()])
    }

    fn run(&mut self, step: &Step) {
        match *step {
            Step::Create { on, unit, outside } => {
                let unit = match &self.scopes[on] {
                    Scope::All => UNITS[unit],
                    Scope::Units(mine) if outside => {
                        match UNITS.iter().find(|u| !mine.iter().any(|m| m == *u)) {
                            Some(u) => u,
                            None => return,
                        }
                    }
                    Scope::Units(mine) => &mine[unit % mine.len()],
                }
                .to_string();
                self.made += 1;
                let case = new_case(&unit, self.made);
                self.devices[on].write(|w| w.create_case(&case)).unwrap();
            }
            Step::Edit { on, pick, what } => {
                let Some(case) = self.pick(on, pick) else {
                    return;
                };
                // Refused only for a case that is leaving this device.
                let _ = self.devices[on].write(|w| match what {
                    0 => w.add_event(case, EventKind::Note, "note").map(|_| ()),
                    1 => w
                        .update(case, &[(Field::Assignee, Value::text(format!("a{on}")))])
                        .map(|_| ()),
                    2 => w
                        .update(case, &[(Field::Description, Value::text(format!("d{on}")))])
                        .map(|_| ()),
                    _ => w
                        .update(case, &[(Field::Priority, Value::Int(2))])
                        .map(|_| ()),
                });
            }
            Step::Move { on, pick, unit } => {
                let Some(case) = self.pick(on, pick) else {
                    return;
                };
                let _ = self.devices[on]
                    .write(|w| w.update(case, &[(Field::Unit, Value::text(UNITS[unit]))]));
            }
            Step::Exchange {
                on,
                upload,
                lose_answer,
            } => {
                self.exchange(on, upload, lose_answer);
            }
            Step::Rescope { tablet, units } => self.scopes[tablet] = units_of(units),
            Step::Release { tablet } => {
                self.server
                    .release_quarantined(DEVICES[tablet], &self.scopes[tablet], "test")
                    .unwrap();
            }
        }
    }

    /// One exchange as the sync client makes it; true when the device has
    /// nothing more to send or receive.
    fn exchange(&mut self, on: usize, upload: usize, lose_answer: bool) -> bool {
        let device = &mut self.devices[on];
        let request = device.sync_request(SERVER, upload, 7, "test").unwrap();
        let (response, _) = self
            .server
            .serve_sync(DEVICES[on], &self.scopes[on], &request, 1 << 20)
            .expect("the server takes every exchange");
        if lose_answer {
            return false;
        }
        device
            .apply_sync_response(SERVER, &response)
            .expect("the device takes every answer");
        !response.more && device.pending_ops(SERVER, 1).unwrap().is_empty()
    }

    /// Syncs every device until none has anything left; panics on a stall.
    fn heal(&mut self) {
        for _ in 0..3 {
            for on in 0..self.devices.len() {
                let mut done = false;
                for _ in 0..500 {
                    if self.exchange(on, 5, false) {
                        done = true;
                        break;
                    }
                }
                assert!(done, "device {on} is stalled");
            }
        }
    }

    fn check(&self) {
        let server_cases = held(&self.server);
        for (on, device) in self.devices.iter().enumerate() {
            let replica = DEVICES[on];
            let quarantined: Vec<_> = self.server.quarantined(Some(replica), false).unwrap();
            let still_held: HashSet<Dot> = quarantined
                .iter()
                .filter(|e| e.state == guichet_core::QuarantineState::Held)
                .map(|e| e.dot)
                .collect();
            // Cases the device opened that the server does not have.
            let kept_back: BTreeSet<CaseId> = quarantined
                .iter()
                .filter(|e| still_held.contains(&e.dot) && e.kind == "create")
                .map(|e| e.case)
                .collect();
            let mut expected: Vec<CaseId> = server_cases
                .iter()
                .copied()
                .filter(|id| {
                    let unit = self.server.get_case(*id).unwrap().case.unit;
                    self.scopes[on].contains(&unit)
                })
                .chain(kept_back.iter().copied())
                .collect();
            expected.sort();
            assert_eq!(held(device), expected, "the cases device {on} holds");
            for id in &expected {
                if !kept_back.contains(id) {
                    assert_eq!(
                        device.get_case(*id).unwrap(),
                        self.server.get_case(*id).unwrap(),
                        "case {id} on device {on}"
                    );
                }
            }
            let status = device.sync_status(SERVER).unwrap();
            assert_eq!(status.pending_ops, 0, "device {on} has nothing pending");
            assert_eq!(status.quarantined_ops, still_held.len() as u64);
            // Every write it made reached the server: applied or held.
            let applied: BTreeSet<u64> = self
                .server
                .ops_of(replica, 0)
                .unwrap()
                .iter()
                .map(|op| op.dot.counter)
                .collect();
            let in_quarantine: BTreeSet<u64> = quarantined
                .iter()
                .filter(|e| e.state != guichet_core::QuarantineState::Released)
                .map(|e| e.dot.counter)
                .collect();
            for counter in 1..=device.version_vector().get(&replica) {
                assert!(
                    applied.contains(&counter) ^ in_quarantine.contains(&counter),
                    "write {replica}-{counter} is applied or quarantined, once"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(proptest_config(1_000))]

    #[test]
    fn scoped_devices_converge_while_units_change(steps in prop::collection::vec(step(), 1..40)) {
        check_schedule(&steps);
    }
}

/// Runs a schedule, heals and checks; then gives every tablet every unit,
/// releases their quarantine, heals and checks that nothing is held back.
fn check_schedule(steps: &[Step]) {
    let dir = scratch();
    let mut net = Net::new(dir.path());
    for step in steps {
        net.run(step);
    }
    net.heal();
    net.check();
    for tablet in 1..4 {
        net.scopes[tablet] = units_of(0b111);
    }
    net.heal();
    for (replica, scope) in DEVICES.iter().zip(&net.scopes).skip(1) {
        net.server
            .release_quarantined(*replica, scope, "test")
            .unwrap();
    }
    net.heal();
    net.check();
    assert!(net.server.quarantined(None, true).unwrap().is_empty());
}

/// Found by the property test: a tablet given a unit, whose answer handing
/// over that unit's case is lost while the case moves into a unit it kept.
#[test]
fn a_lost_hand_over_is_handed_over_again() {
    use Step::*;
    check_schedule(&[
        Create {
            on: 1,
            unit: 0,
            outside: false,
        },
        Exchange {
            on: 1,
            upload: 1,
            lose_answer: false,
        },
        Move {
            on: 1,
            pick: 0,
            unit: 1,
        },
        Exchange {
            on: 2,
            upload: 1,
            lose_answer: false,
        },
        Rescope {
            tablet: 2,
            units: 3,
        },
        Exchange {
            on: 2,
            upload: 1,
            lose_answer: true,
        },
    ]);
}

/// Found by the property test: a tablet losing a unit, whose answer
/// withdrawing that unit's case is lost while the case moves to a third
/// unit.
#[test]
fn a_lost_withdrawal_is_told_again() {
    use Step::*;
    check_schedule(&[
        Create {
            on: 1,
            unit: 0,
            outside: false,
        },
        Exchange {
            on: 1,
            upload: 1,
            lose_answer: false,
        },
        Exchange {
            on: 0,
            upload: 1,
            lose_answer: false,
        },
        Move {
            on: 0,
            pick: 0,
            unit: 2,
        },
        Exchange {
            on: 3,
            upload: 1,
            lose_answer: false,
        },
        Rescope {
            tablet: 3,
            units: 2,
        },
        Exchange {
            on: 3,
            upload: 1,
            lose_answer: true,
        },
    ]);
}
