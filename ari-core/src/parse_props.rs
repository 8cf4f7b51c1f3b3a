//! Property tests of ari-core's parsing: job files, the global config, key paths, every value
//! kind and shell quoting, over arbitrary text and over YAML-ish text built from a grammar of
//! the pieces that break parsers (brackets, quotes, indentation, `---`, a byte order mark, NUL,
//! control characters, long runs of `[` and `{`).
//!
//! Each property runs a fixed number of cases from a fixed seed, so that a run is the same on
//! every machine and a failure is reproduced by running the test again; proptest then prints the
//! smallest input it shrank the failure to. As a unit test of ari-core, only core's own
//! settings are registered here and no backend: `backend:` is always refused, which the
//! properties allow for.

use std::path::Path;

use crate::contract::job::Job;
use crate::contract::kinds;
use crate::contract::settings::{self, SettingKind, Value};
use crate::contract::step::Program;
use crate::engine::config::GlobalConfig;
use crate::ConfigError;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// The seed of every property here: change it to explore, never to make a failure go away.
const SEED: u64 = 0x00a1_b4c6_0000_0009;

fn config(cases: u32) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(SEED), failure_persistence: None, ..Config::default() }
}

const JOB_PATH: &str = "/etc/ari-backup/jobs.d/fuzz.yaml";
const CONFIG_PATH: &str = "/etc/ari-backup/ari-backup.conf.yaml";

/// Keys a job file or config may hold, some misspelt, some of plugins not linked here.
const KEYS: &[&str] = &[
    "label",
    "backend",
    "source_hostname",
    "include",
    "exclude",
    "snapshot",
    "volumes",
    "pre",
    "after_snapshot",
    "post",
    "command",
    "host",
    "when",
    "name",
    "mount_point",
    "mount_options",
    "ssh_port",
    "ssh_options",
    "remote_user",
    "ssh_path",
    "max_retries",
    "retry_interval",
    "command_timeout",
    "state_dir",
    "jobs_dir",
    "backup_store_path",
    "lablel",
    "? complex",
    "<<",
    "\"quoted key\"",
    "'single'",
    "[a, b]",
    "{k: v}",
    "1",
    "~",
];

/// Values, good and hostile.
const VALUES: &[&str] = &[
    "db",
    "localhost",
    "/etc",
    "/var/lib/mysql",
    "/srv/./x",
    "/srv/../etc",
    "..",
    "-oProxyCommand=touch /tmp/x",
    "-oX",
    "$(id)",
    "`id`",
    "{a,b}",
    "a;b",
    "'it''s'",
    "\"a\\0b\"",
    "\"\\x00\"",
    "\"\\u0007\"",
    "\"unterminated",
    "'unterminated",
    "[/etc, /srv]",
    "{name: vg0/root, mount_point: /}",
    "- command: [echo, hi]",
    "[echo, \"{label}\"]",
    "always",
    "success",
    "failure",
    "true",
    "no",
    "null",
    "~",
    "0",
    "-1",
    "2222",
    "99999999999999999999999",
    "1e400",
    "0x1F",
    ".nan",
    "30s",
    "1h 30m",
    "0s",
    "&anchor x",
    "*anchor",
    "*undefined",
    "!!str 5",
    "!!binary aGk=",
    "!custom x",
    "|",
    "|-",
    ">+",
    "# comment",
    "%YAML 1.2",
    "vg0/root",
    "/dev/vg0/root",
    "ro,noatime",
];

/// Punctuation and layout.
const PIECES: &[&str] = &[
    "\n",
    "\n  ",
    "\n    ",
    "\n\t",
    ": ",
    ":",
    "- ",
    "-",
    "? ",
    "[",
    "]",
    "{",
    "}",
    ",",
    ", ",
    "\"",
    "'",
    "#",
    " #",
    "|",
    ">",
    "&",
    "*",
    "!",
    "%",
    "@",
    "`",
    "\\",
    "\r\n",
    "\r",
    "\n---\n",
    "---",
    "\n...\n",
    "\u{feff}",
    "\0",
    "\u{7}",
    "\u{1b}[31m",
    "\u{85}",
    "\u{2028}",
    "\u{fffd}",
    "é",
    "🦀",
    "\t",
];

/// What to repeat into a long run.
const RUNS: &[&str] = &["[", "{", "{a: ", "[a, ", "- ", "  ", "&a [", "!t {", "\"", "'", "\n"];

/// One piece of YAML-ish text.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(|k| format!("{k}: ")),
        3 => prop::sample::select(VALUES).prop_map(str::to_string),
        4 => prop::sample::select(PIECES).prop_map(str::to_string),
        2 => "[a-z0-9/._-]{0,12}",
        1 => (1usize..200, prop::sample::select(RUNS)).prop_map(|(n, run)| run.repeat(n)),
        1 => (60usize..70, prop::sample::select(&["[", "{"][..])).prop_map(|(n, open)| {
            let close = if open == "[" { "]" } else { "}" };
            format!("x: {}1{}", open.repeat(n), close.repeat(n))
        }),
        1 => (0u32..32).prop_map(|c| char::from_u32(c).unwrap().to_string()),
        1 => any::<char>().prop_map(String::from),
        1 => (1usize..5000).prop_map(|n| "x".repeat(n)),
    ]
}

/// YAML-ish text from the grammar.
fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..40).prop_map(|pieces| pieces.concat())
}

/// Job files that parse with only core's settings registered.
const GOOD_JOBS: &[&str] = &[
    "include: [/etc]\n",
    "#!/usr/bin/env -S ari run\nlabel: db-server\nsource_hostname: db.example.com\ninclude: [/etc, /var/lib/mysql]\nexclude: [/var/lib/mysql/tmp, '**/*.tmp']\nremote_user: backup\nssh_port: 2222\npre:\n  - command: mysqldump --all-databases > /var/backups/mysql.sql\n    host: db.example.com\npost:\n  - command: [rm, -f, /var/backups/mysql.sql]\n    host: db.example.com\n    when: success\n",
    "label: web\ninclude:\n  - /srv/www\n  - /etc/nginx\nexclude:\n  - /srv/www/cache\nssh_options: [-F, /etc/ari-backup/ssh_config]\nmax_retries: 3\ncommand_timeout: 2h\n",
    "label: x\ninclude: [/etc]\npost:\n  - {command: \"echo done\", when: always}\n  - command: [logger, -t, ari, \"{label}\"]\n    host: localhost\n    when: failure\n",
];

/// A good job with pieces of the grammar spliced in at chosen places.
fn mutated_job() -> impl Strategy<Value = String> {
    (prop::sample::select(GOOD_JOBS), prop::collection::vec((any::<prop::sample::Index>(), piece()), 1..6))
        .prop_map(|(job, splices)| {
            let mut text = job.to_string();
            for (at, piece) in splices {
                let mut at = at.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.insert_str(at, &piece);
            }
            text
        })
}

/// Every kind of input the parsers get here.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![2 => any::<String>(), 3 => yamlish(), 3 => mutated_job()]
}

/// The last line a position may name: YAML counts more line breaks than `\n`, and libyaml puts
/// the end of a text without a final line break at the start of the line after it.
fn lines_of(text: &str) -> usize {
    let is_break = |c: char| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
    let breaks = text.chars().filter(|c| is_break(*c)).count();
    if text.ends_with(is_break) {
        breaks + 1
    } else {
        breaks + 2
    }
}

/// The errors of a file (one per line, when it has several): each names the file first, its
/// position is in the file, and it shows control characters escaped.
fn check_error(err: &ConfigError, path: &str, text: &str) -> Result<(), TestCaseError> {
    let shown = err.to_string();
    prop_assert_eq!(shown.lines().count(), 1 + err.others.len(), "one line per error: {:?}", shown);
    for line in shown.lines() {
        prop_assert!(line.starts_with(&format!("{path}:")), "error does not start with the path: {shown}");
        prop_assert!(!line.chars().any(char::is_control), "a control character in the error: {shown:?}");
    }
    let at = |err: &ConfigError| err.position.unwrap_or((usize::MAX, usize::MAX));
    prop_assert!(
        std::iter::once(err).chain(&err.others).zip(&err.others).all(|(a, b)| at(a) <= at(b)),
        "errors out of file order: {shown}"
    );
    for err in std::iter::once(err).chain(&err.others) {
        prop_assert_eq!(err.file.as_deref(), Some(Path::new(path)));
        if let Some((line, column)) = err.position {
            prop_assert!(line >= 1 && column >= 1, "position {line}:{column}: {shown}");
            prop_assert!(line <= lines_of(text), "line {line} of {} lines: {shown}", lines_of(text));
        }
    }
    Ok(())
}

/// A value the file set holds to its setting's kind.
fn check_value(name: &str, value: &Value) -> Result<(), TestCaseError> {
    let def = settings::registry()[name];
    let nul_free = |s: &str| !s.contains('\0');
    match (&def.kind, value) {
        (SettingKind::Integer { min, max }, Value::Integer(i)) => {
            prop_assert!(min <= i && i <= max, "{name}: {i}")
        }
        (SettingKind::Text(kind), Value::String(s)) => prop_assert_eq!((kind.check)(s), Ok(()), "{}", name),
        (SettingKind::Checked(kind) | SettingKind::CheckedWords(kind), Value::List(items)) => {
            prop_assert_eq!((kind.check)(items), Ok(()), "{}", name)
        }
        (SettingKind::Duration | SettingKind::DurationAtMost(_), Value::String(s)) => {
            prop_assert!(settings::parse_duration(s).is_ok(), "{name}: {s:?}")
        }
        (SettingKind::Choice(choices), Value::String(s)) => {
            prop_assert!(choices.contains(&s.as_str()), "{name}: {s:?}")
        }
        (_, Value::String(s)) => prop_assert!(nul_free(s), "{name}: {s:?}"),
        (_, Value::List(items)) => prop_assert!(items.iter().all(|i| nul_free(i)), "{name}: {items:?}"),
        _ => {}
    }
    Ok(())
}

/// A job that parsed holds only values its kinds accept.
fn check_job(job: &Job) -> Result<(), TestCaseError> {
    prop_assert_eq!(kinds::check_label(&job.label), Ok(()), "label {:?}", job.label);
    prop_assert_eq!(kinds::check_host(&job.source_hostname), Ok(()), "host {:?}", job.source_hostname);
    // What else an entry must be is its backend's to check, when the job is planned.
    for path in job.include.iter().chain(&job.exclude) {
        prop_assert_eq!(kinds::check_entry(path), Ok(()), "path {:?}", path);
    }
    for volume in &job.volumes {
        prop_assert_eq!(kinds::check_volume(&volume.name), Ok(()));
        prop_assert_eq!(kinds::check_path(&volume.mount_point), Ok(()));
    }
    for hook in job.pre.iter().chain(&job.after_snapshot).chain(&job.post) {
        prop_assert_eq!(kinds::check_host(&hook.host), Ok(()), "hook host {:?}", hook.host);
        match &hook.program {
            Program::Argv(words) => {
                prop_assert!(words.first().is_some_and(|w| !w.is_empty()), "empty argv {words:?}");
                prop_assert!(words.iter().all(|w| !w.contains('\0')), "NUL in {words:?}");
            }
            Program::Shell(line) => prop_assert!(!line.trim().is_empty() && !line.contains('\0'), "{line:?}"),
        }
    }
    for (name, value) in &job.settings.values {
        check_value(name, value)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn job_files_parse_or_fail_naming_the_file(text in any_text()) {
        match Job::parse(Path::new(JOB_PATH), &text) {
            Ok(job) => check_job(&job)?,
            Err(err) => check_error(&err, JOB_PATH, &text)?,
        }
    }

    #[test]
    fn global_configs_parse_or_fail_naming_the_file(text in any_text()) {
        match GlobalConfig::parse(Path::new(CONFIG_PATH), &text) {
            Ok(layer) => {
                for (name, value) in &layer.values {
                    check_value(name, value)?;
                }
            }
            Err(err) => check_error(&err, CONFIG_PATH, &text)?,
        }
    }
}

/// Key paths as `locate` takes them, well and badly formed.
fn key_path() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "label",
                "include[0]",
                "include[1]",
                "pre[0].command",
                "volumes[1].mount_point",
                "post[0].when"
            ][..]
        )
        .prop_map(str::to_string),
        "[a-z_]{0,8}(\\[[0-9]{0,25}\\]){0,3}(\\.[a-z_]{0,8}){0,2}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn locate_never_panics_and_finds_positions_inside_the_text(text in any_text(), path in key_path()) {
        if let Some((line, column)) = crate::contract::yaml::locate(&text, &path) {
            prop_assert!(line >= 1 && column >= 1);
            prop_assert!(line <= lines_of(&text), "line {line} of {}", lines_of(&text));
        }
    }
}

/// Text that looks like a path: parts of a small alphabet, `.`, `..`, doubled and trailing
/// slashes, now and then a long part or a control character.
fn pathish() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        6 => "[a-z_ -]{1,6}",
        2 => Just(".".to_string()),
        2 => Just("..".to_string()),
        1 => Just(String::new()),
        1 => Just("*".to_string()),
        1 => (250usize..260).prop_map(|n| "p".repeat(n)),
        1 => "[\\x00-\\x1f\\x7f]",
    ];
    (prop::bool::weighted(0.9), prop::collection::vec(part, 0..8), prop::bool::ANY).prop_map(
        |(absolute, parts, trailing)| {
            let mut path = parts.join("/");
            if absolute {
                path.insert(0, '/');
            }
            if trailing {
                path.push('/');
            }
            path
        },
    )
}

fn any_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        2 => pathish(),
        1 => prop::sample::select(VALUES).prop_map(str::to_string),
        1 => "[a-zA-Z0-9:%\\[\\]._@+=,/-]{0,40}",
        1 => (0usize..300, "[a-z.:-]").prop_map(|(n, s)| s.repeat(n)),
    ]
}

const TEXT_KINDS: &[&kinds::TextKind] = &[
    &kinds::HOST,
    &kinds::USER,
    &kinds::PATH,
    &kinds::PROGRAM,
    &kinds::LABEL,
    &kinds::VOLUME,
    &kinds::MOUNT_OPTIONS,
];

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn kind_checks_never_panic_and_refuse_what_no_command_line_takes(value in any_value()) {
        for kind in TEXT_KINDS {
            let checked = (kind.check)(&value);
            if checked.is_ok() {
                prop_assert!(!value.contains('\0'), "{} accepted a NUL: {value:?}", kind.name);
                prop_assert!(!value.starts_with('-'), "{} accepted an option: {value:?}", kind.name);
            }
        }
        let _ = kinds::check_lvm_name("logical volume", &value);
        let _ = kinds::check_lvm_name("volume group", &value);
        let _ = kinds::shown(&value);
        if value.starts_with('/') {
            let _ = kinds::normalised(&value);
        }
    }

    #[test]
    fn ssh_option_checks_never_panic(words in prop::collection::vec(
        prop_oneof![
            3 => "-[46AaCgKknqTtvXxYyBbcDEeFIiJLmoPRSwlpfGNOQVWsMZ]{1,3}",
            1 => any::<String>(),
            1 => prop::sample::select(VALUES).prop_map(str::to_string),
        ],
        0..6,
    )) {
        if kinds::check_ssh_options(&words).is_ok() {
            prop_assert!(words.iter().all(|w| !w.chars().any(char::is_control)), "{words:?}");
            prop_assert!(words.first().is_none_or(|w| w.starts_with('-')), "{words:?}");
        }
    }

    #[test]
    fn every_setting_parses_text_or_says_why(text in any_value()) {
        for def in settings::registry().values() {
            if let Ok(value) = settings::parse_text(def, &text) {
                check_value(def.name, &value)?;
            }
        }
    }

    #[test]
    fn an_accepted_path_names_the_place_it_says(path in pathish()) {
        // Accepted paths may keep a trailing or doubled `/` (they name the same place, and
        // existing configs have them), never a `.` or `..` part: apart from those slashes, an
        // accepted path is its own normal form.
        if kinds::check_path(&path).is_ok() {
            let mut slashes_squeezed = path.clone();
            while slashes_squeezed.contains("//") {
                slashes_squeezed = slashes_squeezed.replace("//", "/");
            }
            let trimmed = match slashes_squeezed.trim_end_matches('/') {
                "" => "/".to_string(),
                trimmed => trimmed.to_string(),
            };
            prop_assert_eq!(kinds::normalised(&path), trimmed);
        }
    }

    #[test]
    fn the_suggested_normal_form_is_accepted(path in pathish()) {
        // What a "write `...`" message suggests must itself pass, unless the path is refused for
        // something normalising does not touch (a control character, an over-long part).
        let suggested = kinds::normalised(&path);
        prop_assert_eq!(kinds::normalised(&suggested), suggested.clone(), "not idempotent");
        let other_fault = path.chars().any(char::is_control) || path.split('/').any(|p| p.len() > 255);
        if !other_fault {
            prop_assert_eq!(kinds::check_path(&suggested), Ok(()), "{:?} suggested {:?}", path, suggested);
        }
    }
}

/// The bytes that some shell treats specially in some position of a word.
const SHELL_SPECIAL: &str = " \t\n\r'\"\\$`;&|<>()*?[]{}~!#^";

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn a_quoted_word_reads_back_as_itself(word in prop_oneof![
        2 => any::<String>(),
        2 => "[a-z/=:,.@%+_ {}~!#^*?$'\"\\\\-]{0,12}",
        1 => prop::sample::select(VALUES).prop_map(str::to_string),
    ]) {
        let quoted = crate::contract::quote::shell_quote(&word);
        prop_assert_eq!(shell_words::split(&quoted), Ok(vec![word.clone()]), "quoted as {}", quoted);
        if !quoted.starts_with('\'') {
            prop_assert_eq!(&*quoted, word.as_str());
            prop_assert!(!word.is_empty() && !word.starts_with('='), "{word:?}");
            prop_assert!(!word.contains(|c| SHELL_SPECIAL.contains(c)), "{word:?} left unquoted");
            prop_assert!(word.is_ascii(), "{word:?} left unquoted");
        }
    }

    #[test]
    fn joined_words_read_back_as_themselves(words in prop::collection::vec(any::<String>(), 0..6)) {
        let line = crate::contract::quote::shell_join(&words);
        prop_assert_eq!(shell_words::split(&line), Ok(words));
    }
}
