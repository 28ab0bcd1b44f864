//! The little MessagePack the protocol needs (PROTOCOL.md §2), hand-written for the simulator.
//!
//! [`Writer`] emits only the canonical forms of §2.2 (smallest integer encoding, str for text,
//! bin for bytes). [`Reader`] walks any well-formed MessagePack: it reads the scalar kinds the
//! protocol's fields use and skips everything else (floats, nil, ext, nested containers) up to
//! the server's nesting limit, so a hostile frame can neither overflow the stack nor make it
//! allocate.

/// Canonical encoder over a growing buffer.
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn with_capacity(n: usize) -> Writer {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    /// A length in the 16- or 32-bit form that follows `m16` / `m32`.
    #[inline]
    fn long_len(&mut self, m16: u8, m32: u8, n: usize) {
        if n <= 0xffff {
            self.buf.push(m16);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.buf.push(m32);
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }

    /// Map header (fixmap `0x80|n` up to 15 entries).
    #[inline]
    pub fn map(&mut self, entries: usize) {
        if entries < 16 {
            self.buf.push(0x80 | entries as u8);
        } else {
            self.long_len(0xde, 0xdf, entries);
        }
    }

    /// Array header (fixarray `0x90|n` up to 15 items).
    #[inline]
    pub fn array(&mut self, items: usize) {
        if items < 16 {
            self.buf.push(0x90 | items as u8);
        } else {
            self.long_len(0xdc, 0xdd, items);
        }
    }

    /// str: fixstr up to 31 bytes, then `d9`/`da`/`db`.
    #[inline]
    pub fn str(&mut self, s: &str) {
        let n = s.len();
        if n < 32 {
            self.buf.push(0xa0 | n as u8);
        } else if n <= 0xff {
            self.buf.extend_from_slice(&[0xd9, n as u8]);
        } else {
            self.long_len(0xda, 0xdb, n);
        }
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// bin: always `c4`/`c5`/`c6` (there is no fix form), `c4 00` when empty.
    #[inline]
    pub fn bin(&mut self, b: &[u8]) {
        let n = b.len();
        if n <= 0xff {
            self.buf.extend_from_slice(&[0xc4, n as u8]);
        } else if n <= 0xffff {
            self.buf.push(0xc5);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.buf.push(0xc6);
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        }
        self.buf.extend_from_slice(b);
    }

    /// Unsigned integer in its smallest encoding, never a signed one.
    #[inline]
    pub fn uint(&mut self, n: u64) {
        if n < 0x80 {
            self.buf.push(n as u8);
        } else if n <= 0xff {
            self.buf.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            self.buf.push(0xcd);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            self.buf.push(0xce);
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            self.buf.push(0xcf);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }

    #[inline]
    pub fn bool(&mut self, b: bool) {
        self.buf.push(if b { 0xc3 } else { 0xc2 });
    }

    /// A `"key": "value"` pair of str.
    #[inline]
    pub fn key_str(&mut self, key: &str, value: &str) {
        self.str(key);
        self.str(value);
    }

    #[inline]
    pub fn key_uint(&mut self, key: &str, value: u64) {
        self.str(key);
        self.uint(value);
    }

    #[inline]
    pub fn key_bool(&mut self, key: &str, value: bool) {
        self.str(key);
        self.bool(value);
    }

    #[inline]
    pub fn key_strs(&mut self, key: &str, values: &[String]) {
        self.str(key);
        self.array(values.len());
        for v in values {
            self.str(v);
        }
    }
}

/// Why a frame is not a message. Only logged by a server; shown by tests.
pub type Error = String;

/// A cursor over one frame. Every read checks bounds; nothing panics on malformed input.
#[derive(Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// What a marker byte announces.
pub enum Head {
    Map(u64),
    Array(u64),
    /// str or bin payload (both may carry text, §2.4).
    Raw {
        len: u64,
        is_str: bool,
    },
    Uint(u64),
    /// A negative integer (any signed encoding whose value is below zero).
    Negative,
    Bool(bool),
    /// An extension value (its payload already skipped).
    Ext,
    /// nil or a float: never a valid protocol field value.
    Other,
}

/// A map key: a name (str or bin, any bytes) or a field index.
pub enum Key<'a> {
    Name(&'a [u8]),
    Index(u64),
}

/// Containers (maps, arrays, ext values) may nest at most 1023 deep, the top-level message
/// included: the depth limit of the server's MessagePack decoder (rmp-serde's default of
/// 1024, which fails when its counter reaches zero). Deeper frames are undecodable.
pub const MAX_DEPTH: usize = 1023;

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], Error> {
        if n > self.remaining() as u64 {
            return Err("truncated MessagePack data".into());
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn be(&mut self, n: u64) -> Result<u64, Error> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn signed(&mut self, n: u64) -> Result<Head, Error> {
        let raw = self.be(n)?;
        let bits = 8 * n as u32;
        let negative = (raw >> (bits - 1)) & 1 == 1;
        Ok(if negative {
            Head::Negative
        } else {
            Head::Uint(raw)
        })
    }

    /// Read one marker and its length/value bytes; str/bin payloads and container items are
    /// left for the caller.
    pub fn head(&mut self) -> Result<Head, Error> {
        let m = self.take(1)?[0];
        Ok(match m {
            0x00..=0x7f => Head::Uint(u64::from(m)),
            0x80..=0x8f => Head::Map(u64::from(m & 0x0f)),
            0x90..=0x9f => Head::Array(u64::from(m & 0x0f)),
            0xa0..=0xbf => Head::Raw {
                len: u64::from(m & 0x1f),
                is_str: true,
            },
            0xc0 => Head::Other,
            0xc1 => return Err("invalid MessagePack marker 0xc1".into()),
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4..=0xc6 => Head::Raw {
                len: self.be(1 << (m - 0xc4))?,
                is_str: false,
            },
            0xc7..=0xc9 => {
                let len = self.be(1 << (m - 0xc7))?;
                self.take(1 + len)?; // type byte + data
                Head::Ext
            }
            0xca => {
                self.take(4)?;
                Head::Other
            }
            0xcb => {
                self.take(8)?;
                Head::Other
            }
            0xcc..=0xcf => Head::Uint(self.be(1 << (m - 0xcc))?),
            0xd0..=0xd3 => self.signed(1 << (m - 0xd0))?,
            0xd4..=0xd8 => {
                self.take(1 + (1 << (m - 0xd4)))?; // fixext: type byte + 1..16 bytes
                Head::Ext
            }
            0xd9..=0xdb => Head::Raw {
                len: self.be(1 << (m - 0xd9))?,
                is_str: true,
            },
            0xdc | 0xdd => Head::Array(self.be(2 << (m - 0xdc))?),
            0xde | 0xdf => Head::Map(self.be(2 << (m - 0xde))?),
            0xe0..=0xff => Head::Negative,
        })
    }

    /// Container sizes are checked against the bytes left (every item takes at least one
    /// byte), so a lying header fails here instead of driving a long loop.
    pub fn container_len(&self, items: u64) -> Result<u64, Error> {
        if items > self.remaining() as u64 {
            return Err("truncated MessagePack data".into());
        }
        Ok(items)
    }

    /// Skip one complete value of any kind that sits inside `outer` levels of containers,
    /// refusing nesting beyond [`MAX_DEPTH`]. That bound also bounds the recursion (a few
    /// hundred bytes of stack per level).
    pub fn skip(&mut self, outer: usize) -> Result<(), Error> {
        let items = match self.head()? {
            Head::Map(n) => self.container_len(n.saturating_mul(2))?,
            Head::Array(n) => self.container_len(n)?,
            // An ext value is one more level for the server's decoder too.
            Head::Ext => 0,
            Head::Raw { len, .. } => return self.take(len).map(drop),
            _ => return Ok(()),
        };
        if outer + 1 > MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        for _ in 0..items {
            self.skip(outer + 1)?;
        }
        Ok(())
    }

    /// The bytes of the next complete value (inside `outer` levels), as a reader of their own.
    pub fn value(&mut self, outer: usize) -> Result<Reader<'a>, Error> {
        let start = self.pos;
        self.skip(outer)?;
        Ok(Reader::new(&self.bytes[start..self.pos]))
    }

    /// A map key as serde's derived field identifiers take it: str or bin (any bytes; those
    /// that name no field are ignored) or an unsigned integer in a one-byte or eight-byte
    /// encoding, meaning the field at that index. Any other key makes the frame undecodable.
    pub fn key(&mut self) -> Result<Key<'a>, Error> {
        let marker = *self
            .bytes
            .get(self.pos)
            .ok_or("truncated MessagePack data")?;
        let key = match (marker, self.head()?) {
            (0x00..=0x7f | 0xcc | 0xcf, Head::Uint(i)) => Key::Index(i),
            (_, Head::Raw { len, .. }) => Key::Name(self.take(len)?),
            _ => return Err(format!("invalid map key (marker 0x{marker:02x})")),
        };
        Ok(key)
    }

    /// Text: a str, or a bin holding valid UTF-8 (§2.4).
    pub fn text(&mut self) -> Result<&'a str, Error> {
        match self.head()? {
            Head::Raw { len, .. } => {
                std::str::from_utf8(self.take(len)?).map_err(|_| "invalid UTF-8 in a string".into())
            }
            _ => Err("expected a string".into()),
        }
    }

    /// An unsigned integer in any integer encoding whose value fits `max` (§2.4).
    pub fn uint(&mut self, max: u64) -> Result<u64, Error> {
        match self.head()? {
            Head::Uint(v) if v <= max => Ok(v),
            Head::Uint(v) => Err(format!("integer {v} out of range")),
            Head::Negative => Err("negative integer for an unsigned field".into()),
            _ => Err("expected an integer".into()),
        }
    }

    /// Only `c2`/`c3`: 0/1 are not booleans (§2.4).
    pub fn bool(&mut self) -> Result<bool, Error> {
        match self.head()? {
            Head::Bool(b) => Ok(b),
            _ => Err("expected a boolean".into()),
        }
    }

    /// Bytes: bin, str (taken as given) or an array of integers 0–255 (§2.4).
    pub fn bytes(&mut self) -> Result<Vec<u8>, Error> {
        match self.head()? {
            Head::Raw { len, .. } => Ok(self.take(len)?.to_vec()),
            Head::Array(n) => {
                let n = self.container_len(n)?;
                (0..n).map(|_| Ok(self.uint(0xff)? as u8)).collect()
            }
            _ => Err("expected bytes".into()),
        }
    }

    /// An array of strings.
    pub fn texts(&mut self) -> Result<Vec<String>, Error> {
        match self.head()? {
            Head::Array(n) => {
                let n = self.container_len(n)?;
                (0..n).map(|_| Ok(self.text()?.to_owned())).collect()
            }
            _ => Err("expected an array of strings".into()),
        }
    }
}
