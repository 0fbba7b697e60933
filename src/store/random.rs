//! Randomness for lease nonces and for the jitter of retries.

pub(super) fn random_nonce() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn random_u16() -> u16 {
    let mut bytes = [0u8; 2];
    fill_random(&mut bytes);
    u16::from_le_bytes(bytes)
}

/// The operating system's random source. Without one (a sandbox that
/// forbids it) nonces fall back to the process id and the time, which are
/// unique enough to tell leases apart, not to be secret.
fn fill_random(bytes: &mut [u8]) {
    if getrandom::fill(bytes).is_err() {
        let seed = std::process::id() as u128
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = (seed >> ((i % 16) * 8)) as u8;
        }
    }
}
