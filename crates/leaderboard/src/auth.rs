//! HMAC-SHA256 request signing: the job testers sign each post_stats body with SECRET or
//! one of EXTRA_SECRETS, so a tester's key can be rotated or revoked on its own.

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
