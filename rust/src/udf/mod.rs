//! Functions exported through `datafusion-ffi`: the Rust rungs of the UDF ladder.
//!
//! Each is a plain DataFusion implementation (testable without Python) plus a thin
//! `#[pyclass]` whose dunder method hands DataFusion Python an FFI capsule:
//!
//! | kind      | functions                         | trait                | capsule                           |
//! |-----------|-----------------------------------|----------------------|-----------------------------------|
//! | scalar    | `stable_id`, `prefixed_hash64`    | `ScalarUDFImpl`      | `__datafusion_scalar_udf__`       |
//! | aggregate | `stable_id_agg`                   | `AggregateUDFImpl`   | `__datafusion_aggregate_udf__`    |
//! | window    | `sessionize`                      | `WindowUDFImpl`      | `__datafusion_window_udf__`       |
//! | table     | `wb_parquet_metadata`             | `TableFunctionImpl`  | `__datafusion_table_function__`   |

pub mod parquet_metadata;
pub mod prefixed_hash64;
pub mod sessionize;
pub mod stable_id;
pub mod stable_id_agg;

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
