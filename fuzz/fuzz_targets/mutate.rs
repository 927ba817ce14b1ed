//! Mutations of a valid file, shared by the targets.

/// `valid` with bytes of `edits` XORed in, three bytes per edit (a little-endian position
/// modulo the length, then the mask), so that damage to a well-formed file (a tensor's type,
/// shape or name) is reached, not only random bytes.
pub fn flipped(valid: &[u8], edits: &[u8]) -> Vec<u8> {
    let mut out = valid.to_vec();
    for edit in edits.chunks_exact(3) {
        let at = u16::from_le_bytes([edit[0], edit[1]]) as usize % out.len();
        out[at] ^= edit[2];
    }
    out
}
