//! The fake `zfs send` stream and `zfs receive -s` resume token: the two formats that the
//! sending and the receiving side of the fake (one `ari-fake` process each) must agree on.
//! [`crate::fakes`] describes both in its module documentation.

use serde::{Deserialize, Serialize};

/// The first word of a stream's header line.
pub const STREAM_MAGIC: &str = "ARI-FAKE-ZFS-STREAM";

/// The trailer line that ends a whole stream.
pub const STREAM_END: &str = "END";

/// Every byte of a snapshot's payload.
pub const PAYLOAD_BYTE: u8 = b'.';

/// The header line of a stream, after [`STREAM_MAGIC`] and a space, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamHeader {
    /// The sending dataset, `pool/fs`.
    pub dataset: String,
    /// Sent with `-w`: the receiver records `received_raw=yes`.
    pub raw: bool,
    /// The GUID of the incremental source (`-I FROM`, or the `fromguid` of a resume token);
    /// `None` for a full stream.
    pub from_guid: Option<u64>,
    /// The snapshots sent, oldest first; each one's source is the one before it, the first
    /// one's is `from_guid`.
    pub snapshots: Vec<StreamSnapshot>,
    /// The payload of each snapshot, in bytes, as [`crate::fakes::State::send_payload_bytes`]
    /// was when the stream was made.
    pub payload_bytes: u64,
    /// For a stream of `zfs send -t`: how much of the first snapshot's payload the receiver
    /// already holds, and so does not come again.
    #[serde(default)]
    pub resume_bytes: Option<u64>,
}

/// One snapshot in a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSnapshot {
    /// The part after `@`.
    pub name: String,
    pub guid: u64,
    /// Epoch seconds.
    pub creation: i64,
}

impl StreamHeader {
    /// The header line, newline included.
    pub fn line(&self) -> String {
        let json = serde_json::to_string(self).expect("a stream header always serializes");
        format!("{STREAM_MAGIC} {json}\n")
    }

    /// Reads a header line (without its newline); `None` when it is not one.
    pub fn parse(line: &str) -> Option<StreamHeader> {
        let json = line.strip_prefix(STREAM_MAGIC)?.strip_prefix(' ')?;
        serde_json::from_str(json).ok()
    }

    /// The payload bytes of the snapshot at `index` that this stream carries.
    pub fn payload_of(&self, index: usize) -> u64 {
        match (index, self.resume_bytes) {
            (0, Some(done)) => self.payload_bytes.saturating_sub(done),
            _ => self.payload_bytes,
        }
    }

    /// The GUID of the source of the snapshot at `index`.
    pub fn source_of(&self, index: usize) -> Option<u64> {
        match index {
            0 => self.from_guid,
            _ => Some(self.snapshots[index - 1].guid),
        }
    }

    /// The whole stream's length in bytes: what `zfs send -nv` estimates.
    pub fn stream_len(&self) -> u64 {
        let payload: u64 = (0..self.snapshots.len()).map(|index| self.payload_of(index)).sum();
        self.line().len() as u64 + payload + STREAM_END.len() as u64 + 1
    }
}

/// What a `receive_resume_token` names: the fields of OpenZFS's token nvlist that the fake
/// uses, in the order OpenZFS prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeToken {
    /// The GUID of the incremental source; `None` for a full stream.
    pub fromguid: Option<u64>,
    /// Always 1 in the fake, which has no objects.
    pub object: u64,
    /// Equal to `bytes` in the fake.
    pub offset: u64,
    /// How much of the snapshot's payload was received.
    pub bytes: u64,
    pub toguid: u64,
    /// The snapshot being received, as the sender names it: `pool/fs@snap`.
    pub toname: String,
    /// The stream was raw (`zfs send -w`).
    pub rawok: bool,
}

/// The only token version OpenZFS knows.
const TOKEN_VERSION: u32 = 1;

impl ResumeToken {
    /// The token as `zfs get receive_resume_token` shows it: `1-CHECKSUM-LENGTH-PAYLOAD`,
    /// all lowercase hex, as OpenZFS's are (whose payload is a compressed nvlist; the fake's
    /// is JSON).
    pub fn encode(&self) -> String {
        let json = serde_json::to_string(self).expect("a resume token always serializes");
        let hex: String = json.bytes().map(|byte| format!("{byte:02x}")).collect();
        format!("{TOKEN_VERSION}-{:x}-{:x}-{hex}", checksum(json.as_bytes()), json.len())
    }

    /// Reads a token; the error is OpenZFS's reason, as in `cannot resume send: REASON`.
    pub fn decode(token: &str) -> Result<ResumeToken, String> {
        let invalid = || "resume token is corrupt (invalid format)".to_owned();
        let mut parts = token.splitn(4, '-');
        let (Some(version), Some(sum), Some(length), Some(hex)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let version: u32 = version.parse().map_err(|_| invalid())?;
        let sum = u64::from_str_radix(sum, 16).map_err(|_| invalid())?;
        let length = usize::from_str_radix(length, 16).map_err(|_| invalid())?;
        if version != TOKEN_VERSION {
            return Err(format!("resume token is corrupt (invalid version {version})"));
        }
        let bytes = (0..hex.len() / 2)
            .map(|index| u8::from_str_radix(hex.get(index * 2..index * 2 + 2).unwrap_or("zz"), 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| "resume token is corrupt (payload is not hex-encoded)".to_owned())?;
        if checksum(&bytes) != sum {
            return Err("resume token is corrupt (incorrect checksum)".to_owned());
        }
        if bytes.len() != length {
            return Err("resume token is corrupt (decompression failed)".to_owned());
        }
        serde_json::from_slice(&bytes)
            .map_err(|_| "resume token is corrupt (nvlist_unpack failed)".to_owned())
    }

    /// The token's contents as `zfs send -nvt` prints them, OpenZFS's `nvlist_print`.
    pub fn contents(&self) -> String {
        let mut text = String::from("resume token contents:\nnvlist version: 0\n");
        if let Some(fromguid) = self.fromguid {
            text.push_str(&format!("\tfromguid = {fromguid:#x}\n"));
        }
        text.push_str(&format!(
            "\tobject = {:#x}\n\toffset = {:#x}\n\tbytes = {:#x}\n\ttoguid = {:#x}\n\ttoname = {}\n",
            self.object, self.offset, self.bytes, self.toguid, self.toname
        ));
        if self.rawok {
            text.push_str("\trawok = 1\n");
        }
        text
    }
}

/// FNV-1a, 64 bits: the token's checksum, and the seed of new snapshots' GUIDs.
pub fn checksum(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3))
}

/// A size as OpenZFS's `zfs_nicebytes` shows it: `512B`, `1.50M`, `10G`.
pub fn nice_bytes(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "K", "M", "G", "T", "P", "E"];
    let mut index = 0;
    let mut whole = bytes;
    while whole >= 1024 && index < UNITS.len() - 1 {
        whole /= 1024;
        index += 1;
    }
    let unit = UNITS[index];
    let base = 1u64 << (10 * index);
    if index == 0 || bytes.is_multiple_of(base) {
        return format!("{whole}{unit}");
    }
    let value = bytes as f64 / base as f64;
    // As many decimals as fit in five characters.
    (0..=2)
        .rev()
        .map(|decimals| format!("{value:.decimals$}{unit}"))
        .find(|text| text.len() <= 5)
        .unwrap_or_else(|| format!("{value:.0}{unit}"))
}

#[cfg(test)]
mod unit {
    use super::*;

    fn token() -> ResumeToken {
        ResumeToken {
            fromguid: Some(0xabc),
            object: 1,
            offset: 10,
            bytes: 10,
            toguid: 0x1234_5678_9abc_def0,
            toname: "pool/src@b".to_owned(),
            rawok: true,
        }
    }

    #[test]
    fn a_token_reads_back_and_holds_only_hex_and_dashes() {
        let text = token().encode();
        assert!(text.starts_with("1-"), "{text}");
        assert!(
            text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-'),
            "{text}"
        );
        assert_eq!(ResumeToken::decode(&text), Ok(token()));
    }

    #[test]
    fn corrupt_tokens_say_why_as_openzfs_does() {
        let good = token().encode();
        let check = |text: &str, reason: &str| {
            assert_eq!(
                ResumeToken::decode(text),
                Err(format!("resume token is corrupt ({reason})")),
                "{text}"
            )
        };
        check("garbage", "invalid format");
        check(&good.replacen("1-", "2-", 1), "invalid version 2");
        check(&format!("{good}zz"), "payload is not hex-encoded");
        check(&format!("{}0", &good[..good.len() - 1]), "incorrect checksum");
    }

    #[test]
    fn contents_print_like_nvlist_print() {
        assert_eq!(
            token().contents(),
            "resume token contents:\nnvlist version: 0\n\tfromguid = 0xabc\n\tobject = 0x1\n\
             \toffset = 0xa\n\tbytes = 0xa\n\ttoguid = 0x123456789abcdef0\n\ttoname = pool/src@b\n\trawok = 1\n"
        );
    }

    #[test]
    fn nice_bytes_as_zfs_nicebytes() {
        for (bytes, text) in
            [(0, "0B"), (512, "512B"), (1024, "1K"), (1536, "1.50K"), (10 << 30, "10G"), (1_000_000, "977K")]
        {
            assert_eq!(nice_bytes(bytes), text, "{bytes}");
        }
    }
}
