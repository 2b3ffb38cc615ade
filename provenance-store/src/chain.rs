//! The hash chain over the event log: each stored event's link commits to the
//! previous link, to its own position, and to the sha-256 of its raw bytes.
//!
//! `link(n) = sha256("prov-chain-1\n" + n + "\n" + link(n-1) + "\n" + sha256(raw(n)))`,
//! in lowercase hex, with `link(0)` = 64 zeros. Editing an event's bytes, deleting
//! an event or reordering two changes the links from that position on, so
//! [`crate::Store::verify_chain`] finds the first position that no longer verifies.
//!
//! What it does not protect against: someone who can write the database can
//! rewrite the whole chain from any point to its end, and can cut the tail (the
//! remaining chain still verifies). Both are caught by comparing the head link
//! with one kept outside the store: [`crate::Store::head`] prints it as
//! `<seq>:<hex>`, for an auditor to record (in a ticket, a signed email, a
//! second system) and check later.

use sha2::{Digest, Sha256};

/// The link before the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The link of the event at `seq` with bytes `raw`, after `previous`.
pub fn link(previous: &str, seq: u64, raw: &[u8]) -> String {
    link_with_content(previous, seq, &provenance_core::hex(&Sha256::digest(raw)))
}

/// The same, given the hex sha-256 of the event's bytes (computed ahead).
pub fn link_with_content(previous: &str, seq: u64, content_hex: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"prov-chain-1\n");
    h.update(seq.to_string().as_bytes());
    h.update(b"\n");
    h.update(previous.as_bytes());
    h.update(b"\n");
    h.update(content_hex.as_bytes());
    provenance_core::hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_is_the_documented_formula() {
        // printf 'prov-chain-1\n1\n%s\n%s' "$GENESIS" "$(printf '{}' | sha256sum | cut -c1-64)" | sha256sum
        let expected = {
            let inner = provenance_core::hex(&Sha256::digest(b"{}"));
            let text = format!("prov-chain-1\n1\n{GENESIS}\n{inner}");
            provenance_core::hex(&Sha256::digest(text.as_bytes()))
        };
        assert_eq!(link(GENESIS, 1, b"{}"), expected);
        assert_ne!(
            link(GENESIS, 2, b"{}"),
            expected,
            "the position is committed to"
        );
        assert_ne!(
            link(&"1".repeat(64), 1, b"{}"),
            expected,
            "the previous link is committed to"
        );
    }
}
