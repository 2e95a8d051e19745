//! HMAC-SHA256 request signing: the job testers sign each post_stats body with SECRET.

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
    let Some(header) = header else {
        return false;
    };
    let Ok(header) = std::str::from_utf8(header) else {
        return false;
    };
    let Ok(claimed) = hex::decode(header.trim()) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&claimed).is_ok()
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
}
