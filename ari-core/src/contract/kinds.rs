//! What a value is, checked in one place: a host name, a user name, an absolute normalised path,
//! a program, an LV name, ssh options. A setting names its kind ([`SettingKind::Text`],
//! [`SettingKind::Checked`]) and the job file's own keys use the same kinds, so every level (the
//! global config, a job file, `--set`/`--NAME`) is checked the same way, when it is parsed and
//! before anything runs. Plugins declare kinds of their own (an rdiff-backup time spec, a ZFS
//! dataset) as statics of these types.
//!
//! The guiding rule: no value may reach a command line where it could be read as an option or
//! as shell syntax, and no value may name something other than what it says (a path with `..`,
//! a host that is an option). Each check returns why a value is refused, as a fragment that
//! follows the value in a message ("`-x` must not start with `-` ...").
//!
//! [`SettingKind::Text`]: crate::contract::settings::SettingKind::Text
//! [`SettingKind::Checked`]: crate::contract::settings::SettingKind::Checked

/// A kind of text value: its name in help and docs, what it accepts, and its check. A plugin
/// declares one as a static ([`TextKind::new`]) and names it in a setting
/// ([`SettingKind::Text`](crate::contract::settings::SettingKind::Text)).
#[derive(Debug)]
pub struct TextKind {
    /// The name in help, errors and docs (`host`, `path`, `timespec`).
    pub(crate) name: &'static str,
    /// What it accepts, one line for `docs/settings.md`.
    pub(crate) accepts: &'static str,
    /// Checks a value; the error says why it is refused.
    pub(crate) check: fn(&str) -> Result<(), String>,
}

impl TextKind {
    /// The kind `name` (in help, errors and docs: `timespec`), which accepts what `accepts` says
    /// (one line for the settings reference) and checks a value with `check`, whose error says
    /// why the value is refused, as a fragment that follows the value in a message.
    pub const fn new(
        name: &'static str,
        accepts: &'static str,
        check: fn(&str) -> Result<(), String>,
    ) -> TextKind {
        TextKind { name, accepts, check }
    }

    /// Checks `value`; the error says why it is refused, as a fragment that follows the value in
    /// a message (`` `-x` must not start with `-` ``).
    pub fn check(&self, value: &str) -> Result<(), String> {
        (self.check)(value)
    }

    /// The kind's name.
    #[doc(hidden)]
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// A kind of list value, checked as a whole (ssh options, whose values follow their flags).
#[derive(Debug)]
pub struct ListKind {
    /// The name in help, errors and docs.
    pub(crate) name: &'static str,
    /// What it accepts, one line for `docs/settings.md`.
    pub(crate) accepts: &'static str,
    /// Checks a list; the error says why it is refused.
    pub(crate) check: fn(&[String]) -> Result<(), String>,
}

impl ListKind {
    /// The kind `name`, which accepts what `accepts` says and checks a list as a whole with
    /// `check` (see [`TextKind::new`]).
    pub const fn new(
        name: &'static str,
        accepts: &'static str,
        check: fn(&[String]) -> Result<(), String>,
    ) -> ListKind {
        ListKind { name, accepts, check }
    }

    /// The kind's name.
    #[doc(hidden)]
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// A host as ssh takes it: a name of letters, digits, `-` and `_` in dot-separated labels, an
/// IPv4 address, or an IPv6 address without brackets.
pub static HOST: TextKind = TextKind {
    name: "host",
    accepts: "a host name (letters, digits, `-`, `_` in dot-separated labels) or an IP address; IPv6 without brackets",
    check: check_host,
};

/// An HTTP(S) URL, as a monitoring service gives it (`ping_url`).
pub(crate) static URL: TextKind = TextKind {
    name: "url",
    accepts: "an http:// or https:// URL with a host, at most 2048 characters of RFC 3986 (others escaped as %XX); ari shows it by its scheme and host only",
    check: check_url,
};

/// Options of an `authorized_keys` line: `NAME` or `NAME="VALUE"`, comma-separated.
pub(crate) static KEY_OPTIONS: TextKind = TextKind {
    name: "authorized_keys options",
    accepts: "authorized_keys options, comma-separated, each NAME or NAME=\"VALUE\" (from=\"192.0.2.10\"), without control characters, and none that ari sets, that undoes restrict (command, pty, port-forwarding, ...) or that sets the environment",
    check: check_key_options,
};

/// The options that ari's key line sets itself, or that would undo `restrict`.
const KEY_OPTIONS_OF_ARI: &[&str] = &[
    "command",
    "restrict",
    "pty",
    "port-forwarding",
    "agent-forwarding",
    "x11-forwarding",
    "user-rc",
    "permitopen",
    "permitlisten",
    "tunnel",
];

/// Options that would change what the filter's commands are: `environment` can set PATH (which
/// program an allowed `rdiff-backup` is) or LD_PRELOAD where sshd permits user environments.
const KEY_OPTIONS_THAT_CHANGE_COMMANDS: &[&str] = &["environment"];

/// Checks authorized_keys options: names of letters, digits and `-`, each with an optional
/// double-quoted value without `"` or `\` inside, comma-separated, nothing else.
pub(crate) fn check_key_options(value: &str) -> Result<(), String> {
    check_no_control(value)?;
    let mut rest = value;
    loop {
        let name_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).unwrap_or(rest.len());
        if name_len == 0 {
            return Err("is not NAME or NAME=\"VALUE\" options, comma-separated".into());
        }
        let name = &rest[..name_len];
        if KEY_OPTIONS_OF_ARI.iter().any(|own| own.eq_ignore_ascii_case(name)) {
            return Err(format!(
                "sets `{name}`, which would undo the filter or the `restrict` that ari authorize puts on its key"
            ));
        }
        if KEY_OPTIONS_THAT_CHANGE_COMMANDS.iter().any(|option| option.eq_ignore_ascii_case(name)) {
            return Err(format!(
                "sets `{name}`, which could change which programs the filter's commands run (PATH, LD_PRELOAD); set what the host's commands need in the host's own sshd_config (SetEnv) or its profile"
            ));
        }
        rest = &rest[name_len..];
        if let Some(quoted) = rest.strip_prefix("=\"") {
            let end = quoted.find(['"', '\\']).ok_or("has a value without its closing `\"`")?;
            if quoted[end..].starts_with('\\') {
                return Err("has a `\\` in a value".into());
            }
            rest = &quoted[end + 1..];
        }
        match rest.strip_prefix(',') {
            Some(next) => rest = next,
            None if rest.is_empty() => return Ok(()),
            None => return Err("is not NAME or NAME=\"VALUE\" options, comma-separated".into()),
        }
    }
}

/// Whether `value` is an http(s) URL with a host and nothing a request line cannot hold: the
/// characters of RFC 3986 only (an HTTP client refuses others, and its error would show the
/// URL whole).
#[doc(hidden)]
pub fn check_url(value: &str) -> Result<(), String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    if value.len() > 2048 {
        return Err("is longer than 2048 characters".into());
    }
    let in_a_url = |c: char| c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c);
    if let Some(bad) = value.chars().find(|c| !in_a_url(*c)) {
        return Err(format!("holds `{}`, which a URL cannot (escape it as %XX)", bad.escape_default()));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err("names no host".into());
    }
    Ok(())
}

/// A URL as ari shows it (`ari settings`, logs, errors): its scheme and host only, since the
/// rest of a monitoring URL (a path, a query, a user and password) is often its secret.
#[doc(hidden)]
pub fn shown_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    format!("{}://{}/…", shown(scheme), shown(host))
}

/// How many of a job's files a spot check picks: a share (`1%`, `0.5%`) or a count (`500`).
pub(crate) static SAMPLE: TextKind = TextKind {
    name: "sample",
    accepts: "a share of the files, from `0.0001%` to `100%` (`1%`), or a count of files (`500`)",
    check: |text| sample(text).map(|_| ()),
};

/// A number of bytes (`1G`, `500M`, `4096`).
pub(crate) static BYTES: TextKind = TextKind {
    name: "bytes",
    accepts: "a positive number of bytes, with an optional unit K, M, G or T (powers of 1024): `1G`, `500M`, `4096`",
    check: |text| bytes(text).map(|_| ()),
};

/// How many files a spot check picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SampleSize {
    /// This many files in a million.
    PerMillion(u32),
    /// This many files.
    Count(u64),
}

/// A number of bytes, as a [`BYTES`] setting holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteCount(pub(crate) u64);

impl ByteCount {
    /// The number of bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

/// Reads a [`SAMPLE`].
pub(crate) fn sample(text: &str) -> Result<SampleSize, String> {
    if let Some(share) = text.strip_suffix('%') {
        let (whole, fraction) = share.split_once('.').unwrap_or((share, ""));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        let dot_without_digits = share.contains('.') && fraction.is_empty();
        if whole.is_empty()
            || dot_without_digits
            || !digits(whole)
            || !digits(fraction)
            || fraction.len() > 4
            || whole.len() > 3
        {
            return Err("is not a share like 1% or 0.5% (at most four decimals)".to_string());
        }
        let per_million: u32 =
            format!("{whole}{fraction:0<4}").parse().map_err(|_| "is not a share like 1%".to_string())?;
        return match per_million {
            0 => Err("picks no file: give a share above 0% or a count of at least 1".to_string()),
            1..=1_000_000 => Ok(SampleSize::PerMillion(per_million)),
            _ => Err("is more than 100%".to_string()),
        };
    }
    match text.parse::<u64>() {
        Ok(0) => Err("picks no file: give a share above 0% or a count of at least 1".to_string()),
        Ok(count) if text.bytes().all(|b| b.is_ascii_digit()) => Ok(SampleSize::Count(count)),
        _ => Err("is neither a share like 1% nor a count of files like 500".to_string()),
    }
}

/// Reads [`BYTES`].
pub(crate) fn bytes(text: &str) -> Result<u64, String> {
    let number = text.strip_suffix("iB").or_else(|| text.strip_suffix('B')).unwrap_or(text);
    let (digits, unit) = match number.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => number.split_at(at),
        None => (number, ""),
    };
    let shift = match unit {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return Err("is not a whole number of bytes like 1G, 500M or 4096".to_string()),
    };
    let value: u64 =
        digits.parse().map_err(|_| "is not a whole number of bytes like 1G, 500M or 4096".to_string())?;
    if value == 0 {
        return Err("is zero (leave the setting unset for no limit)".to_string());
    }
    value.checked_mul(1 << shift).ok_or_else(|| "is more bytes than ari counts".to_string())
}

/// How much of a store must be free for a job to start (`min_free_space`): bytes (`50G`) or a
/// share of the store's size (`10%`).
pub(crate) static FREE_SPACE: TextKind = TextKind {
    name: "free space",
    accepts: "a number of bytes with an optional unit K, M, G or T (powers of 1024): `50G`, or a share of the store's size from `0.0001%` to `100%`: `10%`",
    check: |text| free_space(text).map(|_| ()),
};

/// How much of a store must be free, as a [`FREE_SPACE`] setting holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FreeSpace {
    /// At least this many bytes.
    Bytes(u64),
    /// At least this many millionths of the store's size.
    PerMillion(u32),
}

impl FreeSpace {
    /// The bytes this asks of a store of `total` bytes (a share rounded up).
    pub(crate) fn of(self, total: u64) -> u64 {
        match self {
            FreeSpace::Bytes(bytes) => bytes,
            FreeSpace::PerMillion(share) => {
                let wanted = (u128::from(total) * u128::from(share)).div_ceil(1_000_000);
                u64::try_from(wanted).unwrap_or(u64::MAX)
            }
        }
    }
}

impl std::fmt::Display for FreeSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FreeSpace::Bytes(bytes) => f.write_str(&shown_bytes(*bytes)),
            FreeSpace::PerMillion(share) => {
                let whole = share / 10_000;
                let fraction = format!("{:04}", share % 10_000);
                let fraction = fraction.trim_end_matches('0');
                if fraction.is_empty() {
                    write!(f, "{whole}%")
                } else {
                    write!(f, "{whole}.{fraction}%")
                }
            }
        }
    }
}

/// Reads a [`FREE_SPACE`].
pub(crate) fn free_space(text: &str) -> Result<FreeSpace, String> {
    if text.ends_with('%') {
        return match sample(text) {
            Ok(SampleSize::PerMillion(share)) => Ok(FreeSpace::PerMillion(share)),
            _ => Err("is not a share of the store from 0.0001% to 100% like 10% or 2.5%".to_string()),
        };
    }
    bytes(text).map(FreeSpace::Bytes).map_err(|_| {
        "is neither a number of bytes like 50G, 500M or 4096 nor a share of the store like 10%".to_string()
    })
}

/// A number of bytes as people read it: `5.0 GiB`, `512 B`.
pub(crate) fn shown_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A user name on a remote host.
pub static USER: TextKind = TextKind {
    name: "user",
    accepts:
        "a user name: letters, digits, `_`, `.`, `-`, not starting with `-` or `.`, at most 32 characters",
    check: check_user,
};

/// An absolute, normalised path.
pub static PATH: TextKind = TextKind {
    name: "path",
    accepts: "an absolute, normalised path: starting with `/`, no `.` or `..` parts, no control characters",
    check: check_path,
};

/// A path that goes, as it is, into the key's `command="..."` and a sudoers rule (the filter's).
pub(crate) static PLAIN_PATH: TextKind = TextKind {
    name: "path",
    accepts: "an absolute, normalised path of letters, digits and `/._+-` (it goes into the key's forced command and a sudoers rule as it is)",
    check: check_plain_path,
};

/// Checks a [`PLAIN_PATH`]: a path sudo matches as one argument (no space: its rules match the
/// arguments joined by spaces) and that needs no quoting.
pub(crate) fn check_plain_path(path: &str) -> Result<(), String> {
    check_path(path)?;
    if let Some(c) =
        path.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '+' | '-')))
    {
        return Err(format!(
            "holds `{}`; this path takes letters, digits and `/._+-` only",
            c.escape_default()
        ));
    }
    Ok(())
}

/// A program: an absolute path, or a name looked up on PATH.
pub static PROGRAM: TextKind = TextKind {
    name: "program",
    accepts: "an absolute path, or a program name looked up on PATH (letters, digits, `.`, `_`, `+`, `-`; not starting with `-`)",
    check: check_program,
};

/// A job's label.
pub(crate) static LABEL: TextKind = TextKind {
    name: "label",
    accepts:
        "letters, digits, `.`, `_`, `-`, starting with a letter or digit, no `..`, at most 128 characters",
    check: check_label,
};

/// An entry of `include` or `exclude` before its backend reads it: any non-empty text without
/// control characters (what else it must be, each backend checks).
pub(crate) static ENTRY: TextKind = TextKind {
    name: "path or pattern",
    accepts: "a path or pattern, as the job's backend reads them; no control characters",
    check: check_entry,
};

/// A logical volume, `vg/lv`.
pub static VOLUME: TextKind = TextKind {
    name: "volume",
    accepts: "a logical volume as vg/lv, each a valid LVM name",
    check: check_volume,
};

/// `mount -o` options.
pub static MOUNT_OPTIONS: TextKind = TextKind {
    name: "mount options",
    accepts: "comma-separated mount options without spaces or empty items, not starting with `-`",
    check: check_mount_options,
};

/// ssh options, as on ssh's command line.
pub(crate) static SSH_OPTIONS: ListKind = ListKind {
    name: "ssh options",
    accepts: "ssh options with their values (`[-F, FILE]`, `[-o, Key=Value]`, `[-i, KEY]`); not -l or -p (use remote_user, ssh_port), nor options that stop ssh from running a command",
    check: check_ssh_options,
};

/// The most bytes [`shown`] makes of a value: a few hundred, so that an error about a value of
/// megabytes stays a line.
#[doc(hidden)]
pub const SHOWN_BYTES: usize = 256;

/// `text` as an error message shows it: control characters escaped (`\n`, `\0`), and cut to at
/// most [`SHOWN_BYTES`]: a longer value shows its start and its end around
/// `…[N bytes left out]…`. Every value an error echoes goes through here.
pub fn shown(text: &str) -> String {
    let mut whole = String::new();
    for c in text.chars() {
        let piece = escaped_char(c);
        if whole.len() + piece.len() > SHOWN_BYTES {
            return cut(text);
        }
        whole.push_str(&piece);
    }
    whole
}

/// A value too long to show whole: its start up to 160 bytes and its end up to 48, each made of
/// whole escaped characters, around how much was left out.
fn cut(text: &str) -> String {
    let (mut head, mut head_end) = (String::new(), 0);
    for (at, c) in text.char_indices() {
        let piece = escaped_char(c);
        if head.len() + piece.len() > 160 {
            break;
        }
        head.push_str(&piece);
        head_end = at + c.len_utf8();
    }
    let (mut tail, mut tail_len, mut tail_start) = (Vec::new(), 0, text.len());
    for (at, c) in text.char_indices().rev() {
        let piece = escaped_char(c);
        if at < head_end || tail_len + piece.len() > 48 {
            break;
        }
        tail_len += piece.len();
        tail.push(piece);
        tail_start = at;
    }
    tail.reverse();
    format!("{head}…[{} bytes left out]…{}", tail_start - head_end, tail.concat())
}

/// `text` with control characters escaped (`\n`, `\0`) and nothing cut: for what must be shown
/// whole, a command as `ari plan` prints it or a log line names it, never for a value in an
/// error (that is [`shown`]).
#[doc(hidden)]
pub fn escaped(text: &str) -> String {
    text.chars().map(escaped_char).collect()
}

fn escaped_char(c: char) -> String {
    if c.is_control() {
        c.escape_default().to_string()
    } else {
        c.to_string()
    }
}

/// Refuses NUL and other control characters, which no name or path of ari's needs and which
/// would cut or garble a command line and every log line that shows it.
pub fn check_no_control(text: &str) -> Result<(), String> {
    match text.chars().find(|c| c.is_control()) {
        Some('\0') => Err("holds a NUL byte, which no command line can carry".into()),
        Some(c) => Err(format!("holds the control character {}", c.escape_default())),
        None => Ok(()),
    }
}

/// Refuses NUL, which cannot be part of any argument a program receives.
pub(crate) fn check_no_nul(text: &str) -> Result<(), String> {
    if text.contains('\0') {
        Err("holds a NUL byte, which no command line can carry".into())
    } else {
        Ok(())
    }
}

/// Checks a host name or address: something ssh takes as a host, never an option.
pub(crate) fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("is empty".into());
    }
    if host.starts_with('-') {
        return Err("must not start with `-` (ssh would read it as an option)".into());
    }
    check_no_control(host)?;
    if host.len() > 253 {
        return Err("is longer than a host name can be (253 characters)".into());
    }
    if host.starts_with('[') || host.ends_with(']') {
        return Err("must be written without brackets (ari adds them where a tool needs them)".into());
    }
    if host.contains(':') {
        let (address, zone) = host.split_once('%').unwrap_or((host, ""));
        let zone_ok = zone.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        return match address.parse::<std::net::Ipv6Addr>() {
            Ok(_) if zone_ok => Ok(()),
            _ => Err("is neither a host name nor an IPv6 address".into()),
        };
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err("has an empty part between dots".into());
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))) {
            return Err(format!("holds `{}`, which is not allowed in a host name", c.escape_default()));
        }
        if label.len() > 63 {
            return Err(format!("has a part longer than 63 characters (`{label}`)"));
        }
    }
    Ok(())
}

/// Checks a user name.
pub(crate) fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty() {
        return Err("is empty".into());
    }
    if user.starts_with('-') {
        return Err("must not start with `-` (ssh would read it as an option)".into());
    }
    if let Some(c) = user.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        return Err(format!("holds `{}`, which is not allowed in a user name", c.escape_default()));
    }
    if user.starts_with('.') {
        return Err("must not start with `.`".into());
    }
    if user.len() > 32 {
        return Err("is longer than a user name can be (32 characters)".into());
    }
    // The drop-in names the user first in each rule, where sudoers reads these as its own.
    if ["ALL", "Defaults"].contains(&user) || user.ends_with("_Alias") {
        return Err(format!("is a word of sudoers' (`{user}`), not a user name ari takes"));
    }
    Ok(())
}

/// The longest path, in bytes, that Linux takes (PATH_MAX less its NUL).
const PATH_MAX: usize = 4095;
/// The longest file name, in bytes.
const NAME_MAX: usize = 255;

/// Checks an absolute normalised path.
pub(crate) fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("is empty".into());
    }
    check_no_control(path)?;
    if !path.starts_with('/') {
        return Err("is not an absolute path (it must start with `/`)".into());
    }
    // A trailing or doubled `/` names the same place (ari joins paths as paths), and existing
    // ari-backup configs have them; `.` and `..` do not.
    check_parts(path)
}

/// Refuses `.` and `..` parts and over-long paths; the path is not empty.
fn check_parts(path: &str) -> Result<(), String> {
    if path.len() > PATH_MAX {
        return Err(format!("is longer than a path can be ({PATH_MAX} bytes)"));
    }
    if path.split('/').any(|part| part == "." || part == "..") {
        return Err(format!(
            "is not normalised: `.` and `..` parts are not allowed (they would name another place than the one written, and `..` could leave a snapshot); write `{}`",
            normalised(path)
        ));
    }
    if let Some(part) = path.split('/').find(|part| part.len() > NAME_MAX) {
        return Err(format!("has a part longer than a file name can be ({NAME_MAX} bytes): `{part}`"));
    }
    Ok(())
}

/// `path` with `.`, `..`, doubled and trailing slashes resolved as text, for suggestions.
pub(crate) fn normalised(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Checks an include or exclude entry as the job file holds it: not empty, no control characters.
pub(crate) fn check_entry(entry: &str) -> Result<(), String> {
    if entry.is_empty() {
        return Err("is empty".into());
    }
    check_no_control(entry)
}

/// Whether `pattern` matches every path: a glob of nothing but `*` in each part (`*`, `**`,
/// `/*`, `/**/*`). `/` itself, which names the whole tree as a path, is not a glob.
pub fn is_whole_tree_glob(pattern: &str) -> bool {
    let parts: Vec<&str> = pattern.split('/').filter(|part| !part.is_empty()).collect();
    !parts.is_empty() && parts.iter().all(|part| part.chars().all(|c| c == '*'))
}

/// Checks a program: an absolute path, or a bare name looked up on PATH.
pub(crate) fn check_program(program: &str) -> Result<(), String> {
    if program.starts_with('/') {
        check_path(program)?;
        if program.ends_with('/') {
            return Err(format!("names a directory: write `{}`", normalised(program)));
        }
        return Ok(());
    }
    if program.is_empty() {
        return Err("is empty".into());
    }
    if program.starts_with('-') {
        return Err("must not start with `-`".into());
    }
    if program.contains('/') || program == "." || program == ".." {
        return Err("is a relative path: give an absolute path, or a bare name looked up on PATH".into());
    }
    if let Some(c) =
        program.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')))
    {
        return Err(format!("holds `{}`, which is not allowed in a program name", c.escape_default()));
    }
    if program.len() > NAME_MAX {
        return Err(format!("is longer than a file name can be ({NAME_MAX} bytes)"));
    }
    Ok(())
}

/// The longest label: it names files (`LABEL.json`, `LABEL.lock`), directories and snapshots.
const LABEL_MAX: usize = 128;

/// Checks a label: `[A-Za-z0-9][A-Za-z0-9._-]*` without `..`, since it becomes part of paths.
pub(crate) fn check_label(label: &str) -> Result<(), String> {
    let mut chars = label.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if label.is_empty() {
        Err("is empty".into())
    } else if !first_ok || !rest_ok {
        Err("must start with a letter or digit and hold only letters, digits, `.`, `_` and `-`".into())
    } else if label.contains("..") {
        Err("must not contain `..`".into())
    } else if label.len() > LABEL_MAX {
        Err(format!("is longer than {LABEL_MAX} characters"))
    } else {
        Ok(())
    }
}

/// Parts that LVM reserves in LV names.
const LVM_RESERVED: &[&str] = &[
    "_cdata", "_cmeta", "_corig", "_iorig", "_mimage", "_mlog", "_pmspare", "_rimage", "_rmeta", "_tdata",
    "_tmeta", "_vdata", "_vorigin", "_wcorig",
];

/// The longest VG or LV name LVM takes.
const LVM_NAME_MAX: usize = 127;

/// Checks a VG or LV name as LVM takes it; `what` names it in the message.
pub(crate) fn check_lvm_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("has an empty {what} name"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '_' | '.' | '-')))
    {
        return Err(format!(
            "has `{}` in its {what} name (LVM names hold letters, digits, `+`, `_`, `.`, `-`)",
            c.escape_default()
        ));
    }
    if name.starts_with('-') {
        return Err(format!("has a {what} name starting with `-`"));
    }
    if name == "." || name == ".." {
        return Err(format!("has the {what} name `{name}`, which LVM reserves"));
    }
    if what == "logical volume" {
        if name.starts_with("snapshot") || name.starts_with("pvmove") {
            return Err(format!(
                "has a {what} name starting with `snapshot` or `pvmove`, which LVM reserves"
            ));
        }
        if let Some(reserved) = LVM_RESERVED.iter().find(|r| name.contains(*r)) {
            return Err(format!("has `{reserved}` in its {what} name, which LVM reserves"));
        }
    }
    if name.len() > LVM_NAME_MAX {
        return Err(format!("has a {what} name longer than {LVM_NAME_MAX} characters"));
    }
    Ok(())
}

/// Checks a logical volume, `vg/lv`.
pub(crate) fn check_volume(volume: &str) -> Result<(), String> {
    let Some((vg, lv)) = volume.split_once('/') else {
        return Err("is not of the form vg/lv".into());
    };
    if volume.starts_with("/dev/") {
        return Err("is a device path: write the volume as vg/lv".into());
    }
    check_lvm_name("volume group", vg)?;
    check_lvm_name("logical volume", lv)
}

/// Checks `mount -o` options.
pub(crate) fn check_mount_options(options: &str) -> Result<(), String> {
    check_no_control(options)?;
    if options.is_empty() || options.split(',').any(str::is_empty) {
        return Err("has an empty option (write options as `ro,noatime`)".into());
    }
    if options.chars().any(char::is_whitespace) {
        return Err("holds whitespace (write options as `ro,noatime`)".into());
    }
    if options.starts_with('-') {
        return Err("must not start with `-`".into());
    }
    Ok(())
}

/// ssh's flags without a value.
const SSH_FLAGS: &str = "46AaCgKknqTtvXxYy";
/// ssh's options that take a value.
const SSH_WITH_VALUE: &str = "BbcDEeFIiJLmoPRSw";

/// Checks ssh options: every word an option or the value of the one before, and none that
/// fights ari (`-l`, `-p`: use the settings) or stops ssh from running the command.
pub(crate) fn check_ssh_options(options: &[String]) -> Result<(), String> {
    let mut words = options.iter();
    while let Some(word) = words.next() {
        check_no_control(word).map_err(|e| format!("`{}` {e}", word.escape_default()))?;
        let Some(letters) = word.strip_prefix('-').filter(|l| !l.is_empty() && !l.starts_with('-')) else {
            return Err(format!(
                "`{word}` is not an ssh option (each word is an option like -F or -o, or the value of the one before it)"
            ));
        };
        for (i, letter) in letters.char_indices() {
            match letter {
                'l' | 'p' => {
                    return Err(format!(
                        "`{word}`: set {} instead of passing -{letter}",
                        if letter == 'l' { "remote_user" } else { "ssh_port" }
                    ))
                }
                'f' | 'G' | 'N' | 'O' | 'Q' | 'V' | 'W' | 's' | 'M' => {
                    return Err(format!(
                        "`{word}`: -{letter} changes what ssh does with a command, and ari needs ssh to run its commands"
                    ))
                }
                c if SSH_FLAGS.contains(c) => {}
                c if SSH_WITH_VALUE.contains(c) => {
                    // The value is the rest of the word, or the next word.
                    if i + 1 == letters.len() {
                        match words.next() {
                            Some(value) => check_no_control(value)
                                .map_err(|e| format!("the value of `{word}` {e}"))?,
                            None => return Err(format!("`{word}` needs a value after it")),
                        }
                    }
                    break;
                }
                c => return Err(format!("`{word}`: -{c} is not an ssh option")),
            }
        }
    }
    Ok(())
}

/// `2W3D`: numbers, each with a unit (`s`, `m`, `h`, `D`, `W`, `M` = 30 days, `Y` = 365 days),
/// as rdiff-backup reads intervals and `ari restore --at` takes them; in seconds. None for
/// anything else, or past what an i64 holds. The one reader of the form: the engine's `--at`
/// and rdiff's `remove_older_than_timespec` both read with it.
pub fn interval_seconds(text: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'D' => 86_400,
            'W' => 7 * 86_400,
            'M' => 30 * 86_400,
            'Y' => 365 * 86_400,
            _ => return None,
        };
        let n: i64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
    }
    (digits.is_empty() && !text.is_empty()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_as_rdiff_backup_reads_them() {
        assert_eq!(interval_seconds("2W3D"), Some(17 * 86_400));
        assert_eq!(interval_seconds("1Y"), Some(365 * 86_400));
        assert_eq!(interval_seconds("1M"), Some(30 * 86_400));
        for bad in ["", "D", "3", "3d", "3D2", "99999999999999999999Y"] {
            assert_eq!(interval_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn urls_are_http_with_a_host() {
        assert!(check_url("https://hc-ping.com/0f6c-uuid").is_ok());
        assert!(check_url("http://127.0.0.1:8000/ping/x?y=1").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "https:///x",
            "http://:80/x",
            "https://a b",
            "hc-ping.com/x",
            "https://x\n",
            "https://x/a|b",
            "https://x/{uuid}",
            "https://x/\u{e9}",
            "https://x/a\"b",
        ] {
            assert!(check_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_are_shown_by_their_scheme_and_host() {
        assert_eq!(shown_url("https://hc-ping.com/abc-uuid"), "https://hc-ping.com/…");
        assert_eq!(shown_url("https://user:pw@hc.example:8000/ping/abc?x=1"), "https://hc.example:8000/…");
        assert_eq!(shown_url("http://[::1]:80#frag"), "http://[::1]:80/…");
        assert_eq!(shown_url("no scheme/secret"), "://no scheme/…");
    }

    #[track_caller]
    fn check(kind: &TextKind, ok: &[&str], bad: &[(&str, &str)]) {
        for value in ok {
            assert_eq!((kind.check)(value), Ok(()), "{}: {value:?}", kind.name);
        }
        for (value, why) in bad {
            match (kind.check)(value) {
                Ok(()) => panic!("{}: {value:?} was accepted", kind.name),
                Err(err) => assert!(err.contains(why), "{}: {value:?}: `{why}` not in `{err}`", kind.name),
            }
        }
    }

    #[test]
    fn values_are_shown_escaped_and_at_most_a_few_hundred_bytes() {
        assert_eq!(shown("a\nb\0c\u{1b}"), "a\\nb\\u{0}c\\u{1b}");
        let exact = "é".repeat(SHOWN_BYTES / 2);
        assert_eq!(shown(&exact), exact, "{SHOWN_BYTES} bytes are shown whole");
        let long = format!("{}{}", "h".repeat(1_000_000), "t".repeat(1_000_000));
        let cut = shown(&long);
        assert_eq!(cut, format!("{}…[1999792 bytes left out]…{}", "h".repeat(160), "t".repeat(48)));
        assert!(cut.len() <= SHOWN_BYTES);
        assert_eq!(shown(&cut), cut, "what is shown is shown the same again");
        // Cut between whole characters and whole escapes, never inside one.
        let controls = "\u{1b}".repeat(1000);
        let cut = shown(&controls);
        assert!(cut.starts_with(&"\\u{1b}".repeat(26)) && cut.ends_with("\\u{1b}"), "{cut}");
        assert!(cut.len() <= SHOWN_BYTES, "{}", cut.len());
        assert_eq!(escaped(&long).len(), long.len(), "escaped cuts nothing");
    }

    #[test]
    fn hosts() {
        check(
            &HOST,
            &[
                "db",
                "db-1.example.com",
                "10.0.0.1",
                "::1",
                "fe80::1%eth0",
                "2001:db8::1",
                "my_alias",
                "localhost",
            ],
            &[
                ("", "is empty"),
                ("-oProxyCommand=x", "must not start with `-`"),
                ("a b", "holds ` `"),
                ("x;y", "holds `;`"),
                ("a..b", "empty part"),
                ("[::1]", "without brackets"),
                ("::g", "neither a host name nor an IPv6 address"),
                ("a\0b", "NUL byte"),
                ("user@host", "holds `@`"),
            ],
        );
    }

    #[test]
    fn users() {
        check(
            &USER,
            &["root", "backup_user", "b.k-1"],
            &[
                ("", "is empty"),
                ("-oProxyCommand=touch /tmp/x", "must not start with `-`"),
                ("x;touch /tmp/x;", "holds `;`"),
                ("a b", "holds ` `"),
                ("$(id)", "holds `$`"),
                (".hidden", "must not start with `.`"),
                (&"u".repeat(33), "longer than"),
                ("ALL", "a word of sudoers'"),
                ("Defaults", "a word of sudoers'"),
                ("User_Alias", "a word of sudoers'"),
            ],
        );
    }

    #[test]
    fn plain_paths() {
        check(
            &PLAIN_PATH,
            &["/usr/local/lib/ari-backup/ssh-filter", "/opt/ari+x/f_1.sh"],
            &[
                ("/usr/local/lib/ari filter", "holds ` `"),
                ("/x\"y", "holds `\\\"`"),
                ("/x'y", "holds `\\'`"),
                ("relative", "absolute"),
            ],
        );
    }

    #[test]
    fn paths() {
        check(
            &PATH,
            &["/", "/var/lib/ari-backup", "/srv/with space", "/a-b_c.d", "/backups/", "/srv//data"],
            &[
                ("", "is empty"),
                ("-x", "not an absolute path"),
                ("local/path", "not an absolute path"),
                ("/srv/./data", "write `/srv/data`"),
                ("/srv/data/../data", "write `/srv/data`"),
                ("/a\nb", "control character"),
                (&format!("/{}", "x".repeat(256)), "longer than a file name"),
                (&"/xxxxxxx".repeat(600), "longer than a path"),
            ],
        );
    }

    #[test]
    fn globs_of_the_whole_tree() {
        assert!(is_whole_tree_glob("*") && is_whole_tree_glob("**") && is_whole_tree_glob("/***"));
        assert!(!is_whole_tree_glob("/") && !is_whole_tree_glob("") && !is_whole_tree_glob("/*/x"));
    }

    #[test]
    fn free_space_is_bytes_or_a_share_of_the_store() {
        let check = |text: &str, expected: Result<FreeSpace, ()>| {
            assert_eq!(free_space(text).map_err(|_| ()), expected, "{text}");
        };
        check("50G", Ok(FreeSpace::Bytes(50 << 30)));
        check("4096", Ok(FreeSpace::Bytes(4096)));
        check("10%", Ok(FreeSpace::PerMillion(100_000)));
        check("2.5%", Ok(FreeSpace::PerMillion(25_000)));
        check("100%", Ok(FreeSpace::PerMillion(1_000_000)));
        for bad in ["", "0", "0%", "101%", "-5G", "5X", "%", "1.%", "10 %", "1e3", "G"] {
            check(bad, Err(()));
        }
        assert_eq!(FreeSpace::PerMillion(100_000).of(50 << 30), 5 << 30);
        assert_eq!(FreeSpace::PerMillion(1).of(3), 1, "a share is rounded up");
        assert_eq!(FreeSpace::PerMillion(1_000_000).of(u64::MAX), u64::MAX);
        assert_eq!(FreeSpace::Bytes(7).of(1), 7);
        assert_eq!(FreeSpace::PerMillion(25_000).to_string(), "2.5%");
        assert_eq!(FreeSpace::PerMillion(100_000).to_string(), "10%");
        assert_eq!(FreeSpace::Bytes(50 << 30).to_string(), "50.0 GiB");
        assert_eq!(shown_bytes(512), "512 B");
        assert_eq!(shown_bytes(3_435_973_837), "3.2 GiB");
    }

    #[test]
    fn samples_and_byte_counts() {
        assert_eq!(sample("1%"), Ok(SampleSize::PerMillion(10_000)));
        assert_eq!(sample("0.0001%"), Ok(SampleSize::PerMillion(1)));
        assert_eq!(sample("100%"), Ok(SampleSize::PerMillion(1_000_000)));
        assert_eq!(sample("500"), Ok(SampleSize::Count(500)));
        for (bad, why) in [
            ("0%", "picks no file"),
            ("0", "picks no file"),
            ("101%", "more than 100%"),
            ("0.00001%", "at most four decimals"),
            ("%", "not a share"),
            ("1.%", "is not a share"),
            ("-5", "neither a share"),
            ("+5", "neither a share"),
            ("5 %", "not a share"),
            ("", "neither a share"),
        ] {
            let err = sample(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: `{why}` not in `{err}`");
        }
        assert_eq!(bytes("4096"), Ok(4096));
        assert_eq!(bytes("1G"), Ok(1 << 30));
        assert_eq!(bytes("500MiB"), Ok(500 << 20));
        assert_eq!(bytes("2k"), Ok(2048));
        for bad in ["0", "", "1X", "-1G", "1.5G", "99999999999T", "G"] {
            assert!(bytes(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn programs() {
        check(
            &PROGRAM,
            &["/usr/bin/ssh", "ssh", "rdiff-backup", "python3.11"],
            &[
                ("", "is empty"),
                ("-x", "must not start"),
                ("bin/ssh", "relative path"),
                ("..", "relative path"),
                (".", "relative path"),
                ("a b", "holds ` `"),
                ("/usr/bin/", "names a directory"),
            ],
        );
    }

    #[test]
    fn labels() {
        check(
            &LABEL,
            &["db", "db-server.example_1"],
            &[
                ("", "is empty"),
                ("../etc", "must start with a letter"),
                ("a/b", "must start with a letter"),
                ("a..b", "`..`"),
                (&"l".repeat(129), "longer than 128"),
            ],
        );
    }

    #[test]
    fn volumes() {
        check(
            &VOLUME,
            &["vg0/root", "vg_1/my.lv+x"],
            &[
                ("root", "vg/lv"),
                ("/dev/vg0/root", "device path"),
                ("vg0/", "empty logical volume"),
                ("-vg/root", "starting with `-`"),
                ("vg0/root/x", "`/`"),
                ("vg0/snapshot1", "reserves"),
                ("vg0/a_tmeta", "reserves"),
                ("vg 0/root", "` `"),
            ],
        );
    }

    #[test]
    fn mount_options() {
        check(
            &MOUNT_OPTIONS,
            &["ro", "noatime,ro", "context=system_u:object_r:tmp_t:s0"],
            &[
                ("", "empty option"),
                ("ro,,x", "empty option"),
                ("ro x", "whitespace"),
                ("-x", "must not start"),
            ],
        );
    }

    #[test]
    fn ssh_options() {
        let check = |words: &[&str], expected: Result<(), &str>| {
            let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            match (check_ssh_options(&words), expected) {
                (Ok(()), Ok(())) => {}
                (Err(err), Err(why)) => assert!(err.contains(why), "{words:?}: `{why}` not in `{err}`"),
                (got, _) => panic!("{words:?}: {got:?}"),
            }
        };
        check(&[], Ok(()));
        check(&["-F", "/etc/ari/ssh config"], Ok(()));
        check(&["-oProxyCommand=ssh -W %h:%p bastion"], Ok(()));
        check(&["-o", "StrictHostKeyChecking=yes", "-4", "-i", "/root/.ssh/backup"], Ok(()));
        check(&["-Ci", "/k"], Ok(()));
        check(&["-F"], Err("needs a value"));
        check(&["example.com"], Err("is not an ssh option"));
        check(&["--", "x"], Err("is not an ssh option"));
        check(&["-p", "22"], Err("set ssh_port"));
        check(&["-l", "root"], Err("set remote_user"));
        check(&["-N"], Err("changes what ssh does"));
        check(&["-Z"], Err("not an ssh option"));
        check(&["-o", "a\nb"], Err("control character"));
    }

    #[test]
    fn normalising_for_suggestions() {
        assert_eq!(normalised("/srv/./data/../x//y/"), "/srv/x/y");
        assert_eq!(normalised("/.."), "/");
    }
}

#[cfg(test)]
mod key_options_tests {
    use super::*;

    #[test]
    fn key_options_are_names_with_quoted_values_and_none_of_aris() {
        for good in [
            "from=\"192.0.2.10\"",
            "from=\"10.0.0.0/8,!10.0.0.1\",no-touch-required",
            "expiry-time=\"20271231\"",
        ] {
            assert!(check_key_options(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "from=\"x",
            "from=x",
            "a b",
            "from=\"a\\\"b\"",
            "command=\"sh\"",
            "pty",
            "environment=\"PATH=/tmp\"",
            "from=\"x\",Environment=\"LD_PRELOAD=/tmp/x.so\"",
            "x,",
            "from=\"x\" ssh-ed25519 AAAA",
        ] {
            assert!(check_key_options(bad).is_err(), "{bad}");
        }
    }
}
