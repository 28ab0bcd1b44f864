//! Strict standard base64 (alphabet `A–Z a–z 0–9 + /`, canonical `=` padding, no whitespace),
//! with the exact error texts the real server reports in `Invalid signature encoding: …`
//! (PROTOCOL.md §5.2, §12.3). The order of the checks decides which error a bad input gets,
//! so it follows the decoder the server uses: full quads before the last one are checked first,
//! then the final (up to four) symbols with their padding, then the length, then the padding,
//! then the unused bits of the last symbol.

use std::fmt;

const PAD: u8 = b'=';
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// `(offset, byte)`: a byte outside the alphabet, or padding in the wrong place.
    InvalidSymbol(usize, u8),
    /// The number of symbols cannot encode whole bytes.
    InvalidLength(usize),
    /// `(offset, byte)`: the last symbol carries bits that do not belong to any output byte.
    InvalidLastSymbol(usize, u8),
    /// Padding missing or not canonical.
    InvalidPadding,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::InvalidSymbol(offset, byte) => {
                write!(f, "Invalid symbol {byte}, offset {offset}.")
            }
            DecodeError::InvalidLength(len) => write!(f, "Invalid input length: {len}"),
            DecodeError::InvalidLastSymbol(offset, byte) => {
                write!(f, "Invalid last symbol {byte}, offset {offset}.")
            }
            DecodeError::InvalidPadding => write!(f, "Invalid padding"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Standard base64 with padding.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict decoding (see the module comment).
pub fn decode(input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let rem = input.len() % 4;
    // A single dangling symbol that is not even in the alphabet (e.g. a trailing newline) is
    // reported as an invalid symbol rather than as a length problem.
    if rem == 1 {
        let last = input[input.len() - 1];
        if last != PAD && value(last).is_none() {
            return Err(DecodeError::InvalidSymbol(input.len() - 1, last));
        }
    }
    // The last quad is handled separately, even when complete, because it may hold padding.
    let body_len = input.len() - if rem == 0 { input.len().min(4) } else { rem };
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    for (q, quad) in input[..body_len].chunks(4).enumerate() {
        let mut n = 0u32;
        for (i, &b) in quad.iter().enumerate() {
            let v = value(b).ok_or(DecodeError::InvalidSymbol(q * 4 + i, b))?;
            n = (n << 6) | u32::from(v);
        }
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }

    let start = body_len;
    let mut morsels = [0u8; 4];
    let mut count = 0usize;
    let mut padding = 0usize;
    let mut first_padding = 0usize;
    let mut last_symbol = 0u8;
    for (i, &b) in input[start..].iter().enumerate() {
        if b == PAD {
            // Padding is only valid after two or three symbols of the last quad.
            if i < 2 {
                return Err(DecodeError::InvalidSymbol(start + i, b));
            }
            if padding == 0 {
                first_padding = i;
            }
            padding += 1;
            continue;
        }
        if padding > 0 {
            // A symbol after padding: report the first padding byte.
            return Err(DecodeError::InvalidSymbol(start + first_padding, PAD));
        }
        last_symbol = b;
        morsels[count] = value(b).ok_or(DecodeError::InvalidSymbol(start + i, b))?;
        count += 1;
    }
    if !input.is_empty() && count < 2 {
        return Err(DecodeError::InvalidLength(start + count));
    }
    if (padding + count) % 4 != 0 {
        return Err(DecodeError::InvalidPadding);
    }
    let n = morsels
        .iter()
        .fold(0u32, |acc, &m| (acc << 6) | u32::from(m))
        << 8;
    let bytes = count * 6 / 8;
    let mask = if bytes == 0 {
        !0u32
    } else {
        !0u32 >> (bytes * 8)
    };
    if n & mask != 0 {
        return Err(DecodeError::InvalidLastSymbol(
            start + count - 1,
            last_symbol,
        ));
    }
    for i in 0..bytes {
        out.push((n >> (24 - 8 * i)) as u8);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_of_protocol_12_3() {
        assert_eq!(decode(b"AAEC").unwrap(), vec![0, 1, 2]);
        assert_eq!(decode(b"AAE=").unwrap(), vec![0, 1]);
        assert_eq!(decode(b"/+8=").unwrap(), vec![0xff, 0xef]);
        assert_eq!(decode(b"").unwrap(), Vec::<u8>::new());
        assert_eq!(decode(b"AAE").unwrap_err().to_string(), "Invalid padding");
        assert_eq!(
            decode(b"AA E=").unwrap_err().to_string(),
            "Invalid symbol 32, offset 2."
        );
        assert_eq!(
            decode(b"-_8=").unwrap_err().to_string(),
            "Invalid symbol 45, offset 0."
        );
        assert_eq!(
            decode(b"AAAAA").unwrap_err().to_string(),
            "Invalid input length: 5"
        );
        assert_eq!(
            decode(b"AAF=").unwrap_err().to_string(),
            "Invalid last symbol 70, offset 2."
        );
    }

    #[test]
    fn round_trip() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode(encode(&data).as_bytes()).unwrap(), data);
        }
    }
}
