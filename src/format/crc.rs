//! CRC-32/ISO-HDLC, the one zlib, PNG and Ethernet use (reflected
//! polynomial `0xEDB88320`, initial value and final XOR `0xFFFFFFFF`).
//!
//! Every blob is checked with it at load, and each model slot at boot, so
//! its speed is boot time on the device: one 256-word table (1 KB of flash,
//! built at compile time) and a loop that takes a little-endian word at a
//! time, XORs it in and runs the four byte steps on the register. On a
//! Cortex-M4 that is 4 instructions per byte, against 9 for the `crc`
//! crate's byte loop that it replaces (QEMU profile of a 423,816-byte
//! blob's boot: docs/reliability.md).

/// `TABLE[i]`: the CRC register after shifting byte `i` through it.
const TABLE: [u32; 256] = table();

const fn table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

/// One byte step of the reflected CRC register.
#[inline(always)]
fn step(crc: u32) -> u32 {
    TABLE[(crc & 0xFF) as usize] ^ (crc >> 8)
}

/// The CRC-32 the format uses ([`CRC32`]).
#[derive(Clone, Copy, Debug)]
pub struct Crc32(());

impl Crc32 {
    /// The CRC of `bytes`.
    pub fn checksum(&self, bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        let words = bytes.chunks_exact(4);
        let rest = words.remainder();
        for w in words {
            crc ^= u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            crc = step(step(step(step(crc))));
        }
        for &b in rest {
            crc = step(crc ^ b as u32);
        }
        !crc
    }
}

/// CRC-32/ISO-HDLC.
pub const CRC32: Crc32 = Crc32(());

#[cfg(test)]
mod tests {
    use super::CRC32;

    #[test]
    fn matches_the_standard_check_values() {
        // The catalogue's check value: CRC of the nine ASCII digits.
        assert_eq!(CRC32.checksum(b"123456789"), 0xCBF4_3926);
        assert_eq!(CRC32.checksum(b""), 0);
        // Every length modulo 4 against the bit-by-bit definition.
        let data: [u8; 67] = core::array::from_fn(|i| (i as u8).wrapping_mul(151).wrapping_add(7));
        for n in 0..data.len() {
            let mut c = !0u32;
            for &b in &data[..n] {
                c ^= b as u32;
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
            }
            assert_eq!(CRC32.checksum(&data[..n]), !c, "{n} bytes");
        }
    }
}
