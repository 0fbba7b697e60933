//! Snapshots of the lease core's behaviour, stored in `snapshots/`: the full
//! transition table and every refusal message, so that any change in
//! behaviour or wording shows up in review.

use std::fmt::Write as _;

use grite_locks::lease::{
    ActorId, Change, Context, Decision, Grace, LockRecord, Previous, Refusal, Request, Resource,
    Takeover, TransitionKind, Ttl, Unchanged, UnixMillis, decide,
};

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}

const EXPIRY: u64 = 1_705_316_400_000; // 2024-01-15 11:00:00 UTC
const GRACE_MS: u64 = 5_000;

fn actor(name: &str) -> ActorId {
    let c = match name {
        "A" => "a",
        _ => "b",
    };
    ActorId::parse(&c.repeat(32)).expect("valid actor")
}

fn name_of(owner: &str) -> &'static str {
    if owner.starts_with('a') { "A" } else { "B" }
}

fn record(owner: &str, released: bool) -> LockRecord {
    LockRecord {
        owner: actor(owner).to_string(),
        nonce: "old-lease".into(),
        expires_unix_ms: EXPIRY,
        resource: "issue:42".into(),
        fencing_token: 7,
        acquired_unix_ms: Some(EXPIRY - 1_800_000),
        ttl_ms: Some(1_800_000),
        released,
    }
}

fn relative(ms: u64) -> String {
    let delta = i128::from(ms) - i128::from(EXPIRY);
    match delta {
        0 => "expiry".to_owned(),
        d if d > 0 => format!("expiry+{d}ms"),
        d => format!("expiry{d}ms"),
    }
}

fn describe_record(r: &LockRecord) -> String {
    format!(
        "{}{} token {} nonce {} expires {}",
        if r.released { "released by " } else { "" },
        name_of(&r.owner),
        r.fencing_token,
        r.nonce,
        relative(r.expires_unix_ms)
    )
}

fn describe(decision: &Decision) -> String {
    match decision {
        Decision::Apply(t) => {
            let expect = match &t.previous {
                Previous::Absent => "no ref".to_owned(),
                Previous::Record(r) => describe_record(r),
            };
            let change = match &t.change {
                Change::Put(r) => format!("put [{}]", describe_record(r)),
                Change::Remove => "remove".to_owned(),
            };
            let kind = match &t.kind {
                TransitionKind::Steal { from } => format!("Steal from {}", name_of(from)),
                other => format!("{other:?}"),
            };
            format!("{kind}: {change}, if ref holds [{expect}]")
        }
        Decision::Unchanged(Unchanged::AlreadyHeld(r)) => {
            format!("unchanged, already held [{}]", describe_record(r))
        }
        Decision::Unchanged(Unchanged::Kept(r)) => {
            format!("unchanged, kept [{}]", describe_record(r))
        }
        Decision::Unchanged(u) => format!("unchanged, {u:?}"),
        Decision::Refused(Refusal::Held {
            holder,
            takeable_at,
        }) => format!(
            "refused, held [{}] until {}",
            describe_record(holder),
            relative(takeable_at.0)
        ),
        Decision::Refused(Refusal::NotOwner { holder }) => {
            format!("refused, not owner [{}]", describe_record(holder))
        }
        Decision::Refused(Refusal::Blocked { by }) => {
            let by: Vec<String> = by
                .iter()
                .map(|r| format!("{} by {}", r.resource, name_of(&r.owner)))
                .collect();
            format!("refused, blocked by {}", by.join(", "))
        }
        Decision::Refused(r) => format!("refused, {r:?}"),
    }
}

fn request(kind: &str, who: &str) -> Request {
    let ttl = Ttl::parse("30m").expect("valid ttl");
    match kind {
        "acquire" => Request::Acquire {
            actor: actor(who),
            ttl,
            nonce: "new-lease".into(),
        },
        "renew" => Request::Renew {
            actor: actor(who),
            ttl,
        },
        "release" => Request::Release { actor: actor(who) },
        _ => Request::Gc,
    }
}

#[test]
fn transition_table() {
    let resource = Resource::parse("issue:42").expect("valid");
    let states: [(&str, Option<LockRecord>); 4] = [
        ("no ref", None),
        ("released by A", Some(record("A", true))),
        ("lease of A", Some(record("A", false))),
        ("lease of B", Some(record("B", false))),
    ];
    let times = [
        EXPIRY - 1,
        EXPIRY,
        EXPIRY + GRACE_MS - 1,
        EXPIRY + GRACE_MS,
        EXPIRY + GRACE_MS + 1,
    ];
    let mut table = format!(
        "grace {GRACE_MS}ms; token floor 1; TTL 30m; every lease record expires at `expiry`\n"
    );
    for (state, current) in &states {
        writeln!(table, "\n## {state}").expect("write to string");
        for now in times {
            for kind in ["acquire", "renew", "release", "gc"] {
                for who in ["A", "B"] {
                    if kind == "gc" && who == "B" {
                        continue;
                    }
                    let ctx = Context {
                        resource: &resource,
                        now: UnixMillis(now),
                        takeover: Takeover::by_clock(Grace(GRACE_MS)),
                        token_floor: 1,
                        others: &[],
                    };
                    let by = if kind == "gc" {
                        String::new()
                    } else {
                        format!(" by {who}")
                    };
                    let decision = decide(current.as_ref(), &request(kind, who), &ctx);
                    writeln!(
                        table,
                        "at {:<16} {kind:<7}{by:<5} -> {}",
                        relative(now),
                        describe(&decision)
                    )
                    .expect("write to string");
                }
            }
        }
    }
    settings().bind(|| insta::assert_snapshot!("transition_table", table));
}

#[test]
fn cross_resource_conflicts() {
    let wanted = Resource::parse("path:src/a.rs").expect("valid");
    let mut out = String::new();
    for other in [
        "path:src",
        "path:src/a.rs/x",
        "path:src/b.rs",
        "path:srcx",
        "issue:1",
        "repo:deploy",
    ] {
        for (label, expires) in [
            ("live", EXPIRY + 1),
            ("in grace", EXPIRY - 1),
            ("grace over", EXPIRY - GRACE_MS),
        ] {
            let others = [LockRecord {
                resource: other.into(),
                expires_unix_ms: expires,
                ..record("B", false)
            }];
            let ctx = Context {
                resource: &wanted,
                now: UnixMillis(EXPIRY),
                takeover: Takeover::by_clock(Grace(GRACE_MS)),
                token_floor: 1,
                others: &others,
            };
            let decision = decide(None, &request("acquire", "A"), &ctx);
            writeln!(
                out,
                "{other:<16} {label:<10} held by B: acquire {wanted} by A -> {}",
                describe(&decision)
            )
            .expect("write to string");
        }
    }
    settings().bind(|| insta::assert_snapshot!("cross_resource_conflicts", out));
}

#[test]
fn refusal_messages_for_bad_resources_and_ttls() {
    let mut out = String::from("# resources\n");
    let long = format!("issue:{}", "x".repeat(600));
    for input in [
        "",
        "8057324b",
        "bug:1",
        "issue:",
        "path:",
        "issue: 1",
        "issue:a\tb",
        "issue:a\u{7f}",
        "path:/etc/passwd",
        "path:../x",
        "path:src/../../x",
        "path:.",
        "path:./",
        &long,
    ] {
        let shown: String = input.chars().take(40).collect();
        let answer = match Resource::parse(input) {
            Ok(r) => format!("ok {r}"),
            Err(e) => e.to_string(),
        };
        writeln!(out, "{shown:?}\n  {answer}").expect("write to string");
    }
    out.push_str("\n# TTLs\n");
    for input in [
        "",
        "0",
        "0s",
        "-5",
        "-5m",
        "30x",
        "99999999999h",
        "1d",
        "500ms",
        "168h1s",
        "1h1h",
        " 5m",
    ] {
        let answer = match Ttl::parse(input) {
            Ok(t) => format!("ok {t}"),
            Err(e) => e.to_string(),
        };
        writeln!(out, "{input:?}\n  {answer}").expect("write to string");
    }
    out.push_str("\n# actor ids\n");
    for input in ["", "E5F6A7B8C9D0E1F2A3B4C5D6E7F8A9B0", "alice"] {
        let answer = ActorId::parse(input).map_or_else(|e| e.to_string(), |a| format!("ok {a}"));
        writeln!(out, "{input:?}\n  {answer}").expect("write to string");
    }
    settings().bind(|| insta::assert_snapshot!("refusal_messages", out));
}
