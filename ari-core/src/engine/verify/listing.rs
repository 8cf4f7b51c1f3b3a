//! Reading what one side's listing command printed (see `script.rs`): every field checked, so
//! that a host printing something else is an error, never a file that passed. Paths and link
//! targets are bytes, as the filesystem has them: two names that differ only in bytes that are
//! not UTF-8 are two files.

use std::collections::BTreeMap;

/// One picked file as a side listed it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// Its place in the pick order (the seeded hash of its path).
    pub(crate) key: u64,
    /// `f` (a regular file) or `l` (a symlink).
    pub(crate) kind: char,
    /// Permission bits, in octal as find prints them.
    pub(crate) mode: String,
    /// Owner and group, numeric.
    pub(crate) owner: (u32, u32),
    /// Size in bytes.
    pub(crate) size: u64,
    /// Modification time, whole seconds since the epoch.
    pub(crate) mtime: i64,
    /// Status change time, seconds since the epoch.
    pub(crate) ctime: f64,
    /// A symlink's target, as its bytes.
    pub(crate) target: Vec<u8>,
    /// Whether the side hashed its content.
    pub(crate) hashed: bool,
}

/// What one side listed.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// The user the listing ran as.
    pub(crate) uid: u32,
    /// find's exit status.
    pub(crate) status: i32,
    /// Picked files by path from the root (`/home/ann/notes`).
    pub(crate) entries: BTreeMap<Vec<u8>, Entry>,
    /// The SHA-256 of each hashed file's content, by path.
    pub(crate) hashes: BTreeMap<Vec<u8>, String>,
}

impl Listing {
    /// Reads a listing; the error says what is wrong with it.
    pub(crate) fn read(bytes: &[u8]) -> Result<Listing, String> {
        let mut fields = bytes.split(|b| *b == 0);
        let header = fields.next().unwrap_or_default();
        let uid = std::str::from_utf8(header)
            .ok()
            .and_then(|header| header.strip_prefix("ari-verify 1 "))
            .and_then(|uid| uid.parse().ok())
            .ok_or_else(|| format!("it began with `{}`, not ari's listing header", shown(header)))?;
        let mut listing = Listing { uid, status: -1, ..Listing::default() };
        let mut status_seen = false;
        while let Some(field) = fields.next() {
            if field.is_empty() && fields.clone().all(<[u8]>::is_empty) {
                break;
            }
            if let Some(status) = field.strip_prefix(b"S ") {
                listing.status = std::str::from_utf8(status)
                    .ok()
                    .and_then(|status| status.parse().ok())
                    .ok_or_else(|| format!("bad status line `{}`", shown(field)))?;
                status_seen = true;
            } else if let Some(record) = field.strip_prefix(b"R ") {
                let (target, path) = match (fields.next(), fields.next()) {
                    (Some(target), Some(path)) => (target, path),
                    _ => return Err(format!("a record without its target and path: `{}`", shown(field))),
                };
                let entry = std::str::from_utf8(record)
                    .ok()
                    .and_then(|record| entry(record, target))
                    .ok_or_else(|| format!("bad record `{}`", shown(field)))?;
                // A path listed twice as the same file (a volume that is not mounted where the
                // job says, so that two starts reach it) is one file; listed as two, an error.
                let path = from_root(path)?;
                match listing.entries.get(&path) {
                    Some(listed) if *listed != entry => {
                        return Err(format!("the path `{}` is listed twice, as two files", shown(&path)))
                    }
                    Some(_) => {}
                    None => {
                        listing.entries.insert(path, entry);
                    }
                }
            } else if let Some((hash, path)) = hash_line(field) {
                listing.hashes.insert(from_root(path)?, hash.to_string());
            } else {
                return Err(format!("an unknown line `{}`", shown(field)));
            }
        }
        if !status_seen {
            return Err("it ended before find's status: the listing was cut short".into());
        }
        Ok(listing)
    }
}

/// `sha256sum -z`'s `HASH  PATH`.
fn hash_line(field: &[u8]) -> Option<(&str, &[u8])> {
    let hash = std::str::from_utf8(field.get(..64)?).ok().filter(|hash| is_sha256(hash))?;
    let path = field.get(64..)?.strip_prefix(b"  ")?;
    Some((hash, path))
}

/// A path as find printed it (`./home/ann`), as the backup sees it from its root (`/home/ann`).
fn from_root(path: &[u8]) -> Result<Vec<u8>, String> {
    match path.strip_prefix(b"./") {
        Some(rest) if !rest.is_empty() => Ok([b"/", rest].concat()),
        _ => Err(format!("a path `{}` that is not below the root", shown(path))),
    }
}

fn entry(record: &str, target: &[u8]) -> Option<Entry> {
    let words: Vec<&str> = record.split(' ').collect();
    let [flag, key, kind, mode, uid, gid, size, mtime, ctime] = words[..] else { return None };
    let kind = match kind {
        "f" => 'f',
        "l" => 'l',
        _ => return None,
    };
    if mode.is_empty() || !mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    let mtime: f64 = mtime.parse().ok()?;
    Some(Entry {
        key: key.parse().ok()?,
        kind,
        mode: mode.to_string(),
        owner: (uid.parse().ok()?, gid.parse().ok()?),
        size: size.parse().ok()?,
        mtime: mtime.floor() as i64,
        ctime: ctime.parse().ok()?,
        target: target.to_vec(),
        hashed: match flag {
            "H" => true,
            "-" => false,
            _ => return None,
        },
    })
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Bytes as an error or a report shows them: UTF-8 as it is, control characters and every other
/// byte escaped (`\xff`), cut at 200 characters.
pub(crate) fn shown(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.extend(chunk.valid().chars().flat_map(|c| {
            if c.is_control() || c == '\\' {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        }));
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    match out.char_indices().nth(200) {
        Some((at, _)) => format!("{}...", &out[..at]),
        None => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn a_listing_reads_its_records_targets_paths_and_hashes() {
        let text = format!(
            "ari-verify 1 0\0S 0\0R H 12 f 644 0 0 0 1700000000.5 1700000001.25\0\0./a b/c\0\
             R - 13 l 777 1000 1000 5 1700000000.0 1700000000.0\0../x\0./link\0{HASH}  ./a b/c\0"
        );
        let listing = Listing::read(text.as_bytes()).unwrap();
        assert_eq!((listing.uid, listing.status), (0, 0));
        let file = &listing.entries[&b"/a b/c".to_vec()];
        assert_eq!(
            (file.key, file.kind, file.size, file.mtime, file.hashed),
            (12, 'f', 0, 1_700_000_000, true)
        );
        assert_eq!(listing.entries[&b"/link".to_vec()].target, b"../x");
        assert_eq!(listing.entries[&b"/link".to_vec()].owner, (1000, 1000));
        assert_eq!(listing.hashes[&b"/a b/c".to_vec()], HASH);
    }

    #[test]
    fn names_that_are_not_utf8_stay_apart_and_a_path_listed_twice_is_refused() {
        let mut text = b"ari-verify 1 0\0S 0\0".to_vec();
        for name in [&b"./a\xff"[..], b"./a\xfe"] {
            text.extend_from_slice(b"R - 1 f 644 0 0 0 1 1\0\0");
            text.extend_from_slice(name);
            text.push(0);
        }
        let listing = Listing::read(&text).unwrap();
        assert_eq!(listing.entries.len(), 2);
        assert_eq!(shown(b"/a\xff\n\\"), "/a\\xff\\n\\\\");
        // The same file twice is one; another file at the same path is an error.
        text.extend_from_slice(b"R - 1 f 644 0 0 0 1 1\0\0./a\xff\0");
        assert_eq!(Listing::read(&text).unwrap().entries.len(), 2);
        text.extend_from_slice(b"R - 1 f 644 0 0 9 1 1\0\0./a\xff\0");
        assert!(Listing::read(&text).unwrap_err().contains("listed twice, as two files"));
    }

    #[test]
    fn anything_else_is_an_error() {
        for (text, why) in [
            ("", "not ari's listing header"),
            ("ari-verify 1 0\0R H 1 f 644 0 0 0 1 1\0\0./a\0", "cut short"),
            ("ari-verify 1 0\0S 0\0R H 1 c 644 0 0 0 1 1\0\0./a\0", "bad record"),
            ("ari-verify 1 0\0S 0\0R H 1 f 648 0 0 0 1 1\0\0./a\0", "bad record"),
            ("ari-verify 1 0\0S 0\0R H 1 f 644 0 0 0 1\0\0./a\0", "bad record"),
            ("ari-verify 1 0\0S 0\0R H 1 f 644 0 0 0 1 1\0\0/etc/passwd\0", "not below the root"),
            ("ari-verify 1 0\0S 0\0R H 1 f 644 0 0 0 1 1\0", "without its target"),
            ("ari-verify 1 0\0S 0\0hello\0", "unknown line"),
        ] {
            let err = Listing::read(text.as_bytes()).unwrap_err();
            assert!(err.contains(why), "{text:?}: `{why}` not in `{err}`");
        }
    }
}
