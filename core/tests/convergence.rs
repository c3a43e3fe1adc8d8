//! Convergence of replicas that exchange operations in any order, with
//! duplicates, losses, partitions and skewed clocks.
//!
//! The property test drives 3 to 5 replicas (one SQLite file each) through a
//! random scenario of local edits and deliveries, heals the network, and
//! checks that every replica ends up with the same operations and shows the
//! same cases. On the way it checks order independence, idempotence and
//! associativity of merging, and that out-of-order batches are refused
//! without side effects. `PROPTEST_CASES` raises the number of scenarios.

mod common;

use common::*;
use guichet_core::{
    ApplyOutcome, Batch, BatchError, BatchLimit, CaseId, Dot, Error, EventKind, Field, FieldWrite,
    Op, OpBody, ReplicaId, Stamp, Status, Store, Value, VersionVector,
};
use proptest::prelude::*;
use std::path::Path;

/// Replica numbers of different widths (they change the reference layout).
const IDS: [ReplicaId; 5] = [1, 2, 30, 400, 5_000];
/// Few cases, so that concurrent edits of the same field are frequent.
const MAX_CASES: usize = 6;

/// What the replica shows, for comparison with another replica: conflicts
/// and status anomalies included, in the order they are listed.
fn state(store: &Store) -> Snapshot {
    snapshot(store)
}

const SMALL: BatchLimit = BatchLimit {
    max_ops: 3,
    max_bytes: usize::MAX,
};

// ---------------------------------------------------------------------------
// Scenarios

#[derive(Clone, Debug)]
enum Step {
    Create {
        at: usize,
        seed: usize,
    },
    Update {
        at: usize,
        case: usize,
        fields: Vec<(usize, usize)>,
    },
    Status {
        at: usize,
        case: usize,
        to: usize,
    },
    Event {
        at: usize,
        case: usize,
        kind: usize,
        text: usize,
    },
    Rate {
        at: usize,
        case: usize,
        rating: u8,
    },
    Resolve {
        at: usize,
        case: usize,
        conflict: usize,
        pick: usize,
    },
    Deliver {
        from: usize,
        to: usize,
        limit: (usize, usize),
        twice: bool,
        mode: Mode,
    },
    /// Batch 2 before batch 1, then both in order.
    OutOfOrder {
        from: usize,
        to: usize,
        max_ops: usize,
    },
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Every batch until the receiver has everything the sender has.
    All,
    /// The link breaks after this many batches.
    Cut(usize),
    /// The first batch is lost.
    Drop,
}

#[derive(Clone, Debug)]
struct Scenario {
    /// How far each replica's clock is from true time, in ms.
    offsets: Vec<i64>,
    /// Cases created (replica, seed) and synced everywhere before the steps,
    /// so that the steps often edit the same case concurrently.
    initial: Vec<(usize, usize)>,
    /// True time advance before each step, and the step.
    steps: Vec<(u64, Step)>,
}

fn offsets() -> impl Strategy<Value = Vec<i64>> {
    (3..=5usize)
        .prop_flat_map(|n| {
            (
                // one replica hours behind, one days ahead, the others close
                1..=12 * HOUR,
                1..=5 * DAY,
                prop::collection::vec(-10 * SECOND..=10 * SECOND, n - 2),
            )
        })
        .prop_map(|(behind, ahead, others)| {
            let mut all = vec![-behind, ahead];
            all.extend(others);
            all
        })
}

/// A field to write, most often one of a few so that concurrent writes of
/// the same field are frequent.
fn field() -> impl Strategy<Value = usize> {
    let hot = [Field::Locality, Field::Assignee, Field::Priority].map(|f| f.code() as usize);
    prop_oneof![
        1 => 0..Field::ALL.len(),
        2 => prop::sample::select(hot.to_vec()),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let at = 0..5usize;
    let case = 0..MAX_CASES;
    let mode = prop_oneof![
        6 => Just(Mode::All),
        2 => (1..3usize).prop_map(Mode::Cut),
        1 => Just(Mode::Drop),
    ];
    let limit = (1..=6usize, prop_oneof![Just(usize::MAX), 100..800usize]);
    prop_oneof![
        2 => (at.clone(), any::<u8>()).prop_map(|(at, seed)| Step::Create { at, seed: seed as usize }),
        5 => (at.clone(), case.clone(), prop::collection::vec((field(), 0..6usize), 1..=3))
            .prop_map(|(at, case, fields)| Step::Update { at, case, fields }),
        3 => (at.clone(), case.clone(), prop_oneof![0..Status::ALL.len(), Just(Status::Resolved.code() as usize)])
            .prop_map(|(at, case, to)| Step::Status { at, case, to }),
        1 => (at.clone(), case.clone(), 0..EventKind::ALL.len(), 0..3usize)
            .prop_map(|(at, case, kind, text)| Step::Event { at, case, kind, text }),
        1 => (at.clone(), case.clone(), 1..=5u8)
            .prop_map(|(at, case, rating)| Step::Rate { at, case, rating }),
        3 => (at.clone(), case, 0..3usize, 0..4usize)
            .prop_map(|(at, case, conflict, pick)| Step::Resolve { at, case, conflict, pick }),
        6 => (at.clone(), at.clone(), limit, prop::bool::weighted(0.2), mode)
            .prop_map(|(from, to, limit, twice, mode)| Step::Deliver { from, to, limit, twice, mode }),
        1 => (at.clone(), at, 1..=3usize)
            .prop_map(|(from, to, max_ops)| Step::OutOfOrder { from, to, max_ops }),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        offsets(),
        prop::collection::vec((0..5usize, any::<u8>().prop_map(usize::from)), 0..=3),
        prop::collection::vec((0..5_000u64, step()), 10..70),
    )
        .prop_map(|(offsets, initial, steps)| Scenario {
            offsets,
            initial,
            steps,
        })
}

fn value_for(field: Field, i: usize) -> Value {
    let pick = |xs: &[&str]| Value::text(xs[i % xs.len()]);
    let opt = |xs: &[&str]| match i % (xs.len() + 1) {
        0 => Value::Null,
        k => Value::text(xs[k - 1]),
    };
    match field {
        Field::Service => pick(&["birth-certificate", "water-point", "land-title"]),
        Field::RequesterPhone => pick(&["+221771234567", "+221770000001", "+254712345678"]),
        Field::RequesterName => pick(&["Awa Ndiaye", "Moussa Sow", ""]),
        Field::RequesterLanguage => pick(&["wo", "fr", "ff"]),
        Field::Locality => pick(&["Thiès", "Dakar", "Ziguinchor"]),
        Field::Mediator => opt(&["Aïssatou", "Omar"]),
        Field::Unit => pick(&["unit-a", "unit-b"]),
        Field::Assignee => opt(&["agent-1", "agent-2"]),
        Field::Priority => Value::Int((i % 3) as i64),
        Field::Description => pick(&["lost papers", "broken pump", "boundary dispute"]),
        Field::Status => Value::Int((i % Status::ALL.len()) as i64),
        Field::Rating => match i % 6 {
            0 => Value::Null,
            r => Value::Int(r as i64),
        },
    }
}

// ---------------------------------------------------------------------------
// Running a scenario

struct Net {
    world: World,
    stores: Vec<Store>,
    created: usize,
}

fn open(dir: &Path, name: &str, replica: ReplicaId, world: &World, offset: i64) -> Store {
    Store::open_with_clock(dir.join(name), replica, world.clock(offset)).expect("open store")
}

fn fresh(dir: &Path, replica: ReplicaId, world: &World) -> Store {
    open(dir, &format!("fresh-{replica}.db"), replica, world, 0)
}

/// The cases a replica knows, in a stable order.
fn known_cases(store: &Store) -> Vec<CaseId> {
    let all = guichet_core::CaseQuery {
        limit: 1_000,
        ..Default::default()
    };
    let mut ids: Vec<CaseId> = store
        .list_cases(&all)
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort();
    ids
}

/// Sends `from`'s operations that `to` lacks, batch by batch, and returns
/// how many were applied. Every batch goes through the wire format.
fn deliver(from: &Store, to: &mut Store, limit: BatchLimit, twice: bool, mode: Mode) -> usize {
    let mut applied = 0;
    for k in 0.. {
        let batch = from
            .changes_since(to.version_vector(), limit)
            .expect("changes_since");
        if batch.ops.is_empty() {
            assert!(!batch.more, "an empty batch says there is more");
            break;
        }
        assert!(batch.ops.len() <= limit.max_ops);
        match mode {
            Mode::Drop if k == 0 => break,
            Mode::Cut(n) if k >= n => break,
            _ => {}
        }
        let bytes = guichet_core::wire::encode(&batch);
        let batch = guichet_core::wire::decode(&bytes).expect("decode");
        let outcome = to.apply(&batch).unwrap_or_else(|e| {
            panic!(
                "replica {} refused an in-order batch from {}: {e}",
                to.replica(),
                from.replica()
            )
        });
        assert_eq!(
            outcome,
            ApplyOutcome {
                applied: batch.ops.len(),
                duplicates: 0
            },
            "a batch of what the receiver lacks holds no duplicate"
        );
        applied += outcome.applied;
        if twice {
            // (b) idempotence: the same batch again changes nothing.
            let before = state(to);
            let again = to.apply(&batch).expect("a duplicate batch is accepted");
            assert_eq!(
                again,
                ApplyOutcome {
                    applied: 0,
                    duplicates: batch.ops.len()
                }
            );
            assert_eq!(state(to), before, "a duplicate batch changed the state");
        }
        if !batch.more {
            break;
        }
    }
    applied
}

fn deliver_all(from: &Store, to: &mut Store, limit: BatchLimit) -> usize {
    deliver(from, to, limit, false, Mode::All)
}

/// Two distinct stores of the vector, one borrowed mutably.
fn pair(stores: &mut [Store], from: usize, to: usize) -> (&Store, &mut Store) {
    assert_ne!(from, to);
    if from < to {
        let (a, b) = stores.split_at_mut(to);
        (&a[from], &mut b[0])
    } else {
        let (a, b) = stores.split_at_mut(from);
        (&b[0], &mut a[to])
    }
}

/// Batch 2 is sent before batch 1: it must be refused as a whole with the
/// state untouched (unless it happens not to depend on batch 1), and the
/// batches must then apply in order.
fn out_of_order(from: &Store, to: &mut Store, max_ops: usize) {
    let limit = BatchLimit {
        max_ops,
        max_bytes: usize::MAX,
    };
    let first = from.changes_since(to.version_vector(), limit).unwrap();
    if !first.more {
        return;
    }
    let mut after_first = to.version_vector().clone();
    for op in &first.ops {
        let held = after_first.dots.entry(op.dot.actor).or_default();
        *held = (*held).max(op.dot.counter);
    }
    let second = from.changes_since(&after_first, limit).unwrap();
    assert!(!second.ops.is_empty());
    let before = state(to);
    let early = to.apply(&second);
    match &early {
        Err(Error::Batch(BatchError::Gap { .. } | BatchError::MissingDependency { .. })) => {
            assert_eq!(state(to), before, "a refused batch left traces");
        }
        Err(e) => panic!("batch 2 before batch 1 refused for an unexpected reason: {e}"),
        Ok(_) => {
            // Legitimate only if batch 2 needs nothing from batch 1.
            for op in &second.ops {
                assert!(
                    !first.ops.iter().any(|f| f.dot.actor == op.dot.actor),
                    "batch 2 was accepted although it skips operations of batch 1"
                );
            }
        }
    }
    let one = to.apply(&first).expect("batch 1 in order");
    assert_eq!(one.applied, first.ops.len());
    let two = to.apply(&second).expect("batch 2 in order");
    assert_eq!(two.applied + two.duplicates, second.ops.len());
    if early.is_err() {
        assert_eq!(two.applied, second.ops.len());
    }
}

fn run_step(net: &mut Net, step: &Step) {
    let n = net.stores.len();
    match step {
        Step::Create { at, seed } => {
            if net.created >= MAX_CASES {
                return;
            }
            let store = &mut net.stores[at % n];
            let id = store.write(|w| w.create_case(&new_case(*seed))).unwrap();
            net.created += 1;
            let shown = store.get_case(id).unwrap();
            assert_eq!(shown.timeline.len(), 1);
            assert!(shown.conflicts.is_empty());
        }
        Step::Update { at, case, fields } => {
            let store = &mut net.stores[at % n];
            let Some(id) = pick_case(store, *case) else {
                return;
            };
            let mut changes: Vec<(Field, Value)> = Vec::new();
            for (f, v) in fields {
                let field = Field::ALL[*f];
                // One update names a field once: see
                // `a_field_written_twice_in_one_update_blocks_sync` for what
                // happens otherwise.
                if !changes.iter().any(|(g, _)| *g == field) {
                    changes.push((field, value_for(field, *v)));
                }
            }
            if let Ok(wrote) = store.write(|w| w.update(id, &changes)) {
                let after = store.get_case(id).unwrap();
                if wrote {
                    // A local write supersedes everything its author saw.
                    for (field, _) in &changes {
                        assert!(
                            !after.conflicts.iter().any(|c| c.field == *field),
                            "{field} still in conflict right after being written"
                        );
                    }
                }
            }
        }
        Step::Status { at, case, to } => {
            let store = &mut net.stores[at % n];
            let Some(id) = pick_case(store, *case) else {
                return;
            };
            let to = Status::ALL[*to];
            if store.write(|w| w.change_status(id, to)).is_ok() {
                let after = store.get_case(id).unwrap();
                assert_eq!(after.case.status, to);
                assert!(!after.conflicts.iter().any(|c| c.field == Field::Status));
            }
        }
        Step::Event {
            at,
            case,
            kind,
            text,
        } => {
            let store = &mut net.stores[at % n];
            let Some(id) = pick_case(store, *case) else {
                return;
            };
            let kind = EventKind::ALL[*kind];
            let text = ["called back", "visited the site", ""][*text];
            store
                .write(|w| w.add_event(id, kind, text))
                .expect("an event can always be added");
        }
        Step::Rate { at, case, rating } => {
            let store = &mut net.stores[at % n];
            let Some(id) = pick_case(store, *case) else {
                return;
            };
            let before = store.get_case(id).unwrap().case;
            let ops_before = store.version_vector().clone();
            let result = store.write(|w| w.rate(id, *rating));
            if before.status.is_done() {
                result.expect("a case that is done can be rated");
                assert_eq!(store.get_case(id).unwrap().case.rating, Some(*rating));
            } else if result.is_ok() {
                // Minor quirk of core: rating a case that is not done again
                // with the rating it already shows is a silent no-op (Ok)
                // rather than an error. Nothing may be written, though.
                assert_eq!(before.rating, Some(*rating), "rated a case not done");
                assert_eq!(store.version_vector(), &ops_before);
            }
        }
        Step::Resolve {
            at,
            case,
            conflict,
            pick,
        } => {
            // Among the cases this replica shows in conflict.
            let store = &mut net.stores[at % n];
            let conflicted: Vec<_> = known_cases(store)
                .into_iter()
                .map(|id| store.get_case(id).unwrap())
                .filter(|d| !d.conflicts.is_empty())
                .collect();
            if conflicted.is_empty() {
                return;
            }
            let detail = &conflicted[case % conflicted.len()];
            let id = detail.case.id;
            let c = &detail.conflicts[conflict % detail.conflicts.len()];
            assert!(c.values.len() >= 2);
            let value = match c.values.get(*pick) {
                Some(v) => v.value.clone(),
                None => value_for(c.field, *pick),
            };
            let field = c.field;
            let result = store.write(|w| w.resolve_conflict(id, field, value.clone()));
            if result.is_ok() {
                let after = store.get_case(id).unwrap();
                assert!(!after.conflicts.iter().any(|c| c.field == field));
            } else {
                // Only a status (a transition none of the values in
                // conflict allows) or a rating (of a case not done) can be
                // refused.
                let done = detail.case.status.is_done();
                assert!(
                    field == Field::Status || (field == Field::Rating && !done),
                    "{field}: {result:?}"
                );
            }
        }
        Step::Deliver {
            from,
            to,
            limit,
            twice,
            mode,
        } => {
            let (from, to) = (from % n, to % n);
            if from == to {
                return;
            }
            let limit = BatchLimit {
                max_ops: limit.0,
                max_bytes: limit.1,
            };
            let (a, b) = pair(&mut net.stores, from, to);
            deliver(a, b, limit, *twice, *mode);
        }
        Step::OutOfOrder { from, to, max_ops } => {
            let (from, to) = (from % n, to % n);
            if from == to {
                return;
            }
            let (a, b) = pair(&mut net.stores, from, to);
            out_of_order(a, b, *max_ops);
        }
    }
}

fn pick_case(store: &Store, i: usize) -> Option<CaseId> {
    let known = known_cases(store);
    (!known.is_empty()).then(|| known[i % known.len()])
}

/// Exchanges between every pair until nothing moves.
fn heal(stores: &mut [Store]) {
    for _round in 0..10 {
        let mut moved = 0;
        for from in 0..stores.len() {
            for to in 0..stores.len() {
                if from != to {
                    let (a, b) = pair(stores, from, to);
                    moved += deliver_all(a, b, BatchLimit::default());
                }
            }
        }
        if moved == 0 {
            return;
        }
    }
    panic!("replicas still exchange operations after 10 rounds");
}

fn check_scenario(scenario: &Scenario) {
    let dir = scratch();
    let world = World::new();
    let stores = scenario
        .offsets
        .iter()
        .enumerate()
        .map(|(i, off)| open(dir.path(), &format!("r{i}.db"), IDS[i], &world, *off))
        .collect();
    let mut net = Net {
        world,
        stores,
        created: 0,
    };
    for &(at, seed) in &scenario.initial {
        run_step(&mut net, &Step::Create { at, seed });
    }
    heal(&mut net.stores);
    for (advance, step) in &scenario.steps {
        net.world.advance(*advance);
        run_step(&mut net, step);
    }
    let world = net.world.clone();
    let stores = &mut net.stores;
    let (a, b, c) = (&stores[0], &stores[1], &stores[2]);

    // (a) Order independence: A then B, or B then A, in batches of
    // different sizes, give the same replica.
    let mut ab = fresh(dir.path(), 7_001, &world);
    deliver_all(a, &mut ab, SMALL);
    deliver_all(b, &mut ab, BatchLimit::default());
    let mut ba = fresh(dir.path(), 7_002, &world);
    deliver_all(b, &mut ba, BatchLimit::default());
    deliver_all(a, &mut ba, SMALL);
    assert_eq!(state(&ab), state(&ba), "A then B differs from B then A");

    // (c) Associativity: C <- (B <- A) equals (C <- B) <- A.
    let mut b_with_a = fresh(dir.path(), 7_003, &world);
    deliver_all(b, &mut b_with_a, BatchLimit::default());
    deliver_all(a, &mut b_with_a, SMALL);
    let mut left = fresh(dir.path(), 7_004, &world);
    deliver_all(c, &mut left, SMALL);
    deliver_all(&b_with_a, &mut left, BatchLimit::default());
    let mut right = fresh(dir.path(), 7_005, &world);
    deliver_all(c, &mut right, BatchLimit::default());
    deliver_all(b, &mut right, SMALL);
    deliver_all(a, &mut right, BatchLimit::default());
    assert_eq!(state(&left), state(&right), "merging is not associative");

    // Heal and compare everything.
    heal(stores);
    let reference = state(&stores[0]);
    for (r, &counter) in &reference.vv.dots {
        assert_eq!(reference.ops[r].len() as u64, counter);
    }
    for store in stores.iter().skip(1) {
        let other = state(store);
        assert_eq!(reference.vv, other.vv, "version vectors differ");
        assert_eq!(reference.ops, other.ops, "operation sets differ");
        assert_eq!(
            reference.list,
            other.list,
            "case lists differ between replicas {} and {}",
            stores[0].replica(),
            store.replica()
        );
        for (x, y) in reference.cases.iter().zip(&other.cases) {
            assert_eq!(
                x,
                y,
                "case {} differs between replicas {} and {}",
                x.case.id,
                stores[0].replica(),
                store.replica()
            );
        }
        assert_eq!(reference, other);
        store.check_integrity().unwrap();
    }
    // The healed state also equals what a newcomer gets from anyone.
    let mut newcomer = fresh(dir.path(), 7_006, &world);
    deliver_all(&stores[stores.len() - 1], &mut newcomer, SMALL);
    assert_eq!(state(&newcomer), reference);
}

proptest! {
    #![proptest_config(proptest_config(64))]

    #[test]
    fn replicas_converge(scenario in scenario()) {
        check_scenario(&scenario);
    }
}

// ---------------------------------------------------------------------------
// Deterministic tests

fn exchange_all(stores: &mut [Store]) {
    heal(stores);
}

/// A tablet whose clock runs 10 days ahead wins concurrent writes, but only
/// until someone who has seen its write edits the field again.
#[test]
fn causality_beats_a_clock_ten_days_ahead() {
    let dir = scratch();
    let world = World::new();
    let mut stores = vec![
        open(dir.path(), "a.db", 1, &world, 0),
        open(dir.path(), "f.db", 2, &world, 10 * DAY),
        open(dir.path(), "server.db", 3, &world, 0),
    ];
    let id = stores[0].write(|w| w.create_case(&new_case(0))).unwrap();
    exchange_all(&mut stores);

    world.advance(1_000);
    stores[1]
        .write(|w| w.update(id, &[(Field::Locality, Value::text("Louga"))]))
        .unwrap();
    stores[0]
        .write(|w| w.update(id, &[(Field::Locality, Value::text("Matam"))]))
        .unwrap();
    world.advance(1_000);
    exchange_all(&mut stores);
    for store in &stores {
        let detail = store.get_case(id).unwrap();
        assert_eq!(detail.case.locality, "Louga", "the future stamp is shown");
        assert!(detail.case.needs_attention);
        assert_eq!(detail.conflicts.len(), 1);
        let conflict = &detail.conflicts[0];
        assert_eq!(conflict.field, Field::Locality);
        let values: Vec<_> = conflict.values.iter().map(|v| v.value.clone()).collect();
        assert_eq!(values, [Value::text("Louga"), Value::text("Matam")]);
        assert_eq!(conflict.values[0].author, 2);
    }

    // A has seen F's write: its next stamp stays near its own clock...
    world.advance(1_000);
    let a_now = world.now();
    stores[0]
        .write(|w| w.update(id, &[(Field::Locality, Value::text("Podor"))]))
        .unwrap();
    let last = stores[0].ops_of(1, 0).unwrap().pop().unwrap();
    let f_stamp = stores[0].ops_of(2, 0).unwrap().pop().unwrap().stamp;
    assert!(last.stamp.millis() >= a_now);
    assert!(
        last.stamp.millis() <= a_now + 60_000,
        "A's stamp {} ms ahead of its clock",
        last.stamp.millis() - a_now
    );
    assert!(last.stamp < f_stamp);

    // ...and its write supersedes F's everywhere, older stamp or not.
    exchange_all(&mut stores);
    for store in &stores {
        let detail = store.get_case(id).unwrap();
        assert_eq!(detail.case.locality, "Podor");
        assert!(detail.conflicts.is_empty());
        assert!(!detail.case.needs_attention);
    }
    assert_eq!(state(&stores[0]), state(&stores[1]));
    assert_eq!(state(&stores[0]), state(&stores[2]));
}

/// A later batch of one author's operations, sent before the earlier one,
/// is refused whole; the earlier one and then the later one then apply.
#[test]
fn out_of_order_batches_are_refused_cleanly() {
    let dir = scratch();
    let world = World::new();
    let mut a = open(dir.path(), "a.db", 1, &world, 0);
    let mut b = open(dir.path(), "b.db", 2, &world, 0);
    b.write(|w| w.create_case(&new_case(9))).unwrap();
    for i in 0..4 {
        a.write(|w| {
            let id = w.create_case(&new_case(i))?;
            w.add_event(id, EventKind::Visit, "first visit")?;
            Ok(())
        })
        .unwrap();
    }
    let limit = BatchLimit {
        max_ops: 3,
        max_bytes: usize::MAX,
    };
    let first = a.changes_since(b.version_vector(), limit).unwrap();
    assert!(first.more);
    let mut vv: VersionVector = b.version_vector().clone();
    vv.dots.insert(1, first.ops.last().unwrap().dot.counter);
    let second = a.changes_since(&vv, limit).unwrap();
    assert_eq!(second.ops[0].dot, Dot::new(1, 4));

    let before = state(&b);
    let err = b.apply(&second).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Batch(BatchError::Gap {
                replica: 1,
                have: 0,
                got: 4
            })
        ),
        "{err}"
    );
    assert_eq!(state(&b), before);
    // The same through the wire format.
    let err = b
        .apply_encoded(&guichet_core::wire::encode(&second))
        .unwrap_err();
    assert!(matches!(err, Error::Batch(BatchError::Gap { .. })));
    assert_eq!(state(&b), before);

    // A batch whose last operation depends on something unknown is refused
    // whole too, although its first operations are fine.
    let mut partial = first.clone();
    let mut orphan = second.ops[0].clone();
    orphan.dot = Dot::new(1, 4);
    orphan.case = CaseId::from_dot(Dot::new(3, 1)).unwrap();
    partial.ops.push(orphan);
    let err = b.apply(&partial).unwrap_err();
    assert!(
        matches!(err, Error::Batch(BatchError::MissingDependency { .. })),
        "{err}"
    );
    assert_eq!(state(&b), before);

    assert_eq!(b.apply(&first).unwrap().applied, 3);
    assert_eq!(b.apply(&second).unwrap().applied, second.ops.len());
    deliver_all(&a, &mut b, BatchLimit::default());
    deliver_all(&b, &mut a, BatchLimit::default());
    assert_eq!(state(&a), state(&b));
}

/// Two replicas edit two fields of the same case concurrently, naming them
/// in opposite orders. Both fields end up in conflict on both replicas, and
/// the replicas must show the conflicts identically.
/// (Once, each replica listed them in the order it first saw them.)
#[test]
fn conflicts_are_listed_in_the_same_order_everywhere() {
    let dir = scratch();
    let world = World::new();
    let mut stores = vec![
        open(dir.path(), "a.db", 1, &world, 0),
        open(dir.path(), "b.db", 2, &world, 0),
    ];
    let id = stores[0].write(|w| w.create_case(&new_case(0))).unwrap();
    exchange_all(&mut stores);
    world.advance(10);
    stores[0]
        .write(|w| {
            w.update(id, &[(Field::Locality, Value::text("Louga"))])?;
            w.update(id, &[(Field::Unit, Value::text("unit-x"))])
        })
        .unwrap();
    stores[1]
        .write(|w| {
            w.update(id, &[(Field::Unit, Value::text("unit-y"))])?;
            w.update(id, &[(Field::Locality, Value::text("Matam"))])
        })
        .unwrap();
    exchange_all(&mut stores);
    let a = stores[0].get_case(id).unwrap();
    let b = stores[1].get_case(id).unwrap();
    assert_eq!(a.conflicts.len(), 2);
    assert_eq!(a, b);
}

/// A faulty peer's forbidden status transitions are shown as anomalies;
/// every replica must list them identically, whatever the arrival order.
/// (Once, they were listed in arrival order.)
#[test]
fn status_anomalies_are_listed_in_the_same_order_everywhere() {
    let dir = scratch();
    let world = World::new();
    let mut x = open(dir.path(), "x.db", 1, &world, 0);
    let mut y = open(dir.path(), "y.db", 2, &world, 0);
    let id = x.write(|w| w.create_case(&new_case(0))).unwrap();
    deliver_all(&x, &mut y, BatchLimit::default());
    let creation = id.dot();
    assert_eq!(
        x.get_case(id).unwrap().case.status,
        guichet_core::Status::Received
    );
    // Received -> Closed skips the workflow: two faulty peers, 8 and 9.
    let forbidden = |actor: ReplicaId, millis: u64| {
        Batch::new(
            vec![Op {
                dot: Dot::new(actor, 1),
                stamp: Stamp::new(millis, 0),
                case: id,
                body: OpBody::Update(vec![FieldWrite {
                    field: Field::Status,
                    value: Value::Int(Status::Closed.code() as i64),
                    supersedes: vec![creation],
                }]),
            }],
            false,
        )
    };
    let (p8, p9) = (forbidden(8, T0 + 5), forbidden(9, T0 + 7));
    x.apply(&p8).unwrap();
    x.apply(&p9).unwrap();
    y.apply(&p9).unwrap();
    y.apply(&p8).unwrap();
    let (dx, dy) = (x.get_case(id).unwrap(), y.get_case(id).unwrap());
    assert_eq!(dx.status_anomalies.len(), 2);
    assert!(dx.case.needs_attention);
    assert_eq!(dx, dy);
}

/// `update` given the same field twice must refuse, not make an operation
/// peers would refuse (which would block this replica's sync for good).
#[test]
fn a_field_written_twice_in_one_update_is_refused() {
    let dir = scratch();
    let world = World::new();
    let mut a = open(dir.path(), "a.db", 1, &world, 0);
    let mut b = open(dir.path(), "b.db", 2, &world, 0);
    let id = a.write(|w| w.create_case(&new_case(0))).unwrap();
    let twice = [
        (Field::Locality, Value::text("Louga")),
        (Field::Locality, Value::text("Matam")),
    ];
    assert!(a.write(|w| w.update(id, &twice)).is_err());
    a.write(|w| w.update(id, &twice[..1])).unwrap();
    deliver_all(&a, &mut b, BatchLimit::default());
    assert_eq!(b.get_case(id).unwrap(), a.get_case(id).unwrap());
    assert!(a.get_case(id).unwrap().conflicts.is_empty());
}
