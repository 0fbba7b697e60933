//! The lock record: the `lock.json` blob of a lock commit.
//!
//! Four fields are shared with every grite tool and keep their meaning:
//! `owner`, `nonce`, `expires_unix_ms` and `resource`. The others are ours
//! and optional on reading, so a record written by another tool reads as a
//! lease with fencing token 0 that was never released. Unknown fields are
//! ignored, so newer tools can add more.

use serde::{Deserialize, Serialize};

use super::resource::{REF_HASH_LEN, ref_hash_of};
use super::time::UnixMillis;

/// Largest `lock.json` accepted. Real records are a few hundred bytes; the
/// bound keeps a hostile or broken blob from costing unbounded memory.
pub const MAX_RECORD_LEN: usize = 64 * 1024;

/// One lock record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// The actor holding (or who last held) the lock.
    pub owner: String,
    /// Identifies one lease: new on every acquire, kept on renew.
    pub nonce: String,
    /// The lease ends at this instant; it is live while `now` is before it.
    pub expires_unix_ms: u64,
    /// The resource as text; its SHA-256 names the ref the record lives under.
    pub resource: String,
    /// Strictly increases each time the lock changes hands; 0 in records of
    /// tools that do not write it.
    #[serde(default)]
    pub fencing_token: u64,
    /// When this lease began (kept across renews).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquired_unix_ms: Option<u64>,
    /// How long the lease was granted for by its last acquire or renew, so
    /// that an observer can time it on its own clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// A release is written as a record rather than a deleted ref, so the
    /// lock's history shows how the lease ended and the fencing token
    /// survives. Its `expires_unix_ms` is the release time, so tools that
    /// know only the four shared fields see an expired, takeable lock.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub released: bool,
}

/// Why a stored record could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error(
        "lock.json is {len} bytes, more than the {MAX_RECORD_LEN} bytes a lock record may have"
    )]
    /// Larger than [`MAX_RECORD_LEN`].
    TooLarge {
        /// Size in bytes.
        len: usize,
    },
    #[error("lock.json is not a valid lock record: {reason}")]
    /// Not JSON, or a shared field missing or of the wrong type.
    Malformed {
        /// What the JSON reader said.
        reason: String,
    },
    #[error(
        "the record is for `{resource}`, whose ref would end in {expected}, but it was found under a ref ending in {found}"
    )]
    /// The record's resource does not hash to the ref it was found under.
    WrongRef {
        /// The record's resource (shortened).
        resource: String,
        /// The ref hash of that resource.
        expected: String,
        /// The ref hash it was found under.
        found: String,
    },
}

impl LockRecord {
    /// Reads a record found under the lock ref ending in `ref_hash`, and
    /// checks that its resource belongs there: a record copied under the
    /// wrong ref would otherwise lock one resource while claiming another.
    pub fn from_json(bytes: &[u8], ref_hash: &str) -> Result<LockRecord, RecordError> {
        if bytes.len() > MAX_RECORD_LEN {
            return Err(RecordError::TooLarge { len: bytes.len() });
        }
        let record: LockRecord =
            serde_json::from_slice(bytes).map_err(|e| RecordError::Malformed {
                reason: e.to_string(),
            })?;
        let expected = ref_hash_of(&record.resource);
        if expected != ref_hash {
            return Err(RecordError::WrongRef {
                resource: record.resource.chars().take(80).collect(),
                expected,
                found: ref_hash.chars().take(REF_HASH_LEN * 2).collect(),
            });
        }
        Ok(record)
    }

    /// The bytes stored in `lock.json`: pretty-printed for people reading it
    /// with `git cat-file`, ending in a newline, and the same for the same
    /// record every time.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes =
            serde_json::to_vec_pretty(self).expect("a record of strings and integers serialises");
        bytes.push(b'\n');
        bytes
    }

    /// When the lease ends.
    pub fn expires(&self) -> UnixMillis {
        UnixMillis(self.expires_unix_ms)
    }

    /// How long the lease was granted for: `ttl_ms`, else (a record of an
    /// earlier version) from its start to its expiry, which a renew only
    /// lengthens; `None` when the record does not say.
    pub fn lease_length(&self) -> Option<u64> {
        self.ttl_ms.or_else(|| {
            self.acquired_unix_ms
                .and_then(|start| self.expires_unix_ms.checked_sub(start))
        })
    }

    /// When the lease was last granted (acquired or renewed), on its
    /// writer's clock, if the record says.
    pub fn written_at(&self) -> Option<UnixMillis> {
        match self.ttl_ms {
            Some(ttl) => self.expires_unix_ms.checked_sub(ttl).map(UnixMillis),
            None => self.acquired_unix_ms.map(UnixMillis),
        }
    }

    /// Held at `now`: not released and `expires_unix_ms > now`.
    pub fn is_live(&self, now: UnixMillis) -> bool {
        !self.released && self.expires() > now
    }

    /// Whether another actor may take this lock over, or gc remove it, at
    /// `now`: released, or expired for at least the grace period.
    pub fn is_takeable(&self, now: UnixMillis, grace: super::time::Grace) -> bool {
        self.released || now >= self.expires().saturating_add(grace.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::time::Grace;

    const ISSUE_HASH: &str = "a02e999268bbd49c"; // sha256("issue:8057324b")

    #[test]
    fn reads_the_four_field_record_of_other_tools() {
        let json = br#"{"owner": "e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0", "nonce": "n1",
            "expires_unix_ms": 1700003600000, "resource": "issue:8057324b", "note": "extra"}"#;
        let record = LockRecord::from_json(json, ISSUE_HASH).expect("valid record");
        assert_eq!(record.fencing_token, 0);
        assert_eq!(record.acquired_unix_ms, None);
        assert!(!record.released);
        assert_eq!(record.expires(), UnixMillis(1_700_003_600_000));
    }

    #[test]
    fn refuses_a_record_under_the_wrong_ref() {
        let json = br#"{"owner":"o","nonce":"n","expires_unix_ms":1,"resource":"issue:other"}"#;
        assert!(matches!(
            LockRecord::from_json(json, ISSUE_HASH),
            Err(RecordError::WrongRef { .. })
        ));
    }

    #[test]
    fn refuses_missing_shared_fields_and_wrong_types() {
        for json in [
            &br#"{"owner":"o","nonce":"n","resource":"issue:8057324b"}"#[..],
            br#"{"owner":"o","nonce":"n","expires_unix_ms":-1,"resource":"issue:8057324b"}"#,
            br#"{"owner":"o","nonce":"n","expires_unix_ms":"1","resource":"issue:8057324b"}"#,
            b"not json",
            b"",
        ] {
            assert!(
                matches!(
                    LockRecord::from_json(json, ISSUE_HASH),
                    Err(RecordError::Malformed { .. })
                ),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn writes_and_reads_back_the_same_record() {
        let record = LockRecord {
            owner: "e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0".into(),
            nonce: "n1".into(),
            expires_unix_ms: 10,
            resource: "issue:8057324b".into(),
            fencing_token: 7,
            acquired_unix_ms: Some(5),
            ttl_ms: Some(5),
            released: true,
        };
        assert_eq!(
            LockRecord::from_json(&record.to_json(), ISSUE_HASH),
            Ok(record)
        );
    }

    #[test]
    fn liveness_is_strict_and_takeover_waits_for_grace() {
        let record = LockRecord {
            owner: "o".into(),
            nonce: "n".into(),
            expires_unix_ms: 100,
            resource: "issue:8057324b".into(),
            fencing_token: 1,
            acquired_unix_ms: None,
            ttl_ms: None,
            released: false,
        };
        assert!(record.is_live(UnixMillis(99)));
        assert!(!record.is_live(UnixMillis(100)));
        assert!(!record.is_takeable(UnixMillis(104), Grace(5)));
        assert!(record.is_takeable(UnixMillis(105), Grace(5)));
    }
}
