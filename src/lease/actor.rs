//! Actor ids: who holds a lock.

use std::fmt;

/// An actor id: 16 bytes written as 32 lowercase hex characters
/// (`docs/PROTOCOL.md` §1). Records written by other tools may carry any owner text;
/// this type is for the actor making a request, which we validate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorId(String);

/// Length of an actor id in hex characters.
pub const ACTOR_ID_LEN: usize = 32;

/// Why an actor id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not an actor id; an actor id is 32 lowercase hex characters, such as `e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0`"
)]
pub struct ActorIdError {
    /// The refused text, shortened if it was long.
    pub input: String,
}

impl ActorId {
    /// Validates an actor id as typed or configured.
    pub fn parse(input: &str) -> Result<ActorId, ActorIdError> {
        let valid = input.len() == ACTOR_ID_LEN
            && input
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid {
            Ok(ActorId(input.to_owned()))
        } else {
            Err(ActorIdError {
                input: super::echo(input),
            })
        }
    }

    /// The id made of these 16 bytes (from a random source at the edge).
    pub fn from_bytes(bytes: [u8; 16]) -> ActorId {
        ActorId(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The 32 hex characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 8 characters, as status shows owners.
    pub fn short(&self) -> &str {
        &self.0[..8]
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ActorId {
    type Err = ActorIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActorId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_32_lowercase_hex() {
        assert!(ActorId::parse("e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0").is_ok());
        for bad in [
            "",
            "E5F6A7B8C9D0E1F2A3B4C5D6E7F8A9B0",
            "e5f6",
            "g5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0",
            "e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0a",
        ] {
            assert!(ActorId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn from_bytes_is_lowercase_hex() {
        let id = ActorId::from_bytes([0xab; 16]);
        assert_eq!(id.as_str(), "ab".repeat(16));
        assert_eq!(id.short(), "abababab");
    }
}
