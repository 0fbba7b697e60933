//! Model-based test of the lease state machine: random sequences of
//! acquire, renew, release, gc and clock ticks by several actors on
//! overlapping resources, checked after every step against a small
//! reference model written from `docs/PROTOCOL.md` §2 and §5, and against the
//! invariants the product promises.

use std::collections::BTreeMap;

use grite_locks::lease::{
    ActorId, Change, Context, Decision, Grace, LockRecord, Previous, Refusal, Request, Resource,
    Takeover, Transition, TransitionKind, Ttl, Unchanged, UnixMillis, decide,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const GRACE_MS: u64 = 500;
const START_MS: u64 = 1_700_000_000_000;

const RESOURCES: [&str; 7] = [
    "issue:1",
    "issue:2",
    "path:src",
    "path:src/a.rs",
    "path:srcx",
    "path:docs/x",
    "repo:deploy",
];

/// `docs/PROTOCOL.md` §2, written out by hand for the resources above so that the
/// model does not share the implementation's conflict rules.
fn model_conflicts(a: usize, b: usize) -> bool {
    const TABLE: [[u8; 7]; 7] = [
        // i1 i2 src a.rs srcx docs repo
        [1, 0, 0, 0, 0, 0, 1], // issue:1
        [0, 1, 0, 0, 0, 0, 1], // issue:2
        [0, 0, 1, 1, 0, 0, 1], // path:src
        [0, 0, 1, 1, 0, 0, 1], // path:src/a.rs
        [0, 0, 0, 0, 1, 0, 1], // path:srcx
        [0, 0, 0, 0, 0, 1, 1], // path:docs/x
        [1, 1, 1, 1, 1, 1, 1], // repo:deploy
    ];
    TABLE[a][b] == 1
}

#[derive(Debug, Clone)]
enum Op {
    Acquire {
        actor: usize,
        res: usize,
        ttl_s: u64,
    },
    Renew {
        actor: usize,
        res: usize,
        ttl_s: u64,
    },
    Release {
        actor: usize,
        res: usize,
    },
    Gc,
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let actor = 0..3usize;
    let res = 0..RESOURCES.len();
    let ttl_s = prop_oneof![Just(1u64), Just(2), Just(5)];
    // Ticks land exactly on expiries (multiples of 1 s) and on the end of
    // grace periods (multiples of 500 ms), and just beside them.
    let tick = prop_oneof![
        Just(1u64),
        Just(499),
        Just(500),
        Just(501),
        Just(999),
        Just(1000),
        Just(2000),
        0..6000u64
    ];
    prop_oneof![
        4 => (actor.clone(), res.clone(), ttl_s.clone()).prop_map(|(actor, res, ttl_s)| Op::Acquire { actor, res, ttl_s }),
        2 => (actor.clone(), res.clone(), ttl_s).prop_map(|(actor, res, ttl_s)| Op::Renew { actor, res, ttl_s }),
        2 => (actor, res).prop_map(|(actor, res)| Op::Release { actor, res }),
        1 => Just(Op::Gc),
        4 => tick.prop_map(Op::Tick),
    ]
}

fn actor_id(i: usize) -> ActorId {
    ActorId::parse(&["a", "b", "c"][i].repeat(32)).expect("valid actor")
}

/// What the model expects of one request on one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    NewLease,
    Renewed,
    Released,
    Collected,
    AlreadyHeld,
    NothingToRelease,
    Kept,
    NothingToCollect,
    RefusedHeld,
    RefusedNotHeld,
    RefusedNotOwner,
    RefusedBlocked,
}

fn observed(decision: &Decision) -> Expect {
    match decision {
        Decision::Apply(Transition { kind, .. }) => match kind {
            TransitionKind::Acquire | TransitionKind::Reacquire | TransitionKind::Steal { .. } => {
                Expect::NewLease
            }
            TransitionKind::Renew => Expect::Renewed,
            TransitionKind::Release => Expect::Released,
            TransitionKind::Collect => Expect::Collected,
        },
        Decision::Unchanged(Unchanged::AlreadyHeld(_)) => Expect::AlreadyHeld,
        Decision::Unchanged(Unchanged::NothingToRelease) => Expect::NothingToRelease,
        Decision::Unchanged(Unchanged::Kept(_)) => Expect::Kept,
        Decision::Unchanged(Unchanged::NothingToCollect) => Expect::NothingToCollect,
        Decision::Refused(Refusal::Held { .. }) => Expect::RefusedHeld,
        Decision::Refused(Refusal::NotHeld) => Expect::RefusedNotHeld,
        Decision::Refused(Refusal::NotOwner { .. }) => Expect::RefusedNotOwner,
        Decision::Refused(Refusal::Blocked { .. }) => Expect::RefusedBlocked,
        Decision::Refused(Refusal::OutOfRange) => panic!("no value in this test is out of range"),
    }
}

/// The reference model: per resource, who holds it until when, and whether
/// it was released. No fencing logic beyond "one more than ever before".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ModelLock {
    owner: usize,
    expires: u64,
    released: bool,
}

struct Model {
    locks: BTreeMap<usize, ModelLock>,
}

impl Model {
    /// Another actor's lock on a conflicting other resource that has not
    /// run out its expiry plus grace.
    fn blocked(&self, actor: usize, res: usize, now: u64) -> bool {
        self.locks.iter().any(|(&other, l)| {
            other != res
                && l.owner != actor
                && !l.released
                && now < l.expires + GRACE_MS
                && model_conflicts(res, other)
        })
    }

    fn expect(&self, op: &Op, res: usize, now: u64) -> Expect {
        let lock = self.locks.get(&res).copied().filter(|l| !l.released);
        match *op {
            Op::Acquire { actor, .. } => match lock {
                Some(l) if l.owner == actor && now < l.expires => Expect::AlreadyHeld,
                Some(l) if l.owner != actor && now < l.expires + GRACE_MS => Expect::RefusedHeld,
                _ if self.blocked(actor, res, now) => Expect::RefusedBlocked,
                _ => Expect::NewLease,
            },
            Op::Renew { actor, .. } => match lock {
                None => Expect::RefusedNotHeld,
                Some(l) if l.owner != actor => Expect::RefusedNotOwner,
                Some(l) if now >= l.expires && self.blocked(actor, res, now) => {
                    Expect::RefusedBlocked
                }
                Some(_) => Expect::Renewed,
            },
            Op::Release { actor, .. } => match lock {
                None => Expect::NothingToRelease,
                Some(l) if l.owner != actor => Expect::RefusedNotOwner,
                Some(_) => Expect::Released,
            },
            Op::Gc => match self.locks.get(&res) {
                None => Expect::NothingToCollect,
                Some(l) if l.released || now >= l.expires + GRACE_MS => Expect::Collected,
                Some(_) => Expect::Kept,
            },
            Op::Tick(_) => unreachable!("ticks are not requests"),
        }
    }

    fn apply(&mut self, op: &Op, res: usize, now: u64, outcome: Expect) {
        match (op, outcome) {
            (Op::Acquire { actor, ttl_s, .. }, Expect::NewLease)
            | (Op::Renew { actor, ttl_s, .. }, Expect::Renewed) => {
                let lock = ModelLock {
                    owner: *actor,
                    expires: now + ttl_s * 1000,
                    released: false,
                };
                self.locks.insert(res, lock);
            }
            (Op::Release { .. }, Expect::Released) => {
                if let Some(l) = self.locks.get_mut(&res) {
                    l.released = true;
                    l.expires = now;
                }
            }
            (Op::Gc, Expect::Collected) => {
                self.locks.remove(&res);
            }
            _ => {}
        }
    }
}

/// The system under test: a map of refs, written only through the
/// compare-and-swap the decision names, and the repository-wide token
/// counter a store keeps.
struct Store {
    refs: BTreeMap<usize, LockRecord>,
    highest_token: u64,
}

impl Store {
    fn write(&mut self, res: usize, transition: &Transition) {
        let current = self.refs.get(&res);
        match (&transition.previous, current) {
            (Previous::Absent, None) => {}
            (Previous::Record(expected), Some(actual)) if expected == actual => {}
            (expected, actual) => panic!("stale expectation {expected:?}, ref holds {actual:?}"),
        }
        match &transition.change {
            Change::Put(record) => {
                self.highest_token = self.highest_token.max(record.fencing_token);
                self.refs.insert(res, record.clone());
            }
            Change::Remove => {
                self.refs.remove(&res);
            }
        }
    }
}

struct Run {
    model: Model,
    store: Store,
    now: u64,
    nonces: u64,
    /// Highest fencing token ever seen per resource.
    tokens: BTreeMap<usize, u64>,
    grace: Grace,
    resources: Vec<Resource>,
}

impl Run {
    fn new() -> Run {
        Run {
            model: Model {
                locks: BTreeMap::new(),
            },
            store: Store {
                refs: BTreeMap::new(),
                highest_token: 0,
            },
            now: START_MS,
            nonces: 0,
            tokens: BTreeMap::new(),
            grace: Grace(GRACE_MS),
            resources: RESOURCES
                .iter()
                .map(|r| Resource::parse(r).expect("valid resource"))
                .collect(),
        }
    }

    fn request(&mut self, op: &Op, res: usize) {
        let now = UnixMillis(self.now);
        let request = match *op {
            Op::Acquire { actor, ttl_s, .. } => {
                self.nonces += 1;
                Request::Acquire {
                    actor: actor_id(actor),
                    ttl: Ttl::parse(&format!("{ttl_s}s")).expect("valid ttl"),
                    nonce: format!("n{}", self.nonces),
                }
            }
            Op::Renew { actor, ttl_s, .. } => Request::Renew {
                actor: actor_id(actor),
                ttl: Ttl::parse(&format!("{ttl_s}s")).expect("valid ttl"),
            },
            Op::Release { actor, .. } => Request::Release {
                actor: actor_id(actor),
            },
            Op::Gc => Request::Gc,
            Op::Tick(_) => unreachable!("ticks are not requests"),
        };
        let others: Vec<LockRecord> = self
            .store
            .refs
            .iter()
            .filter(|(r, _)| **r != res)
            .map(|(_, rec)| rec.clone())
            .collect();
        let ctx = Context {
            resource: &self.resources[res],
            now,
            takeover: Takeover::by_clock(self.grace),
            token_floor: self.store.highest_token + 1,
            others: &others,
        };
        let before = self.store.refs.clone();
        let current = self.store.refs.get(&res).cloned();
        let decision = decide(current.as_ref(), &request, &ctx);
        // A decision that makes no lease live depends on the lock's own
        // record alone, which a read of its own lock is decided on first
        // (docs/PROTOCOL.md §7): without the other records and the token
        // floor, it is the same decision, or one that says it needs them.
        let alone = decide(
            current.as_ref(),
            &request,
            &Context {
                others: &[],
                token_floor: 1,
                ..ctx
            },
        );
        if !matches!(&alone, Decision::Apply(t) if t.depends_on_others) {
            assert_eq!(alone, decision, "{op:?}: decided differently alone");
        }

        let expected = self.model.expect(op, res, self.now);
        assert_eq!(
            observed(&decision),
            expected,
            "{op:?} on {} at +{}ms, ref held {current:?}",
            RESOURCES[res],
            self.now - START_MS
        );

        match &decision {
            Decision::Apply(transition) => {
                self.check_transition(op, res, current.as_ref(), transition);
                self.store.write(res, transition);
            }
            Decision::Unchanged(_) | Decision::Refused(_) => {}
        }
        if !matches!(decision, Decision::Apply(_)) {
            assert_eq!(self.store.refs, before, "a refusal or no-op changed state");
        }
        self.model.apply(op, res, self.now, expected);
        self.check_store_matches_model();
        self.check_no_live_conflicts();
    }

    fn check_transition(
        &mut self,
        op: &Op,
        res: usize,
        current: Option<&LockRecord>,
        t: &Transition,
    ) {
        let requester = match op {
            Op::Acquire { actor, .. } | Op::Renew { actor, .. } | Op::Release { actor, .. } => {
                Some(actor_id(*actor).to_string())
            }
            _ => None,
        };
        if matches!(t.kind, TransitionKind::Renew | TransitionKind::Release) {
            let holder = current.map(|c| c.owner.clone());
            assert_eq!(
                holder, requester,
                "renew/release touched another actor's lock"
            );
        }
        if let (Some(cur), Some(me)) = (current, &requester)
            && &cur.owner != me
            && !cur.released
            && matches!(t.change, Change::Put(_))
        {
            assert!(
                self.now >= cur.expires_unix_ms + GRACE_MS,
                "stole a lock at +{}ms that expires at +{}ms with grace {GRACE_MS}",
                self.now - START_MS,
                cur.expires_unix_ms - START_MS
            );
        }
        if let Change::Put(new) = &t.change {
            let seen = self.tokens.entry(res).or_insert(0);
            match t.kind {
                TransitionKind::Renew | TransitionKind::Release => {
                    assert_eq!(
                        Some(new.fencing_token),
                        current.map(|c| c.fencing_token),
                        "renew or release changed the token"
                    );
                    assert_eq!(Some(&new.nonce), current.map(|c| &c.nonce));
                }
                _ => {
                    assert!(
                        new.fencing_token > *seen,
                        "token {} after {} on {}",
                        new.fencing_token,
                        *seen,
                        RESOURCES[res]
                    );
                    *seen = new.fencing_token;
                }
            }
        }
    }

    fn check_store_matches_model(&self) {
        let store: BTreeMap<usize, ModelLock> = self
            .store
            .refs
            .iter()
            .map(|(res, rec)| {
                assert_eq!(rec.resource, RESOURCES[*res]);
                let owner = ["a", "b", "c"]
                    .iter()
                    .position(|c| rec.owner == c.repeat(32))
                    .expect("known owner");
                (
                    *res,
                    ModelLock {
                        owner,
                        expires: rec.expires_unix_ms,
                        released: rec.released,
                    },
                )
            })
            .collect();
        assert_eq!(store, self.model.locks);
    }

    fn check_no_live_conflicts(&self) {
        let now = UnixMillis(self.now);
        for (a, ra) in &self.store.refs {
            for (b, rb) in &self.store.refs {
                if a < b && ra.owner != rb.owner && ra.is_live(now) && rb.is_live(now) {
                    assert!(
                        !model_conflicts(*a, *b),
                        "live conflicting locks: {ra:?} and {rb:?}"
                    );
                }
            }
        }
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Tick(ms) => self.now += ms,
            Op::Acquire { res, .. } | Op::Renew { res, .. } | Op::Release { res, .. } => {
                self.request(op, res)
            }
            Op::Gc => {
                for res in 0..RESOURCES.len() {
                    self.request(op, res);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/lease_model.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_histories_follow_the_spec_and_keep_every_invariant(ops in prop::collection::vec(op(), 1..120)) {
        let mut run = Run::new();
        for op in &ops {
            run.step(op);
        }
    }
}
