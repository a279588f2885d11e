//! Scalar UDFs exported through `datafusion-ffi`.
//!
//! Each UDF is a plain `ScalarUDFImpl` (testable without Python) plus a thin
//! `#[pyclass]` whose `__datafusion_scalar_udf__` hands DataFusion Python an
//! `FFI_ScalarUDF` capsule.

pub mod prefixed_hash64;
pub mod stable_id;

use sha2::{Digest, Sha256};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// SHA-256 of `domain || payload`: the domain keeps the two UDFs' outputs
/// unrelated even when they hash the same encoding.
fn digest(domain: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(domain);
    hasher.update(payload);
    hasher.finalize().into()
}

/// Lowercase hex of `bytes` appended to `out`.
fn push_hex(out: &mut String, bytes: &[u8]) {
    for byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_two_digits_per_byte() {
        let mut out = String::new();
        push_hex(&mut out, &[0x00, 0x0a, 0xff]);
        assert_eq!(out, "000aff");
    }

    #[test]
    fn digest_depends_on_domain() {
        assert_ne!(digest(b"a", b"x"), digest(b"b", b"x"));
    }
}
