//! Compressed captures: gzip and zstd are read transparently, recognised by their first
//! bytes (never by the file name, so `x.pcap` that is really gzip and `<(cat x.pcap.gz)`
//! both work). Decoding is streamed: nothing is unpacked to disk or held whole in memory.
//!
//! gzip goes through flate2 (every member of a multi-member file, as `zcat` reads it),
//! zstd through the reference library (every frame; skippable frames are skipped). A
//! stream that is cut short or corrupt fails with one line naming the format and what
//! was wrong; the bytes decoded before the fault are handed out first, so the packets
//! they hold are processed. Formats flowsentry does not decode (xz, bzip2, lz4) are
//! named in the error instead of being called an unknown capture format.

use std::io::{self, Read};

/// Bytes that [`Compression::detect`] wants to see (fewer at the end of a short input).
pub const MAGIC_LEN: usize = 6;

/// A compression format flowsentry decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression of a stream that starts with `head`: `Ok(None)` for anything that
    /// is not compressed (a capture, or something libpcap will name), `Err` for a
    /// compression format flowsentry does not decode.
    pub fn detect(head: &[u8]) -> Result<Option<Compression>, String> {
        let starts = |magic: &[u8]| head.len() >= magic.len() && head[..magic.len()] == *magic;
        if starts(&[0x1f, 0x8b]) {
            return Ok(Some(Compression::Gzip));
        }
        // A zstd frame, or a skippable frame (magic 0x184D2A50..0x184D2A5F, little-endian).
        if starts(&[0x28, 0xb5, 0x2f, 0xfd])
            || (head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18])
        {
            return Ok(Some(Compression::Zstd));
        }
        let other = if starts(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            "xz"
        } else if starts(b"BZh") {
            "bzip2"
        } else if starts(&[0x04, 0x22, 0x4d, 0x18]) {
            "lz4"
        } else {
            return Ok(None);
        };
        Err(format!("{other}-compressed; flowsentry reads gzip and zstd (decompress it first, e.g. `{other} -dc FILE | flowsentry replay -`)"))
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// A reader of the decompressed bytes of `input`, whose errors say what broke.
    pub fn decoder<R: Read + Send + 'static>(self, input: R) -> io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            Compression::Gzip => Box::new(Decoded { inner: flate2::read::MultiGzDecoder::new(input), kind: self }),
            Compression::Zstd => Box::new(Decoded { inner: zstd::stream::read::Decoder::new(input)?, kind: self }),
        })
    }
}

/// A decompressing reader whose errors name the format and the fault in one line.
struct Decoded<R> {
    inner: R,
    kind: Compression,
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| describe(self.kind, e))
    }
}

/// One line for a decoder's error. Errors of the file underneath (which the decoders
/// pass on) keep their own words.
fn describe(kind: Compression, e: io::Error) -> io::Error {
    let name = kind.name();
    let what = match e.kind() {
        io::ErrorKind::Interrupted => return e,
        io::ErrorKind::UnexpectedEof => format!("{name} data is truncated (the compressed stream ends early)"),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::Other => {
            let detail = e.to_string();
            let detail = detail.trim();
            if detail.contains("checksum") {
                format!("corrupt {name} data (checksum mismatch)")
            } else if detail.is_empty() {
                format!("corrupt {name} data")
            } else {
                format!("corrupt {name} data ({detail})")
            }
        }
        _ => return e,
    };
    io::Error::new(e.kind(), what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Bytes that compress about as well as packet captures do (half noise).
    fn sample(n: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 2 == 0 {
                    x as u8
                } else {
                    (i % 64) as u8
                }
            })
            .collect()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// As the `zstd` tool writes it (with a content checksum).
    fn zstd(data: &[u8]) -> Vec<u8> {
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        e.include_checksum(true).unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Everything a decoder yields before its error, and the error.
    fn decode(kind: Compression, bytes: Vec<u8>) -> (Vec<u8>, Option<io::Error>) {
        let mut d = kind.decoder(io::Cursor::new(bytes)).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match d.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn formats_are_recognised_by_their_first_bytes() {
        let data = sample(1000);
        assert_eq!(Compression::detect(&gzip(&data)[..MAGIC_LEN]), Ok(Some(Compression::Gzip)));
        assert_eq!(Compression::detect(&zstd(&data)[..MAGIC_LEN]), Ok(Some(Compression::Zstd)));
        assert_eq!(Compression::detect(&[0x5e, 0x2a, 0x4d, 0x18, 0, 0]), Ok(Some(Compression::Zstd)));
        for plain in [&0xa1b2_c3d4u32.to_le_bytes()[..], &[0x0a, 0x0d, 0x0d, 0x0a], b"", &[0x1f], b"hello!"] {
            assert_eq!(Compression::detect(plain), Ok(None), "{plain:?}");
        }
        let xz = Compression::detect(&[0xfd, b'7', b'z', b'X', b'Z', 0]).unwrap_err();
        assert!(xz.starts_with("xz-compressed") && xz.contains("xz -dc"), "{xz}");
        assert!(Compression::detect(b"BZh91AY").unwrap_err().contains("bzip2"));
        assert!(Compression::detect(&[0x04, 0x22, 0x4d, 0x18, 0x64, 0x40]).unwrap_err().contains("lz4"));
    }

    #[test]
    fn multi_member_gzip_and_multi_frame_zstd_decode_whole() {
        let (a, b) = (sample(70_000), sample(5_000));
        let whole = [a.clone(), b.clone()].concat();
        let gz = [gzip(&a), gzip(&b)].concat();
        assert_eq!(decode(Compression::Gzip, gz).0, whole);
        let skippable = [&[0x50u8, 0x2a, 0x4d, 0x18][..], &3u32.to_le_bytes(), b"abc"].concat();
        let zs = [skippable, zstd(&a), zstd(&b)].concat();
        let (out, err) = decode(Compression::Zstd, zs);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(out, whole);
    }

    #[test]
    fn truncated_streams_fail_after_the_good_bytes() {
        let data = sample(300_000);
        for kind in [Compression::Gzip, Compression::Zstd] {
            let packed = if kind == Compression::Gzip { gzip(&data) } else { zstd(&data) };
            for cut in [packed.len() / 2, packed.len() - 1] {
                let (out, err) = decode(kind, packed[..cut].to_vec());
                let err = err.unwrap_or_else(|| panic!("{kind:?} cut at {cut}: no error"));
                assert_eq!(out[..], data[..out.len()], "{kind:?}: the bytes before the cut are right");
                let msg = err.to_string();
                assert!(msg.contains(kind.name()) && !msg.contains('\n'), "{msg}");
                if cut == packed.len() / 2 {
                    assert!(out.len() > 10_000, "{kind:?}: only {} bytes before the cut", out.len());
                }
            }
        }
    }

    #[test]
    fn corrupt_streams_fail_with_one_line() {
        let data = sample(200_000);
        for kind in [Compression::Gzip, Compression::Zstd] {
            let mut packed = if kind == Compression::Gzip { gzip(&data) } else { zstd(&data) };
            let mid = packed.len() / 2;
            for b in &mut packed[mid..mid + 64] {
                *b ^= 0x5a;
            }
            let (_, err) = decode(kind, packed);
            let msg = err.unwrap_or_else(|| panic!("{kind:?}: corruption not noticed")).to_string();
            assert!(msg.starts_with(&format!("corrupt {}", kind.name())) || msg.contains("truncated"), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
    }
}
