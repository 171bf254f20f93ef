//! A layer's tar stream, read the way containerd unpacks it (Go's `archive/tar`), within fixed
//! bounds.
//!
//! Read here rather than with the `tar` crate, which reads GNU long names and PAX records whole (a
//! 64 MiB name from a 300 KB blob), and which reads some archives differently from Go: it skips a
//! size's worth of data after a link or a directory, and splits PAX records at newlines that may
//! be part of a value (a capability mask can hold the byte 0x0a). As Go does:
//!
//! - a PAX `x` header applies to the next entry; a global `g` header is read and dropped with
//!   whatever was pending (containerd ignores it);
//! - a GNU long name (`L`) or long link (`K`) overrides the PAX `path` / `linkpath`, which override
//!   the header's fields; an empty PAX value keeps the header's;
//! - links, symlinks, directories, devices and FIFOs have no data, whatever their size field says;
//! - a header's checksum may be the signed or the unsigned sum;
//! - two zero blocks, or the end of the stream where a header would start, end the archive.
//!
//! Refused: a long name over [`MAX_LONG_NAME`] bytes, a PAX header over [`MAX_PAX`] bytes (Go
//! takes up to 1 MiB; no real layer comes near these), entry types containerd does not unpack
//! (GNU sparse `S`, contiguous `7`, ...), and PAX sparse files (`GNU.sparse.*`).

use std::collections::BTreeMap;
use std::io::{self, Read};

use super::{normalise, PATH_MAX};

const BLOCK: usize = 512;

/// Largest GNU long name or long link (`L`, `K`) read: a path the kernel takes, with room to spare.
pub const MAX_LONG_NAME: u64 = 8 << 10;
/// Largest PAX extended header (`x`, `g`) read: a path, a link target and extended attributes.
pub const MAX_PAX: u64 = 64 << 10;

/// How tar (GNU, Go's archive/tar, and so Docker and BuildKit) records file capabilities.
pub const PAX_FCAPS: &str = "SCHILY.xattr.security.capability";

/// What an entry is, as containerd creates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    File,
    HardLink,
    Symlink,
    Char,
    Block,
    Dir,
    Fifo,
}

/// One entry, its extension headers folded in.
#[derive(Debug, Clone)]
pub struct Member {
    /// As recorded, not normalised.
    pub path: Vec<u8>,
    /// Hard link or symlink target, as recorded; empty if none.
    pub link: Vec<u8>,
    pub kind: Type,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Devices: major and minor.
    pub dev: (u32, u32),
    /// The PAX record [`PAX_FCAPS`], raw.
    pub fcaps: Option<Vec<u8>>,
}

/// The entries of a tar stream, one at a time; [`Archive::read`] reads the current one's data.
pub struct Archive<R> {
    r: R,
    /// Data of the current entry not read yet, and the padding after it.
    left: u64,
    pad: u64,
    done: bool,
}

/// What pending extension headers say about the next entry.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl<R: Read> Archive<R> {
    pub fn new(r: R) -> Archive<R> {
        Archive {
            r,
            left: 0,
            pad: 0,
            done: false,
        }
    }

    /// The next entry, or `None` at the end of the archive. Unread data of the previous entry is
    /// skipped.
    pub fn next(&mut self) -> Result<Option<Member>, String> {
        if self.done {
            return Ok(None);
        }
        let mut pending = Pending::default();
        loop {
            self.skip_rest()?;
            let Some(block) = self.header()? else {
                // Go ends the archive here too, even after extension headers with no entry.
                self.done = true;
                return Ok(None);
            };
            let typeflag = block[156];
            let size = numeric(&block[124..136]).map_err(|e| format!("size field {e}"))?;
            match typeflag {
                b'x' | b'g' => {
                    let data = self.special(size, MAX_PAX, "PAX extended header")?;
                    let records = pax_records(&data)?;
                    if typeflag == b'g' {
                        pending = Pending::default();
                    } else {
                        pending.pax = records;
                    }
                }
                b'L' => {
                    let data = self.special(size, MAX_LONG_NAME, "GNU long name")?;
                    pending.long_name = Some(c_string(&data).to_vec());
                }
                b'K' => {
                    let data = self.special(size, MAX_LONG_NAME, "GNU long link name")?;
                    pending.long_link = Some(c_string(&data).to_vec());
                }
                _ => return self.member(&block, typeflag, size, pending).map(Some),
            }
        }
    }

    /// Reads the current entry's data; 0 at its end.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        let want = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = read_some(&mut self.r, buf.get_mut(..want).unwrap_or_default())?;
        if n == 0 {
            return Err("the archive ends inside an entry's data".into());
        }
        self.left -= n as u64;
        Ok(n)
    }

    fn skip_rest(&mut self) -> Result<(), String> {
        let mut scratch = [0u8; 8 * 1024];
        while self.left > 0 {
            self.read(&mut scratch)?;
        }
        // Go ends the archive when the stream ends exactly where padding would start.
        let mut pad = self.pad;
        self.pad = 0;
        let mut first = true;
        while pad > 0 {
            let k = usize::try_from(pad).unwrap_or(BLOCK).min(BLOCK);
            let n = read_some(&mut self.r, scratch.get_mut(..k).unwrap_or_default())?;
            if n == 0 {
                if first {
                    self.done = true;
                    return Ok(());
                }
                return Err("the archive ends inside an entry's padding".into());
            }
            first = false;
            pad -= n as u64;
        }
        Ok(())
    }

    /// The next header block, checked; `None` at the end of the archive.
    fn header(&mut self) -> Result<Option<[u8; BLOCK]>, String> {
        if self.done {
            return Ok(None);
        }
        let mut block = [0u8; BLOCK];
        if !self.block(&mut block)? {
            return Ok(None);
        }
        if block.iter().all(|&b| b == 0) {
            if !self.block(&mut block)? || block.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            return Err("a zero block followed by a header (not the end of the archive)".into());
        }
        let recorded = octal(&block[148..156]).map_err(|e| format!("checksum field {e}"))?;
        let (unsigned, signed) = checksums(&block);
        if recorded != unsigned && Some(recorded) != u64::try_from(signed).ok() {
            return Err("header checksum mismatch".into());
        }
        Ok(Some(block))
    }

    /// Fills `block`: false at the end of the stream, an error if it ends inside the block.
    fn block(&mut self, block: &mut [u8; BLOCK]) -> Result<bool, String> {
        let mut got = 0;
        while got < BLOCK {
            let n = read_some(&mut self.r, block.get_mut(got..).unwrap_or_default())?;
            if n == 0 {
                if got == 0 {
                    self.done = true;
                    return Ok(false);
                }
                return Err("the archive ends inside a header".into());
            }
            got += n;
        }
        Ok(true)
    }

    /// The data of an extension header, at most `max` bytes.
    fn special(&mut self, size: u64, max: u64, what: &str) -> Result<Vec<u8>, String> {
        if size > max {
            return Err(format!(
                "{what} of {size} bytes (more than {max} are refused)"
            ));
        }
        self.start_data(size);
        let mut data = vec![0u8; usize::try_from(size).unwrap_or(0)];
        let mut got = 0;
        while got < data.len() {
            got += self.read(data.get_mut(got..).unwrap_or_default())?;
        }
        Ok(data)
    }

    fn start_data(&mut self, size: u64) {
        self.left = size;
        self.pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
    }

    /// The entry of header `block`, the pending extension headers applied.
    fn member(
        &mut self,
        block: &[u8; BLOCK],
        typeflag: u8,
        mut size: u64,
        pending: Pending,
    ) -> Result<Member, String> {
        let mut path = header_path(block);
        let mut link = c_string(&block[157..257]).to_vec();
        let id = |field: &[u8], what: &str| -> Result<u32, String> {
            let n = numeric(field).map_err(|e| format!("{what} field {e}"))?;
            u32::try_from(n).map_err(|_| format!("{what} {n} out of range"))
        };
        let mode = id(&block[100..108], "mode")?;
        let mut uid = id(&block[108..116], "uid")?;
        let mut gid = id(&block[116..124], "gid")?;
        let mut fcaps = None;
        for (key, value) in pending.pax {
            if key.starts_with(b"GNU.sparse.") {
                return Err(format!(
                    "{} is a PAX sparse file, which the image baseline does not support",
                    quote(&path)
                ));
            }
            if key == PAX_FCAPS.as_bytes() {
                fcaps = Some(value);
                continue;
            }
            if value.is_empty() {
                continue;
            }
            let number = |what: &str| -> Result<u64, String> {
                std::str::from_utf8(&value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| format!("PAX {what} {} is not a number", quote(&value)))
            };
            match key.as_slice() {
                b"path" => path = value,
                b"linkpath" => link = value,
                b"uid" => {
                    let n = number("uid")?;
                    uid = u32::try_from(n).map_err(|_| format!("PAX uid {n} out of range"))?;
                }
                b"gid" => {
                    let n = number("gid")?;
                    gid = u32::try_from(n).map_err(|_| format!("PAX gid {n} out of range"))?;
                }
                b"size" => size = number("size")?,
                _ => {}
            }
        }
        if let Some(name) = pending.long_name.filter(|n| !n.is_empty()) {
            path = name;
        }
        if let Some(name) = pending.long_link.filter(|n| !n.is_empty()) {
            link = name;
        }
        let kind = match typeflag {
            b'0' => Type::File,
            // The pre-POSIX regular file: a directory if its name ends with a slash.
            0 if path.ends_with(b"/") => Type::Dir,
            0 => Type::File,
            b'1' => Type::HardLink,
            b'2' => Type::Symlink,
            b'3' => Type::Char,
            b'4' => Type::Block,
            b'5' => Type::Dir,
            b'6' => Type::Fifo,
            other => {
                return Err(format!(
                    "{} has entry type {}, which containerd does not unpack",
                    quote(&path),
                    char::from(other).escape_default()
                ))
            }
        };
        let dev = if matches!(kind, Type::Char | Type::Block) && !is_v7(block) {
            (
                id(&block[329..337], "device major")?,
                id(&block[337..345], "device minor")?,
            )
        } else {
            (0, 0)
        };
        self.start_data(if kind == Type::File { size } else { 0 });
        Ok(Member {
            path,
            link,
            kind,
            mode: mode & 0o7777,
            uid,
            gid,
            dev,
            fcaps,
        })
    }
}

/// One read, retried when interrupted; errors as one line.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, String> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(super::one_line(&e.to_string())),
        }
    }
}

/// The header's name: USTAR and star put a prefix before it, GNU and v7 headers have none.
fn header_path(block: &[u8; BLOCK]) -> Vec<u8> {
    let name = c_string(&block[..100]);
    let prefix = match (&block[257..263], &block[508..512]) {
        (b"ustar\0", b"tar\0") => c_string(&block[345..476]),
        (b"ustar\0", _) => c_string(&block[345..500]),
        _ => b"",
    };
    if prefix.is_empty() {
        return name.to_vec();
    }
    let mut out = prefix.to_vec();
    out.push(b'/');
    out.extend_from_slice(name);
    out
}

/// Neither USTAR nor GNU: no device numbers.
fn is_v7(block: &[u8; BLOCK]) -> bool {
    &block[257..263] != b"ustar\0" && &block[257..265] != b"ustar  \0"
}

/// Up to the first NUL.
fn c_string(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    field.get(..end).unwrap_or_default()
}

/// The unsigned and signed sums of a header, its checksum field counted as spaces.
fn checksums(block: &[u8; BLOCK]) -> (u64, i64) {
    let mut unsigned = 0u64;
    let mut signed = 0i64;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    (unsigned, signed)
}

/// A numeric field: base-256 when its first bit is set, else octal (negative numbers refused).
fn numeric(field: &[u8]) -> Result<u64, String> {
    let Some(&first) = field.first() else {
        return Ok(0);
    };
    if first & 0x80 == 0 {
        return octal(field);
    }
    if first & 0x40 != 0 {
        return Err("is negative".into());
    }
    let mut x: u64 = 0;
    for (i, &b) in field.iter().enumerate() {
        let b = if i == 0 { b & 0x7f } else { b };
        if x >> 56 != 0 {
            return Err("overflows".into());
        }
        x = x << 8 | u64::from(b);
    }
    if x >> 63 != 0 {
        return Err("overflows".into());
    }
    Ok(x)
}

/// Octal digits, spaces and NULs trimmed from both ends, up to the first NUL left.
fn octal(field: &[u8]) -> Result<u64, String> {
    let pad = |b: &u8| *b == b' ' || *b == 0;
    let start = field.iter().position(|b| !pad(b)).unwrap_or(field.len());
    let end = field.iter().rposition(|b| !pad(b)).map_or(start, |i| i + 1);
    let digits = c_string(field.get(start..end).unwrap_or_default());
    if digits.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(digits)
        .ok()
        .filter(|s| s.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        .and_then(|s| u64::from_str_radix(s, 8).ok())
        .ok_or_else(|| format!("is not an octal number: {}", quote(digits)))
}

/// PAX records, `<length> <key>=<value>\n` each, the length counting the whole record (so a value
/// may hold any byte). Later records for the same key win.
fn pax_records(data: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, String> {
    let bad = || "malformed PAX record".to_string();
    let mut out = BTreeMap::new();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(rest.get(..space).unwrap_or_default())
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        if len < 5 || len > rest.len() || len <= space + 1 {
            return Err(bad());
        }
        let record = rest.get(space + 1..len).ok_or_else(bad)?;
        rest = rest.get(len..).unwrap_or_default();
        let record = record.strip_suffix(b"\n").ok_or_else(bad)?;
        let eq = record.iter().position(|&b| b == b'=').ok_or_else(bad)?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let names_a_path = matches!(key, b"path" | b"linkpath" | b"uname" | b"gname");
        if key.is_empty() || key.contains(&0) || (names_a_path && value.contains(&0)) {
            return Err(bad());
        }
        out.insert(key.to_vec(), value.to_vec());
    }
    Ok(out)
}

/// A name or value for an error: escaped, and shortened when long.
pub fn quote(bytes: &[u8]) -> String {
    const MAX_SHOWN: usize = 120;
    let shown = super::show(bytes);
    let shown = shown.get(1..).unwrap_or_default();
    let mut out: String = shown.chars().take(MAX_SHOWN).collect();
    if out.len() < shown.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// A normalised path no longer than the kernel takes, or why not.
pub fn checked_path(raw: &[u8]) -> Result<Vec<u8>, String> {
    let path = normalise(raw).ok_or_else(|| format!("path {} escapes the root", quote(raw)))?;
    if path.len() > PATH_MAX {
        return Err(format!(
            "path {} is longer than {PATH_MAX} bytes",
            quote(&path)
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &[u8], typeflag: u8, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkflag = [typeflag];
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size);
        h.set_cksum();
        h
    }

    fn push(out: &mut Vec<u8>, h: &tar::Header, data: &[u8]) {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }

    fn end(mut out: Vec<u8>) -> Vec<u8> {
        out.resize(out.len() + 2 * BLOCK, 0);
        out
    }

    /// PAX records, each prefixed with its own length.
    fn pax(records: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in records {
            let body = k.len() + v.len() + 3;
            let mut len = body + 1;
            while len != body + len.to_string().len() {
                len = body + len.to_string().len();
            }
            out.extend_from_slice(format!("{len} {k}=").as_bytes());
            out.extend_from_slice(v);
            out.push(b'\n');
        }
        out
    }

    /// Every entry and its data.
    fn read_all(bytes: &[u8]) -> Result<Vec<(Member, Vec<u8>)>, String> {
        let mut a = Archive::new(bytes);
        let mut out = Vec::new();
        while let Some(m) = a.next()? {
            let mut data = Vec::new();
            let mut buf = [0u8; 100];
            loop {
                let n = a.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
            }
            out.push((m, data));
        }
        Ok(out)
    }

    #[test]
    fn long_names_override_pax_paths_which_override_the_header() {
        let mut t = Vec::new();
        let records = pax(&[("path", b"from/pax"), ("linkpath", b"pax/target")]);
        push(
            &mut t,
            &header(b"PaxHeader", b'x', records.len() as u64),
            &records,
        );
        push(&mut t, &header(b"././@LongLink", b'L', 10), b"from/long\0");
        push(&mut t, &header(b"header/name", b'2', 0), b"");
        let records = pax(&[("path", b"second"), ("uid", b"3000000")]);
        push(
            &mut t,
            &header(b"PaxHeader", b'x', records.len() as u64),
            &records,
        );
        push(&mut t, &header(b"ignored", b'0', 2), b"hi");
        // A PAX header applies to the next entry only.
        push(&mut t, &header(b"third", b'0', 0), b"");
        let got = read_all(&end(t)).unwrap();
        let names: Vec<&[u8]> = got.iter().map(|(m, _)| m.path.as_slice()).collect();
        assert_eq!(names, [&b"from/long"[..], b"second", b"third"]);
        assert_eq!(got[0].0.link, b"pax/target");
        assert_eq!((got[1].0.uid, got[1].1.as_slice()), (3_000_000, &b"hi"[..]));
        assert_eq!(got[2].0.uid, 0);
    }

    #[test]
    fn pax_values_may_hold_newlines_and_an_empty_value_keeps_the_header() {
        let caps =
            b"\x01\x00\x00\x02\x0a\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
        let mut t = Vec::new();
        let records = pax(&[(PAX_FCAPS, caps), ("path", b""), ("uid", b"")]);
        push(
            &mut t,
            &header(b"PaxHeader", b'x', records.len() as u64),
            &records,
        );
        let mut h = header(b"bin/ping", b'0', 0);
        h.set_uid(7);
        h.set_cksum();
        push(&mut t, &h, b"");
        let got = read_all(&end(t)).unwrap();
        assert_eq!(got[0].0.fcaps.as_deref(), Some(&caps[..]));
        assert_eq!(
            (got[0].0.path.as_slice(), got[0].0.uid),
            (&b"bin/ping"[..], 7)
        );
    }

    #[test]
    fn header_only_entries_have_no_data_whatever_their_size_says() {
        // Go reads the next header right after a symlink's; a reader that skipped the size's
        // worth of bytes would see a different archive.
        let mut t = Vec::new();
        push(&mut t, &header(b"link", b'2', 512), b"");
        push(&mut t, &header(b"dir", b'5', 512), b"");
        push(&mut t, &header(b"file", b'0', 3), b"abc");
        let got = read_all(&end(t)).unwrap();
        let names: Vec<&[u8]> = got.iter().map(|(m, _)| m.path.as_slice()).collect();
        assert_eq!(names, [&b"link"[..], b"dir", b"file"]);
        assert_eq!(got[2].1, b"abc");
    }

    #[test]
    fn a_pax_size_overrides_the_header_and_global_headers_are_dropped() {
        let mut t = Vec::new();
        let records = pax(&[("size", b"5")]);
        push(
            &mut t,
            &header(b"PaxHeader", b'x', records.len() as u64),
            &records,
        );
        push(&mut t, &header(b"f", b'0', 1), b"12345");
        let records = pax(&[("path", b"global")]);
        push(
            &mut t,
            &header(b"PaxHeader", b'x', records.len() as u64),
            &records,
        );
        push(&mut t, &header(b"g", b'g', records.len() as u64), &records);
        push(&mut t, &header(b"v7dir/", 0, 0), b"");
        let got = read_all(&end(t)).unwrap();
        assert_eq!(got[0].1, b"12345");
        assert_eq!(
            got[1].0.path, b"v7dir/",
            "a global header drops what was pending"
        );
        assert_eq!(got[1].0.kind, Type::Dir);
    }

    #[test]
    fn the_archive_ends_where_go_ends_it() {
        // The stream may end where a header would start, even without zero blocks.
        let mut t = Vec::new();
        push(&mut t, &header(b"a", b'0', 1), b"x");
        assert_eq!(read_all(&t).unwrap().len(), 1);
        // Entries after two zero blocks are not read; after one, they are an error.
        let mut after = end(t.clone());
        push(&mut after, &header(b"b", b'0', 0), b"");
        assert_eq!(read_all(&after).unwrap().len(), 1);
        let mut one = t.clone();
        one.resize(one.len() + BLOCK, 0);
        push(&mut one, &header(b"b", b'0', 0), b"");
        assert!(read_all(&one).unwrap_err().contains("zero block"));
        // Truncated inside data, or inside a header.
        let mut cut = Vec::new();
        push(&mut cut, &header(b"a", b'0', 600), &[1; 600]);
        assert!(read_all(&cut[..700])
            .unwrap_err()
            .contains("inside an entry's data"));
        assert!(read_all(&cut[..100])
            .unwrap_err()
            .contains("inside a header"));
    }

    #[test]
    fn checksums_may_be_signed_and_must_match() {
        let mut h = header(b"caf\xe9", b'0', 0);
        let (_, signed) = checksums(h.as_bytes());
        h.as_old_mut().cksum = *format!("{signed:06o}\0 ").as_bytes().first_chunk().unwrap();
        let mut t = Vec::new();
        push(&mut t, &h, b"");
        assert_eq!(read_all(&end(t.clone())).unwrap()[0].0.path, b"caf\xe9");
        t[0] = b'd';
        assert_eq!(read_all(&end(t)).unwrap_err(), "header checksum mismatch");
    }

    #[test]
    fn types_containerd_does_not_unpack_are_refused() {
        for typeflag in [b'S', b'7', b'V', b'X'] {
            let mut t = Vec::new();
            push(&mut t, &header(b"f", typeflag, 0), b"");
            let e = read_all(&end(t)).unwrap_err();
            assert!(e.contains("which containerd does not unpack"), "{e}");
        }
        let mut t = Vec::new();
        let records = pax(&[("GNU.sparse.major", b"1"), ("GNU.sparse.minor", b"0")]);
        push(
            &mut t,
            &header(b"PaxHeader", b'x', records.len() as u64),
            &records,
        );
        push(&mut t, &header(b"f", b'0', 0), b"");
        let e = read_all(&end(t)).unwrap_err();
        assert!(e.contains("PAX sparse file"), "{e}");
    }

    #[test]
    fn long_names_and_pax_headers_over_their_bound_are_refused_unread() {
        for (typeflag, max, what) in [
            (b'L', MAX_LONG_NAME, "GNU long name"),
            (b'K', MAX_LONG_NAME, "GNU long link name"),
            (b'x', MAX_PAX, "PAX extended header"),
            (b'g', MAX_PAX, "PAX extended header"),
        ] {
            // Only the header is there: the size alone refuses it.
            let mut t = Vec::new();
            push(&mut t, &header(b"h", typeflag, 64 << 20), b"");
            let e = read_all(&t).unwrap_err();
            assert_eq!(
                e,
                format!("{what} of {} bytes (more than {max} are refused)", 64 << 20)
            );
        }
        let mut t = Vec::new();
        let name = vec![b'n'; MAX_LONG_NAME as usize];
        push(&mut t, &header(b"h", b'L', name.len() as u64), &name);
        push(&mut t, &header(b"f", b'0', 0), b"");
        assert_eq!(read_all(&end(t)).unwrap()[0].0.path, name);
    }

    #[test]
    fn malformed_fields_and_records_are_one_line_errors() {
        let mut h = header(b"a\nb", b'0', 0);
        h.as_old_mut().uid = *b"\n12\x01zz \0";
        h.set_cksum();
        let mut t = Vec::new();
        push(&mut t, &h, b"");
        let e = read_all(&end(t)).unwrap_err();
        assert!(e.starts_with("uid field is not an octal number: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
        for bad in [
            &b"5 a=b"[..],
            b"3 a=\n",
            b"99 path=x\n",
            b"8 =abc\n",
            b"x7 a=b\n",
            b"9 path=\0\n",
        ] {
            assert_eq!(
                pax_records(bad).unwrap_err(),
                "malformed PAX record",
                "{bad:?}"
            );
        }
        assert_eq!(
            numeric(b"\xff\xff\xff\xff\xff\xff\xff\xfe").unwrap_err(),
            "is negative"
        );
        assert_eq!(numeric(b"\x80\x00\x00\x00\x00\x00\x01\x00").unwrap(), 256);
        assert_eq!(numeric(b" 0755 \0").unwrap(), 0o755);
        assert_eq!(numeric(b"\0\0\0\0").unwrap(), 0);
    }

    #[test]
    fn quoted_names_are_escaped_and_shortened() {
        assert_eq!(quote(b"a\nb"), r#""a\\nb""#);
        let long = quote(&[b'x'; 5000]);
        assert!(
            long.chars().count() < 130 && long.ends_with("…\""),
            "{long}"
        );
        assert!(checked_path(b"../x")
            .unwrap_err()
            .contains("escapes the root"));
        assert!(checked_path(&[b'x'; PATH_MAX + 1])
            .unwrap_err()
            .contains("longer than 4096 bytes"));
        assert_eq!(checked_path(b"./a//b/").unwrap(), b"a/b");
    }
}
