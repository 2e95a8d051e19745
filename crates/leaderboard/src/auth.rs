//! HMAC-SHA256 request signing: the job testers sign each post_stats body with SECRET or
//! one of EXTRA_SECRETS, so a tester's key can be rotated or revoked on its own. Each key
//! has a public identifier, stored with every row it lets in, so that the rows of a key
//! that leaked can be found and removed.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The `Authorization` value for `body`: lower-case hex HMAC-SHA256 under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The label a key signs to make its identifier; no body is ever this (it is not JSON).
const KEY_ID_LABEL: &[u8] = b"livepeer-leaderboard key id v1";

/// The identifier of `key`: the first 6 bytes (12 hex digits) of the HMAC-SHA256 of a fixed
/// label under the key. It depends on that key alone, so it stays the same when other keys
/// are added or removed, and like any signature it reveals nothing of the key.
pub fn key_id(key: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(KEY_ID_LABEL);
    hex::encode(&mac.finalize().into_bytes()[..6])
}

/// Bytes of a [`body_digest`].
pub const DIGEST_BYTES: usize = 16;

/// What makes a post the same post when it comes again: the first 16 bytes of the SHA-256
/// of its body's exact bytes (two distinct bodies share them with a chance of 2^-128).
pub fn body_digest(body: &[u8]) -> [u8; DIGEST_BYTES] {
    use sha2::Digest;
    let full: [u8; 32] = Sha256::digest(body).into();
    let mut digest = [0; DIGEST_BYTES];
    digest.copy_from_slice(&full[..DIGEST_BYTES]);
    digest
}

/// Whether `header` is the signature of `body`. Hex case is ignored and the digests are
/// compared in constant time, so timing reveals nothing about the expected value.
pub fn verify(secret: &str, body: &[u8], header: Option<&[u8]>) -> bool {
    verify_any(&[Some(secret)], body, header).is_some()
}

/// Which of `keys` (by position; `None` is no key) signed `body`, if any. Every key is
/// tried, each compared in constant time, so the time taken says nothing about which key
/// matched or how close a wrong signature came.
pub fn verify_any(keys: &[Option<&str>], body: &[u8], header: Option<&[u8]>) -> Option<usize> {
    let claimed = header
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| hex::decode(h.trim()).ok())?;
    let mut found = None;
    for (position, key) in keys.iter().enumerate() {
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            continue;
        };
        let Ok(mut mac) = HmacSha256::new_from_slice(key.as_bytes()) else {
            continue;
        };
        mac.update(body);
        if mac.verify_slice(&claimed).is_ok() && found.is_none() {
            found = Some(position);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn sign_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_accepts_either_hex_case_and_refuses_everything_else() {
        let body = br#"{"a":1}"#;
        let good = sign("k", body);
        assert!(verify("k", body, Some(good.as_bytes())));
        assert!(verify("k", body, Some(good.to_uppercase().as_bytes())));
        assert!(!verify("k", body, None));
        assert!(!verify("k", body, Some(b"")));
        assert!(!verify("k", body, Some(b"not hex")));
        assert!(!verify("k", body, Some(&good.as_bytes()[..62])));
        assert!(!verify("other", body, Some(good.as_bytes())));
        assert!(!verify("k", b"{\"a\":2}", Some(good.as_bytes())));
        assert!(!verify("k", body, Some(&[0xff, 0xfe])));
    }

    #[test]
    fn key_ids_are_stable_distinct_and_show_nothing_of_the_key() {
        let id = key_id("tester-b-secret");
        assert_eq!(id, key_id("tester-b-secret"));
        assert_eq!(id.len(), 12);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(id, key_id("tester-a-secret"));
        assert_ne!(id, key_id("tester-b-secret "));
        assert!(!id.contains("tester"));
        // Not the start of the key's plain hash, nor of a signature of an empty body.
        assert!(!hex::encode(Sha256::digest(b"tester-b-secret")).starts_with(&id));
        assert!(!sign("tester-b-secret", b"").starts_with(&id));
    }

    #[test]
    fn body_digests_tell_one_byte_apart() {
        assert_eq!(body_digest(b"{}"), body_digest(b"{}"));
        assert_ne!(body_digest(b"{\"a\":1}"), body_digest(b"{\"a\":1} "));
        // The first half of FIPS 180-2's SHA-256 of "abc".
        assert_eq!(
            hex::encode(body_digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223"
        );
    }

    #[test]
    fn verify_any_names_the_position_of_the_key_that_signed() {
        let body = br#"{"a":1}"#;
        let keys = [Some("zero"), Some("one"), Some("two")];
        for (i, key) in ["zero", "one", "two"].iter().enumerate() {
            let header = sign(key, body);
            assert_eq!(verify_any(&keys, body, Some(header.as_bytes())), Some(i));
        }
        let header = sign("one", body);
        assert_eq!(
            verify_any(&[None, Some("one")], body, Some(header.as_bytes())),
            Some(1)
        );
        assert_eq!(
            verify_any(&[Some("zero")], body, Some(header.as_bytes())),
            None
        );
        assert_eq!(verify_any(&keys, body, None), None);
        assert_eq!(verify_any(&keys, body, Some(b"zz")), None);
        let empty = sign("", body);
        assert_eq!(
            verify_any(&[None, Some("")], body, Some(empty.as_bytes())),
            None
        );
    }
}
