//! The MessagePack writer both wire protocols encode their client frames with: one map with
//! string keys and a `type` string first, each value in its smallest canonical form (what the
//! servers emit and what rmp-serde produces for the same message). Requests are encoded on the
//! caller's thread, so this is written for speed: markers go straight into the `Vec`, with no
//! `io::Write` layer per byte (a ping frame costs ~60 instructions instead of ~1,100), and a
//! first pass sizes the frame so that its buffer is allocated once, exactly: a `Vec` whose
//! capacity is its length becomes the WebSocket message's `Bytes` without another allocation.

/// A message that writes itself as one frame ([`encode`]).
pub(crate) trait Frame {
    fn write<P: Put>(&self, o: &mut Out<P>);
}

/// The frame of `msg`, in a buffer of exactly its size.
pub(crate) fn encode(msg: &impl Frame) -> Vec<u8> {
    let mut size = Out(Count(0));
    msg.write(&mut size);
    let mut o = Out(Vec::with_capacity(size.0 .0));
    msg.write(&mut o);
    debug_assert_eq!(
        o.0.len(),
        size.0 .0,
        "the sizing pass disagrees with the frame"
    );
    o.0
}

/// Where the bytes of a frame go: counted (the sizing pass) or written.
pub(crate) trait Put {
    fn put(&mut self, bytes: &[u8]);
    fn put_byte(&mut self, byte: u8);
}

/// The sizing pass: counts the bytes.
pub(crate) struct Count(usize);

impl Put for Count {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
    #[inline]
    fn put_byte(&mut self, _: u8) {
        self.0 += 1;
    }
}

impl Put for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    #[inline]
    fn put_byte(&mut self, byte: u8) {
        self.push(byte);
    }
}

/// A frame being written (or sized).
pub(crate) struct Out<P>(P);

impl<P: Put> Out<P> {
    /// A length prefix: `fix | len` below `fix_limit`, else the 8-bit form (if the type has
    /// one), else the 16- or 32-bit form.
    #[inline]
    fn len_marker(&mut self, len: usize, fix: (u8, usize), m8: Option<u8>, m16: u8, m32: u8) {
        if len < fix.1 {
            self.0.put_byte(fix.0 | len as u8);
        } else if let (Some(m8), true) = (m8, len <= 0xff) {
            self.0.put(&[m8, len as u8]);
        } else if len <= 0xffff {
            self.0.put_byte(m16);
            self.0.put(&(len as u16).to_be_bytes());
        } else {
            // Beyond u32 a length cannot be encoded; it saturates, leaving a frame the server
            // refuses (none that large is ever accepted anyway).
            self.0.put_byte(m32);
            let len = u32::try_from(len).unwrap_or(u32::MAX);
            self.0.put(&len.to_be_bytes());
        }
    }

    #[inline]
    fn str(&mut self, s: &str) {
        self.len_marker(s.len(), (0xa0, 32), Some(0xd9), 0xda, 0xdb);
        self.0.put(s.as_bytes());
    }

    #[inline]
    fn uint(&mut self, v: u64) {
        if v < 0x80 {
            self.0.put_byte(v as u8);
        } else if v <= 0xff {
            self.0.put(&[0xcc, v as u8]);
        } else if v <= 0xffff {
            self.0.put_byte(0xcd);
            self.0.put(&(v as u16).to_be_bytes());
        } else if v <= 0xffff_ffff {
            self.0.put_byte(0xce);
            self.0.put(&(v as u32).to_be_bytes());
        } else {
            self.0.put_byte(0xcf);
            self.0.put(&v.to_be_bytes());
        }
    }

    /// A map of `fields` entries after `type`, which is written first.
    #[inline]
    pub(crate) fn header(&mut self, fields: u32, kind: &str) {
        self.len_marker(fields as usize + 1, (0x80, 16), None, 0xde, 0xdf);
        self.key_str("type", kind);
    }

    #[inline]
    pub(crate) fn key_str(&mut self, key: &str, value: &str) {
        self.str(key);
        self.str(value);
    }

    /// `nil` for `None`.
    #[inline]
    pub(crate) fn key_opt_str(&mut self, key: &str, value: Option<&str>) {
        self.str(key);
        match value {
            Some(v) => self.str(v),
            None => self.0.put_byte(0xc0),
        }
    }

    #[inline]
    pub(crate) fn key_uint(&mut self, key: &str, value: u64) {
        self.str(key);
        self.uint(value);
    }

    #[inline]
    pub(crate) fn key_bool(&mut self, key: &str, value: bool) {
        self.str(key);
        self.0.put_byte(if value { 0xc3 } else { 0xc2 });
    }

    #[inline]
    pub(crate) fn key_bin(&mut self, key: &str, value: &[u8]) {
        self.str(key);
        self.len_marker(value.len(), (0, 0), Some(0xc4), 0xc5, 0xc6);
        self.0.put(value);
    }

    #[inline]
    pub(crate) fn key_str_array(&mut self, key: &str, values: &[String]) {
        self.str(key);
        self.len_marker(values.len(), (0x90, 16), None, 0xdc, 0xdd);
        for v in values {
            self.str(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each length and integer width at and around its boundaries, against rmp's encoder.
    #[test]
    fn markers_match_rmp_at_every_boundary() {
        let sizes = [0usize, 1, 15, 16, 31, 32, 255, 256, 65_535, 65_536, 100_000];
        for n in sizes {
            let s = "s".repeat(n);
            let bytes = vec![7u8; n];
            let strings = vec![String::from("a"); n.min(70_000)];
            let mut ours = Out(Vec::new());
            ours.key_str("k", &s);
            ours.key_bin("b", &bytes);
            ours.key_str_array("a", &strings);
            let mut theirs = Vec::new();
            rmp::encode::write_str(&mut theirs, "k").unwrap();
            rmp::encode::write_str(&mut theirs, &s).unwrap();
            rmp::encode::write_str(&mut theirs, "b").unwrap();
            rmp::encode::write_bin(&mut theirs, &bytes).unwrap();
            rmp::encode::write_str(&mut theirs, "a").unwrap();
            rmp::encode::write_array_len(&mut theirs, strings.len() as u32).unwrap();
            for v in &strings {
                rmp::encode::write_str(&mut theirs, v).unwrap();
            }
            assert!(ours.0 == theirs, "length {n}");
        }
        for fields in [0u32, 14, 15, 16, 65_534, 65_535, 70_000] {
            let mut ours = Out(Vec::new());
            ours.header(fields, "t");
            let mut theirs = Vec::new();
            rmp::encode::write_map_len(&mut theirs, fields + 1).unwrap();
            rmp::encode::write_str(&mut theirs, "type").unwrap();
            rmp::encode::write_str(&mut theirs, "t").unwrap();
            assert_eq!(ours.0, theirs, "{fields} fields");
        }
        let values = [
            0u64,
            0x7f,
            0x80,
            0xff,
            0x100,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX,
        ];
        for v in values {
            let mut ours = Out(Vec::new());
            ours.key_uint("u", v);
            ours.key_bool("t", v % 2 == 0);
            ours.key_opt_str("o", (v % 3 == 0).then_some("x"));
            let mut theirs = Vec::new();
            rmp::encode::write_str(&mut theirs, "u").unwrap();
            rmp::encode::write_uint(&mut theirs, v).unwrap();
            rmp::encode::write_str(&mut theirs, "t").unwrap();
            rmp::encode::write_bool(&mut theirs, v % 2 == 0).unwrap();
            rmp::encode::write_str(&mut theirs, "o").unwrap();
            if v % 3 == 0 {
                rmp::encode::write_str(&mut theirs, "x").unwrap();
            } else {
                rmp::encode::write_nil(&mut theirs).unwrap();
            }
            assert_eq!(ours.0, theirs, "{v}");
        }
    }
}
