//! distcc's RPC token codec, shared by the distccd protocol and the include-server socket.
//!
//! Every item is a 12-byte header: a 4-character tag (`ARGC`, `ARGV`, `CDIR`, `DONE`, ...)
//! and a 32-bit value written as 8 lowercase hex digits, most significant first. Integer
//! items carry only the header; string items carry their byte length in the header and
//! then exactly that many raw bytes (no NUL, no padding). An argv is `ARGC n` followed by
//! `n` × `ARGV`.
//!
//! Encoding always writes lowercase. Decoding is as lenient as distcc's `strtoul(…, 16)`
//! reader where that is harmless: hex digits of either case, optionally preceded by spaces
//! or a `0x` prefix, as long as the whole 8-character field is consumed.

use std::fmt;
use std::io::{self, Read, Write};

/// Length of a token header in bytes.
pub const HEADER_LEN: usize = 12;

/// A 4-byte token tag, such as `ARGV`. Always 4 printable ASCII characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag([u8; 4]);

impl Tag {
    /// Builds a tag from a 4-character literal; panics on anything else (a programming
    /// error, so tags are written as constants).
    pub const fn new(s: &str) -> Tag {
        let b = s.as_bytes();
        assert!(b.len() == 4, "a tag has exactly 4 characters");
        let mut i = 0;
        while i < 4 {
            assert!(b[i].is_ascii_graphic(), "a tag is printable ASCII");
            i += 1;
        }
        Tag([b[0], b[1], b[2], b[3]])
    }

    /// The tag's bytes.
    pub fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({self})")
    }
}

/// Tags used by the pump-mode tools.
pub mod tags {
    use super::Tag;
    /// Protocol version request header.
    pub const DIST: Tag = Tag::new("DIST");
    /// Argument count.
    pub const ARGC: Tag = Tag::new("ARGC");
    /// One argument (string).
    pub const ARGV: Tag = Tag::new("ARGV");
    /// Client working directory (string).
    pub const CDIR: Tag = Tag::new("CDIR");
    /// Preprocessed source (string), protocols 1 and 2.
    pub const DOTI: Tag = Tag::new("DOTI");
    /// Number of files that follow, protocol 3.
    pub const NFIL: Tag = Tag::new("NFIL");
    /// File name (string), protocol 3.
    pub const NAME: Tag = Tag::new("NAME");
    /// File contents (string), protocol 3.
    pub const FILE: Tag = Tag::new("FILE");
    /// Symlink target (string), protocol 3.
    pub const LINK: Tag = Tag::new("LINK");
    /// Server's reply header carrying the protocol version.
    pub const DONE: Tag = Tag::new("DONE");
    /// Compiler exit status.
    pub const STAT: Tag = Tag::new("STAT");
    /// Compiler stderr (string).
    pub const SERR: Tag = Tag::new("SERR");
    /// Compiler stdout (string).
    pub const SOUT: Tag = Tag::new("SOUT");
    /// Object file (string).
    pub const DOTO: Tag = Tag::new("DOTO");
    /// Dependency file (string).
    pub const DOTD: Tag = Tag::new("DOTD");
}

/// One decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// The 4-character tag.
    pub tag: Tag,
    /// The 32-bit value: an integer, or the length of the payload that follows.
    pub value: u32,
}

/// Why bytes could not be decoded as the expected items.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The stream ended or failed before a complete item was read.
    #[error("i/o error on the token stream: {0}")]
    Io(#[from] io::Error),
    /// The 8-character value field is not hexadecimal.
    #[error("bad token value {value:?} after tag {tag:?}: expected 8 hex digits")]
    BadValue {
        /// The tag text as received.
        tag: String,
        /// The value field as received.
        value: String,
    },
    /// A different tag arrived than the one the protocol calls for.
    #[error("protocol error: expected {expected}, got {got:?}")]
    UnexpectedTag {
        /// What the protocol called for.
        expected: Tag,
        /// What arrived.
        got: String,
    },
    /// A string or count exceeds the limit the reader set.
    #[error("{tag} of {value} exceeds the limit of {limit}")]
    TooLarge {
        /// The tag of the item.
        tag: Tag,
        /// Its value.
        value: u32,
        /// The reader's limit.
        limit: u32,
    },
}

impl Token {
    /// Builds a token.
    pub fn new(tag: Tag, value: u32) -> Token {
        Token { tag, value }
    }

    /// The 12 header bytes: the tag and `%08x` of the value.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; HEADER_LEN];
        out[..4].copy_from_slice(&self.tag.0);
        for i in 0..8 {
            out[4 + i] = HEX[((self.value >> (28 - 4 * i)) & 0xf) as usize];
        }
        out
    }

    /// Decodes 12 header bytes.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Token, WireError> {
        let tag = Tag([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let field = &bytes[4..];
        let bad = || WireError::BadValue {
            tag: tag.to_string(),
            value: String::from_utf8_lossy(field).into_owned(),
        };
        let mut digits = field;
        while let [b' ', rest @ ..] = digits {
            digits = rest;
        }
        if let [b'0', b'x' | b'X', rest @ ..] = digits {
            digits = rest;
        }
        if digits.is_empty() {
            return Err(bad());
        }
        let mut value: u32 = 0;
        for &d in digits {
            let v = (d as char).to_digit(16).ok_or_else(bad)?;
            value = (value << 4) | v;
        }
        Ok(Token { tag, value })
    }
}

/// Writes an integer item: `TAGxxxxxxxx`.
pub fn write_int<W: Write + ?Sized>(w: &mut W, tag: Tag, value: u32) -> io::Result<()> {
    w.write_all(&Token::new(tag, value).encode())
}

/// Writes a string item: the header with the payload's length, then the payload.
pub fn write_bytes<W: Write + ?Sized>(w: &mut W, tag: Tag, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{tag} payload of {} bytes exceeds 4 GiB", payload.len()),
        )
    })?;
    write_int(w, tag, len)?;
    w.write_all(payload)
}

/// Writes an argv: `ARGC n` then each argument as an `ARGV` string.
pub fn write_argv<W, I>(w: &mut W, args: I) -> io::Result<()>
where
    W: Write + ?Sized,
    I: IntoIterator,
    I::IntoIter: ExactSizeIterator,
    I::Item: AsRef<[u8]>,
{
    let args = args.into_iter();
    let n = u32::try_from(args.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many arguments"))?;
    write_int(w, tags::ARGC, n)?;
    for a in args {
        write_bytes(w, tags::ARGV, a.as_ref())?;
    }
    Ok(())
}

/// Encodes an argv into a fresh buffer.
pub fn encode_argv<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = Vec::new();
    write_argv(&mut out, args).expect("writing to a Vec cannot fail");
    out
}

/// Reads one header, whatever its tag.
pub fn read_token<R: Read + ?Sized>(r: &mut R) -> Result<Token, WireError> {
    let mut buf = [0u8; HEADER_LEN];
    r.read_exact(&mut buf)?;
    Token::decode(&buf)
}

/// Reads one header and checks its tag; returns its value.
pub fn read_int<R: Read + ?Sized>(r: &mut R, expected: Tag) -> Result<u32, WireError> {
    let tok = read_token(r)?;
    if tok.tag != expected {
        return Err(WireError::UnexpectedTag {
            expected,
            got: tok.tag.to_string(),
        });
    }
    Ok(tok.value)
}

/// Reads a string item with tag `expected`, refusing payloads over `limit` bytes.
pub fn read_bytes<R: Read + ?Sized>(
    r: &mut R,
    expected: Tag,
    limit: u32,
) -> Result<Vec<u8>, WireError> {
    let len = read_int(r, expected)?;
    if len > limit {
        return Err(WireError::TooLarge {
            tag: expected,
            value: len,
            limit,
        });
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// Limits a reader applies to an argv.
#[derive(Clone, Copy, Debug)]
pub struct ArgvLimits {
    /// Most arguments accepted.
    pub max_args: u32,
    /// Longest single argument, in bytes.
    pub max_arg_len: u32,
}

impl Default for ArgvLimits {
    fn default() -> Self {
        ArgvLimits {
            max_args: 1 << 16,
            max_arg_len: 1 << 20,
        }
    }
}

/// Reads `ARGC n` and `n` × `ARGV`.
pub fn read_argv<R: Read + ?Sized>(
    r: &mut R,
    limits: ArgvLimits,
) -> Result<Vec<Vec<u8>>, WireError> {
    let n = read_int(r, tags::ARGC)?;
    if n > limits.max_args {
        return Err(WireError::TooLarge {
            tag: tags::ARGC,
            value: n,
            limit: limits.max_args,
        });
    }
    (0..n)
        .map(|_| read_bytes(r, tags::ARGV, limits.max_arg_len))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_encoding_table() {
        let cases: &[(Tag, u32, &str)] = &[
            (tags::ARGC, 0, "ARGC00000000"),
            (tags::ARGC, 5, "ARGC00000005"),
            (tags::ARGV, 0x3f, "ARGV0000003f"),
            (tags::DIST, 3, "DIST00000003"),
            (tags::STAT, 0x100, "STAT00000100"),
            (tags::DOTI, 0xdeadbeef, "DOTIdeadbeef"),
            (tags::NFIL, u32::MAX, "NFILffffffff"),
        ];
        for &(tag, value, text) in cases {
            let tok = Token::new(tag, value);
            assert_eq!(&tok.encode(), text.as_bytes(), "encode {tag} {value}");
            let back = Token::decode(text.as_bytes().try_into().unwrap()).unwrap();
            assert_eq!(back, tok, "decode {text}");
        }
    }

    #[test]
    fn decoding_is_as_lenient_as_strtoul() {
        for (text, want) in [
            ("ARGC       2", 2),
            ("ARGC0000000A", 10),
            ("ARGC0x00000a", 10),
            ("ARGC  0xFFFF", 0xffff),
        ] {
            let tok = Token::decode(text.as_bytes().try_into().unwrap()).unwrap();
            assert_eq!(tok.value, want, "{text}");
        }
        for text in [
            "ARGC0000000g",
            "ARGC        ",
            "ARGC-0000001",
            "ARGC0x      ",
        ] {
            let err = Token::decode(text.as_bytes().try_into().unwrap()).unwrap_err();
            assert!(matches!(err, WireError::BadValue { .. }), "{text}: {err}");
        }
    }

    #[test]
    fn argv_round_trips_arbitrary_bytes() {
        let args: Vec<Vec<u8>> = vec![
            b"gcc".to_vec(),
            b"-c".to_vec(),
            vec![0xff, 0xfe, b'x'],
            Vec::new(),
            b"with space".to_vec(),
        ];
        let bytes = encode_argv(&args);
        assert!(bytes.starts_with(b"ARGC00000005ARGV00000003gcc"));
        let back = read_argv(&mut bytes.as_slice(), ArgvLimits::default()).unwrap();
        assert_eq!(back, args);
    }

    #[test]
    fn truncated_and_mismatched_input_are_errors() {
        let bytes = encode_argv(&["gcc", "-c"]);
        let cut = &bytes[..bytes.len() - 1];
        assert!(matches!(
            read_argv(&mut &cut[..], ArgvLimits::default()),
            Err(WireError::Io(_))
        ));
        let err = read_int(&mut &b"XXXX00000003abc"[..], tags::ARGC).unwrap_err();
        assert_eq!(
            err.to_string(),
            "protocol error: expected ARGC, got \"XXXX\""
        );
    }

    #[test]
    fn limits_are_enforced() {
        let bytes = encode_argv(&["a", "b", "c"]);
        let limits = ArgvLimits {
            max_args: 2,
            max_arg_len: 10,
        };
        assert!(matches!(
            read_argv(&mut bytes.as_slice(), limits),
            Err(WireError::TooLarge { value: 3, .. })
        ));
        let mut long = Vec::new();
        write_bytes(&mut long, tags::CDIR, &[b'x'; 11]).unwrap();
        assert!(matches!(
            read_bytes(&mut long.as_slice(), tags::CDIR, 10),
            Err(WireError::TooLarge { value: 11, .. })
        ));
    }

    #[test]
    fn compile_probe_header_matches_distcc_capture() {
        // The start of lsdistcc's -P1 probe, captured from distcc 3.4 (spec B.5).
        let mut out = Vec::new();
        write_int(&mut out, tags::DIST, 1).unwrap();
        write_argv(&mut out, &["gcc", "-c", "hello.c", "-o", "hello.o"]).unwrap();
        assert_eq!(
            out,
            b"DIST00000001ARGC00000005ARGV00000003gccARGV00000002-cARGV00000007hello.cARGV00000002-oARGV00000007hello.o"
        );
    }
}
