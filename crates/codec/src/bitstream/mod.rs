//! The container: a versioned, self-describing header, then frame packets each preceded by its
//! size, an end marker and a CRC-32 of everything before it.
//!
//! ```text
//! header | (LEB128 size > 0, frame payload)* | LEB128 0 | CRC-32 (LE) of all preceding bytes
//! frame payload: frame type (0 key, 1 predicted) | QP | range-coded coding units
//! ```

pub mod header;

pub use header::{SequenceHeader, VERSION};

use crate::error::{CodecError, Result};
use std::io::Read;

/// CRC-32 (IEEE 802.3 polynomial, reflected), computed incrementally.
#[derive(Clone, Copy, Debug)]
pub struct Crc32(u32);

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
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
        table[i] = c;
        i += 1;
    }
    table
};

impl Default for Crc32 {
    fn default() -> Self {
        Crc32(u32::MAX)
    }
}

impl Crc32 {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = CRC_TABLE[((self.0 ^ u32::from(b)) & 0xFF) as usize] ^ (self.0 >> 8);
        }
    }

    pub fn value(self) -> u32 {
        !self.0
    }
}

/// LEB128 encoding of a packet size.
pub fn write_size(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends a signed value as a zigzag LEB128 number (0, -1, 1, -2, … as 0, 1, 2, 3, …).
pub fn write_signed(out: &mut Vec<u8>, value: i64) {
    write_size(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Reads a value `write_signed` wrote from the start of `bytes`; returns it and the bytes used.
pub fn read_signed(bytes: &[u8]) -> Result<(i64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((((value >> 1) as i64) ^ -((value & 1) as i64), i + 1));
        }
    }
    Err(CodecError::Corrupt("number too long"))
}

/// Reads exactly `buf.len()` bytes, reporting a short stream as truncation.
pub fn read_exact(reader: &mut impl Read, buf: &mut [u8]) -> Result<()> {
    reader.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            CodecError::Truncated
        } else {
            CodecError::Io(e)
        }
    })
}

/// Reads a LEB128 size (at most 5 bytes), feeding the bytes to `crc`.
pub fn read_size(reader: &mut impl Read, crc: &mut Crc32) -> Result<u64> {
    let mut value = 0u64;
    for i in 0..5 {
        let mut byte = [0u8];
        read_exact(reader, &mut byte)?;
        crc.update(&byte);
        value |= u64::from(byte[0] & 0x7F) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(CodecError::Corrupt("packet size too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_numbers_round_trip() {
        for value in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            1 << 40,
            -(1 << 40),
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            write_signed(&mut out, value);
            out.push(0xFF);
            assert_eq!(read_signed(&out).unwrap(), (value, out.len() - 1));
        }
        assert!(read_signed(&[0x80; 11]).is_err());
        assert!(read_signed(&[0x80]).is_err());
    }

    #[test]
    fn crc_of_known_string() {
        let mut crc = Crc32::default();
        crc.update(b"123456789");
        assert_eq!(crc.value(), 0xCBF4_3926);
    }

    #[test]
    fn sizes_round_trip() {
        for value in [0u64, 1, 127, 128, 300, 1 << 20, (1 << 35) - 1] {
            let mut out = Vec::new();
            write_size(&mut out, value);
            let mut crc = Crc32::default();
            assert_eq!(read_size(&mut out.as_slice(), &mut crc).unwrap(), value);
        }
    }
}
