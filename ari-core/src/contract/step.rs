//! Steps are data: what to run, where, in which phase, when, and whether it is safe to retry.
//!
//! Backends and snapshot sources build steps with pure functions; the pipeline runs them and
//! `ari plan` prints them. Nothing here runs a process.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::contract::plugin::error::PluginError;

/// Where a command runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    /// The backup server ari runs on (`localhost` in a job).
    Local,
    /// A host reached over ssh.
    Remote(String),
}

impl Host {
    /// The host a job names: `localhost` is the backup server itself, anything else is remote.
    pub fn named(name: &str) -> Host {
        if name == "localhost" {
            Host::Local
        } else {
            Host::Remote(name.to_string())
        }
    }

    /// Whether this is the backup server itself.
    pub fn is_local(&self) -> bool {
        matches!(self, Host::Local)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Local => write!(f, "localhost"),
            Host::Remote(name) => write!(f, "{name}"),
        }
    }
}

/// What to execute: an argv list (no shell) or a string for a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A program and its arguments, run without a shell.
    Argv(Vec<String>),
    /// A string run by `sh -c` locally, or by the remote user's shell over ssh.
    Shell(String),
}

impl fmt::Display for Program {
    /// The command as a person would type it, control characters escaped (it goes to logs
    /// and terminals).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Program::Argv(argv) => {
                write!(f, "{}", crate::contract::kinds::escaped(&crate::contract::quote::shell_join(argv)))
            }
            Program::Shell(script) => write!(f, "{}", crate::contract::kinds::escaped(script)),
        }
    }
}

/// A program on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Where it runs.
    pub(crate) host: Host,
    /// What runs.
    pub(crate) program: Program,
}

impl Command {
    /// An argv command on `host`.
    pub fn argv<I, S>(host: Host, argv: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command { host, program: Program::Argv(argv.into_iter().map(Into::into).collect()) }
    }

    /// A shell command on `host`.
    pub fn shell(host: Host, script: impl Into<String>) -> Command {
        Command { host, program: Program::Shell(script.into()) }
    }

    /// Where it runs.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// What runs.
    pub fn program(&self) -> &Program {
        &self.program
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` on {}", self.program, self.host)
    }
}

/// The phase of a job a step belongs to, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Phase {
    /// The store's capacity and its pool's health, read and judged before anything else
    /// (`BackupBackend::capacity`).
    Capacity,
    /// The job's `pre` commands.
    Pre,
    /// The job's database dumps (`dumps:`), streamed into the store before any snapshot.
    Dump,
    /// Snapshot creation and mounting.
    Snapshot,
    /// The job's `after_snapshot` commands.
    AfterSnapshot,
    /// The backup itself.
    Main,
    /// The spot check of what the backup stored against what it read (`verify_sample`), while
    /// the snapshot it read is still there.
    Verify,
    /// Undoing what the snapshot phase made: unmount, remove.
    Cleanup,
    /// The backend's post steps (retention, expiry) and the job's `post` commands.
    Post,
}

impl Phase {
    /// The name used in plans and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Capacity => "capacity",
            Phase::Pre => "pre",
            Phase::Dump => "dump",
            Phase::Snapshot => "snapshot",
            Phase::AfterSnapshot => "after_snapshot",
            Phase::Main => "main",
            Phase::Verify => "verify",
            Phase::Cleanup => "cleanup",
            Phase::Post => "post",
        }
    }
}

/// The result of the steps up to the main step, as told to the post steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The pre steps, the snapshot and the main step succeeded.
    Success,
    /// Something before the post steps failed (or the job was interrupted).
    Failure,
}

/// When a post step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum When {
    /// Whatever the outcome.
    #[default]
    Always,
    /// Only after success.
    Success,
    /// Only after a failure.
    Failure,
}

impl When {
    /// Whether a step with this condition runs after `outcome`.
    pub(crate) fn applies(self, outcome: Outcome) -> bool {
        match self {
            When::Always => true,
            When::Success => outcome == Outcome::Success,
            When::Failure => outcome == Outcome::Failure,
        }
    }

    /// The name used in plans and job files.
    pub fn as_str(&self) -> &'static str {
        match self {
            When::Always => "always",
            When::Success => "success",
            When::Failure => "failure",
        }
    }
}

impl<'de> serde::Deserialize<'de> for When {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<When, D::Error> {
        struct WhenVisitor;
        impl serde::de::Visitor<'_> for WhenVisitor {
            type Value = When;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "one of always, success, failure")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<When, E> {
                const NAMES: [&str; 3] = ["always", "success", "failure"];
                match v {
                    "always" => Ok(When::Always),
                    "success" => Ok(When::Success),
                    "failure" => Ok(When::Failure),
                    _ => Err(E::custom(format!(
                        "expected one of always, success, failure, found `{}`{}",
                        crate::contract::kinds::shown(v),
                        crate::contract::error::did_you_mean(v, NAMES)
                    ))),
                }
            }
        }
        deserializer.deserialize_str(WhenVisitor)
    }
}

/// How often a failed step is tried again: the engine's policy for cleanup steps
/// (`max_retries`, `retry_interval`), and for the backup with `retry_backup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retry {
    /// Tries after the first one.
    pub(crate) max_retries: u32,
    /// Pause between tries.
    pub(crate) interval: Duration,
}

impl Retry {
    /// Run once; a failure is final.
    pub(crate) const NEVER: Retry = Retry { max_retries: 0, interval: Duration::ZERO };
}

/// A read-only query about what a cleanup step removes: whether it is still there and, for a
/// destructive step, whether it is what ari made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Probe {
    /// The query; exit status 0 means the thing is there.
    pub(crate) query: Command,
    /// The words its standard output must consist of for the thing to be ari's; `None` when
    /// the exit status says all.
    pub(crate) expect: Option<Vec<String>>,
}

impl Probe {
    /// Whether the query's output shows what the probe expects.
    pub(crate) fn matches(&self, stdout: &str) -> bool {
        match &self.expect {
            Some(words) => stdout.split_whitespace().eq(words.iter().map(String::as_str)),
            None => true,
        }
    }
}

/// A non-zero exit status that counts as success only with the output that says it is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tolerated {
    /// The exit status.
    pub(crate) code: i32,
    /// What the command's standard error (or output, when that is empty) must hold: the tool's
    /// own words, or, for a repair read back from the ledger, the words it was recorded with.
    pub(crate) output: std::borrow::Cow<'static, str>,
}

impl Tolerated {
    /// Exit status `code` with `output` in what the command printed.
    pub(crate) fn new(code: i32, output: impl Into<std::borrow::Cow<'static, str>>) -> Tolerated {
        Tolerated { code, output: output.into() }
    }

    /// Whether a command that exited with `code`, printing `output`, succeeded after all.
    pub(crate) fn accepts(&self, code: i32, output: &str) -> bool {
        self.code == code && !self.output.is_empty() && output.contains(&*self.output)
    }
}

/// The characters a variable part of a [`CommandPattern`] may hold, as a POSIX sh bracket
/// expression's body (`A-Za-z0-9_.:-`), named for messages. A plugin declares the sets of its
/// own tool's names as constants ([`Chars::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Chars {
    /// What the part is (`a ZFS name part`).
    pub(crate) what: &'static str,
    /// The characters, as a bracket expression's body.
    pub(crate) set: &'static str,
}

impl Chars {
    /// The characters of `set`, a part named `what` in messages (`a ZFS name part`). `set` is a
    /// POSIX sh bracket expression's body: ranges within ASCII lower-case letters, upper-case
    /// letters or digits (`a-z`, `A-F`, `0-9`), and single letters, digits or characters of
    /// `_.:,=+@% `, a `-` only last. Anything else (a `/`, a quote, a `]`, `!` or `^`) would
    /// let more through a host's filter than the part needs, or mean something else there:
    /// such a set is a build error where it makes a constant.
    ///
    /// ```compile_fail
    /// // `/` would let a path through.
    /// const PATHS: ari_core::step::Chars = ari_core::step::Chars::new("a path", "a-z/");
    /// ```
    pub const fn new(what: &'static str, set: &'static str) -> Chars {
        assert!(
            is_bracket_body(set.as_bytes()),
            "a Chars set holds ranges and characters a filter takes as they are"
        );
        Chars { what, set }
    }

    /// Decimal digits.
    pub(crate) const DIGITS: Chars = Chars::new("a number", "0-9");

    /// What the part is, for messages.
    #[doc(hidden)]
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// Whether `c` is one of the characters.
    pub fn contains(&self, c: char) -> bool {
        let set: Vec<char> = self.set.chars().collect();
        let mut i = 0;
        while i < set.len() {
            if i + 2 < set.len() && set[i + 1] == '-' {
                if (set[i]..=set[i + 2]).contains(&c) {
                    return true;
                }
                i += 3;
            } else {
                if set[i] == c {
                    return true;
                }
                i += 1;
            }
        }
        false
    }
}

/// Whether `set` is a bracket expression's body of the kind [`Chars::new`] takes, read as
/// [`Chars::contains`] reads it: `X-Y` where a `-` follows one character and precedes another.
const fn is_bracket_body(set: &[u8]) -> bool {
    if set.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < set.len() {
        if i + 2 < set.len() && set[i + 1] == b'-' {
            let (low, high) = (set[i], set[i + 2]);
            let same_class = (low.is_ascii_lowercase() && high.is_ascii_lowercase())
                || (low.is_ascii_uppercase() && high.is_ascii_uppercase())
                || (low.is_ascii_digit() && high.is_ascii_digit());
            if !same_class || low > high {
                return false;
            }
            i += 3;
        } else {
            let c = set[i];
            let plain = c.is_ascii_alphanumeric()
                || matches!(c, b'_' | b'.' | b':' | b',' | b'=' | b'+' | b'@' | b'%' | b' ');
            let last_dash = c == b'-' && i + 1 == set.len();
            if !(plain || last_dash) {
                return false;
            }
            i += 1;
        }
    }
    true
}

/// A command line that a step may run on a host without it being in the plan word for word: what
/// a dynamic step expands to (`zfs snapshot pool/x@ari-backup-` and a timestamp), or what a
/// local tool starts there through the job's ssh (`rdiff-backup server`). `template` is the
/// command line as the remote shell gets it, with `{}` where the variable part goes (the same
/// value at every `{}`, one or more of `chars`). The pipeline refuses an expansion that matches
/// none of its step's patterns, and `ari authorize` lets exactly these through a host's filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandPattern {
    /// Where the command runs.
    pub(crate) host: Host,
    /// The command line, `{}` standing for the variable part; without `{}`, the exact line.
    pub(crate) template: String,
    /// What the variable part may hold.
    pub(crate) chars: Chars,
    /// What the command lets ari's key do on the host beyond the job's own work, in a sentence
    /// that `ari authorize` shows beside the filter (a server that reads the whole host, a tool
    /// whose protocol runs the client's code): none when it does only what the job needs.
    pub(crate) note: Option<String>,
    /// What a host's filter runs instead of a matching command: a program that restricts the
    /// request itself (rsync's `rrsync`), none when the filter runs the command as it is.
    pub(crate) handover: Option<Handover>,
    /// Whether each `{}` holds a value of its own ([`CommandPattern::argv_parts`]), rather than
    /// the same value at each.
    pub(crate) independent: bool,
}

/// A program that a host's filter runs in place of a command it matched, handing it the
/// request rewritten, in an environment variable, as sshd hands a forced command the client's
/// (`SSH_ORIGINAL_COMMAND`): for a tool whose own restricted mode judges each request better
/// than a pattern can (`rrsync -wo DIR` for an rsync server, whose options and paths it checks
/// against its tables and keeps inside DIR). ari's own argv does not change: the filter
/// rewrites what arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    /// The program and its arguments (`rrsync -wo /tank/web`), fixed; under `remote_sudo` it
    /// runs through sudo, which keeps `variable` for it alone.
    pub(crate) argv: Vec<String>,
    /// The environment variable that carries the request (`SSH_ORIGINAL_COMMAND`).
    pub(crate) variable: &'static str,
    /// The request, `{}` standing for the matched command's variable part (`rsync --server {}.`).
    pub(crate) request: String,
    /// A harmless argv that runs only when the program can (`rrsync -help`: rrsync there, and
    /// its interpreter): `ari check --connect` runs it, without sudo, as the filter allows.
    pub(crate) probe: Vec<String>,
}

impl Handover {
    /// `argv`, handed `request` (with the variable part at `{}`) in `variable`.
    pub fn new<I, S>(argv: I, variable: &'static str, request: impl Into<String>) -> Handover
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Handover {
            argv: argv.into_iter().map(Into::into).collect(),
            variable,
            request: request.into(),
            probe: Vec::new(),
        }
    }

    /// The same, with `probe`: an argv that shows the program can run on the host.
    pub fn probed_by<I, S>(mut self, probe: I) -> Handover
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.probe = probe.into_iter().map(Into::into).collect();
        self
    }
}

impl CommandPattern {
    /// The argv `words` on `host`, as ari quotes them for the remote shell, the last word
    /// followed by a variable part of `chars` (`zfs destroy pool/x@ari-backup-{}`).
    pub fn argv_then<I, S>(host: Host, words: I, chars: Chars) -> CommandPattern
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        CommandPattern {
            host,
            template: format!("{}{{}}", crate::contract::quote::shell_join(words)),
            chars,
            note: None,
            handover: None,
            independent: false,
        }
    }

    /// The argv `words` on `host`, as ari quotes them, where each word that ends in `{}` ends in
    /// a variable part of its own, one or more of `chars` (`zfs send -I pool/x@ari-{}
    /// pool/x@ari-{}`: two snapshots, which may differ). Each part is matched where it stands,
    /// up to the first character not of `chars`, so the text after it must start with one that
    /// is not.
    pub fn argv_parts<I, S>(host: Host, words: I, chars: Chars) -> CommandPattern
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let template = words
            .into_iter()
            .map(|word| match word.as_ref().strip_suffix("{}") {
                Some("") => "{}".to_string(),
                Some(fixed) => format!("{}{{}}", crate::contract::quote::shell_join([fixed])),
                None => crate::contract::quote::shell_join([word.as_ref()]),
            })
            .collect::<Vec<_>>()
            .join(" ");
        CommandPattern { host, template, chars, note: None, handover: None, independent: true }
    }

    /// The command line `line` on `host`, exactly (`rdiff-backup server`).
    pub fn exact(host: Host, line: impl Into<String>) -> CommandPattern {
        CommandPattern {
            host,
            template: line.into(),
            chars: Chars::DIGITS,
            note: None,
            handover: None,
            independent: false,
        }
    }

    /// The command line `template` on `host`, `{}` standing for one or more of `chars` (the same
    /// at each `{}`).
    pub fn with_variable(host: Host, template: impl Into<String>, chars: Chars) -> CommandPattern {
        CommandPattern {
            host,
            template: template.into(),
            chars,
            note: None,
            handover: None,
            independent: false,
        }
    }

    /// The same, with `note`: what the command lets ari's key do on the host beyond the job's
    /// own work, which `ari authorize` says beside the filter that allows it.
    pub fn noting(mut self, note: impl Into<String>) -> CommandPattern {
        self.note = Some(note.into());
        self
    }

    /// The same, run by a host's filter as `handover` (see [`Handover`]). Its variable part
    /// goes into the request between single quotes, so its characters hold no `'` (nor a
    /// backslash).
    pub fn handed_to(mut self, handover: Handover) -> CommandPattern {
        assert!(
            !self.chars.set.contains(['\'', '\\']) && self.template.contains("{}") && !self.independent,
            "a handed-over pattern has a variable part that fits between single quotes"
        );
        self.handover = Some(handover);
        self
    }

    /// The command line, `{}` standing for the variable part.
    #[doc(hidden)]
    pub fn template(&self) -> &str {
        &self.template
    }

    /// What the variable part may hold.
    #[doc(hidden)]
    pub fn chars(&self) -> Chars {
        self.chars
    }

    /// Where the command runs.
    #[doc(hidden)]
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Whether the remote command line `line` is one the pattern allows (for a plugin's tests).
    #[doc(hidden)]
    pub fn allows(&self, line: &str) -> bool {
        self.matches(line)
    }

    /// Whether the remote command line `line` is one the pattern allows.
    pub(crate) fn matches(&self, line: &str) -> bool {
        if self.independent {
            return self.matches_parts(line);
        }
        let Some((fixed, _)) = self.template.split_once("{}") else { return line == self.template };
        let Some(rest) = line.strip_prefix(fixed) else { return false };
        let value: String = rest.chars().take_while(|c| self.chars.contains(*c)).collect();
        !value.is_empty() && self.template.replace("{}", &value) == line
    }
}

impl CommandPattern {
    /// [`CommandPattern::matches`] of a pattern whose parts are independent: each fixed text in
    /// turn, each part the longest run of `chars` after it (never empty), then the last text.
    fn matches_parts(&self, line: &str) -> bool {
        let mut fixed = self.template.split("{}");
        let mut rest = line;
        let mut next = fixed.next();
        while let Some(text) = next {
            let Some(after) = rest.strip_prefix(text) else { return false };
            next = fixed.next();
            if next.is_none() {
                return after.is_empty();
            }
            let value = after.chars().take_while(|c| self.chars.contains(*c)).map(char::len_utf8).sum();
            if value == 0 {
                return false;
            }
            rest = &after[value..];
        }
        false
    }
}

/// The remote command line of `command` as the remote shell gets it (after ari's remote wrapper).
#[doc(hidden)]
pub fn remote_line(command: &Command) -> String {
    match &command.program {
        Program::Argv(words) => crate::contract::quote::shell_join(words),
        Program::Shell(script) => script.clone(),
    }
}

/// Derives the commands of a dynamic step from the output of its query.
pub(crate) type Expand = Arc<dyn Fn(&str) -> Result<Vec<Command>, PluginError> + Send + Sync>;

/// Derives what a gathering step runs from the outputs of its queries, in their order.
pub(crate) type Gather = Arc<dyn Fn(&[&str]) -> Result<Vec<Work>, PluginError> + Send + Sync>;

/// One thing a gathering step ([`Step::gathering`]) runs once its queries have answered. The
/// step runs them in order and ends at the first that fails: what follows a transfer (a ZFS
/// hold on what it sent) runs only once the transfer succeeded.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Work {
    /// A command, which must exit 0.
    Run(Command),
    /// A stream: the first command's standard output through ari into the second's standard
    /// input, and so on (`zfs send` on one host, `pv -L` here, `zfs recv` on another). ari
    /// holds no more of it than a pipe's buffer, counts its bytes, and stops every stage when
    /// one fails; it succeeds when every stage exits 0.
    Stream(Vec<Command>),
}

impl Work {
    /// Its commands.
    pub fn commands(&self) -> &[Command] {
        match self {
            Work::Run(command) => std::slice::from_ref(command),
            Work::Stream(stages) => stages,
        }
    }
}

/// What a step does.
#[derive(Clone)]
pub(crate) enum Action {
    /// Run a command; the step succeeds when it exits 0.
    Run(Command),
    /// Run a check that must fail: exit 0 means the step refuses to go on, for `reason`
    /// (for example `mountpoint -q PATH`: the path is already a mount point).
    RefuseIf {
        /// The check.
        command: Command,
        /// Why a successful check stops the job.
        reason: String,
    },
    /// Run queries, then what `expand` derives from their standard outputs, in order, stopping
    /// at the first failure (a replication lists both sides, streams, then moves its holds).
    Gather {
        /// The queries, in order; none may change anything.
        queries: Vec<Command>,
        /// Turns their outputs into what runs; an error fails the step before anything runs.
        expand: Gather,
    },
    /// Run a query, then each command that `expand` derives from its standard output
    /// (ZFS expiry lists snapshots, then destroys the expired ones).
    Dynamic {
        /// The query; it must not change anything.
        query: Command,
        /// Turns the query's output into commands; an error fails the step before any runs.
        expand: Expand,
    },
    /// List, pick, hash and compare a sample of the backup on both sides: the engine's own
    /// spot check (`verify_sample`), whose commands it builds.
    Verify(Box<VerifySides>),
    /// Stream a dump from its host into the store: the engine's own (`dumps:`), whose commands
    /// it builds.
    Dump(Box<DumpStream>),
    /// List the store's backups with this command; the plan's retention (a backend's
    /// `Retention`) judges them and destroys the unkept: the engine's own step.
    Retention(Command),
}

/// A dump's stream: the dump's command on its host, whose standard output ari reads (counting
/// it and keeping its start and end for the format's check) and hands to the compressor, if
/// any, and the writer, which keeps it under a temporary name in the store.
#[derive(Debug, Clone)]
pub(crate) struct DumpStream {
    /// The dump's label.
    pub(crate) name: String,
    /// The dump tool, on its host.
    pub(crate) source: Command,
    /// The compressor, on the backup server.
    pub(crate) compress: Option<Command>,
    /// What writes the stream to the temporary name, on the store's host.
    pub(crate) writer: Command,
    /// The store's dump directory, on the writer's host.
    pub(crate) directory: String,
    /// The dump's file in it.
    pub(crate) file: String,
    /// What the dump's first and last bytes must hold, by its format.
    pub(crate) check: crate::contract::end_check::EndCheck,
    /// The longest it may run (the entry's `timeout`, or `dump_timeout`).
    pub(crate) timeout: std::time::Duration,
}

/// The two sides of a spot check: the same listing command in the source root and in the
/// store, each taking the run's seed as its last word (`SEED` in a plan).
#[derive(Debug, Clone)]
pub(crate) struct VerifySides {
    /// On the source host, in the snapshot's mount base or the source root.
    pub(crate) source: Command,
    /// Where the store is, in the directory that holds the backup.
    pub(crate) store: Command,
    /// Whether the source is the snapshot the backup read, so that any difference is a defect;
    /// without one, a file whose size or time changed since the backup is only reported.
    pub(crate) exact: bool,
    /// How many files each side picks (the engine derives from it the key below which a side
    /// picks, and the most files it keeps).
    pub(crate) size: crate::contract::kinds::SampleSize,
    /// Whether the store keeps the host's owners as their numbers, so that they can be compared.
    pub(crate) owners: bool,
    /// The longest each side may run (`verify_timeout`).
    pub(crate) timeout: std::time::Duration,
    /// What marks the compared backup as passed and as failed, in a run (`Sample::marked_by`).
    pub(crate) marks: Option<(Command, Command)>,
}

impl Action {
    /// The command the step starts with (the query of a dynamic step).
    pub(crate) fn command(&self) -> &Command {
        match self {
            Action::Run(command) => command,
            Action::RefuseIf { command, .. } => command,
            Action::Dynamic { query, .. } => query,
            Action::Gather { queries, .. } => &queries[0],
            Action::Verify(sides) => &sides.source,
            Action::Dump(stream) => &stream.source,
            Action::Retention(listing) => listing,
        }
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Run(command) => f.debug_tuple("Run").field(command).finish(),
            Action::RefuseIf { command, reason } => {
                f.debug_struct("RefuseIf").field("command", command).field("reason", reason).finish()
            }
            Action::Dynamic { query, .. } => f.debug_struct("Dynamic").field("query", query).finish(),
            Action::Gather { queries, .. } => f.debug_struct("Gather").field("queries", queries).finish(),
            Action::Verify(sides) => f.debug_tuple("Verify").field(sides).finish(),
            Action::Dump(stream) => f.debug_tuple("Dump").field(stream).finish(),
            Action::Retention(listing) => f.debug_tuple("Retention").field(listing).finish(),
        }
    }
}

/// What a backup step moved, as its tool reports it: files changed (new, changed or deleted)
/// and bytes transferred. Either is `None` where the tool does not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Transfer {
    /// Files new, changed or deleted.
    pub(crate) files: Option<u64>,
    /// Bytes of the files sent.
    pub(crate) bytes: Option<u64>,
}

impl Transfer {
    /// A transfer of `files` files and `bytes` bytes, either unknown.
    pub fn new(files: Option<u64>, bytes: Option<u64>) -> Transfer {
        Transfer { files, bytes }
    }
}

/// The sum of two transfers; a part is known when either's is.
impl std::ops::Add for Transfer {
    type Output = Transfer;

    fn add(self, other: Transfer) -> Transfer {
        let sum = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
        Transfer { files: sum(self.files, other.files), bytes: sum(self.bytes, other.bytes) }
    }
}

/// Reads what a successful step transferred from its standard output.
pub(crate) type Statistics = fn(&str) -> Transfer;

/// One step of a job.
#[derive(Debug, Clone)]
pub struct Step {
    /// The phase it belongs to.
    pub(crate) phase: Phase,
    /// A short name for logs and plans (`pre[0]`, `rdiff-backup`, `remove increments`).
    pub(crate) name: String,
    /// When it runs (post steps only; other phases always use `Always`).
    pub(crate) when: When,
    /// What it does.
    pub(crate) action: Action,
    /// How often it is retried.
    pub(crate) retry: Retry,
    /// The step that undoes this one, run in the cleanup phase once this one succeeded
    /// (the `umount` of a `mount`, the `lvremove` of an `lvcreate`).
    pub(crate) undo: Option<Box<Step>>,
    /// Non-zero exit statuses that still count as success, with a warning, when the output
    /// says why (rdiff-backup's retention exits 2 when no increment is old enough to remove, and
    /// also on a usage error).
    pub(crate) tolerated: Vec<Tolerated>,
    /// For a cleanup step: what it removes, named as left behind when it fails
    /// (`snapshot vg0/root-ari_backup on db-server`).
    pub(crate) removes: Option<String>,
    /// For a dynamic step: what it runs after its query, as a pattern (`zfs snapshot
    /// pool/x@ari-backup-%Y-%m-%d--%H%M`), for plans.
    pub(crate) shows: Option<String>,
    /// For a cleanup step: a query that succeeds while what it removes is still there
    /// (`mountpoint -q DIR`). Recovery after a crash runs the step only then, so undoing is
    /// idempotent: a snapshot already gone is fine. A probe that expects an output is also the
    /// proof a destructive step gives before every run that its target is what ari made.
    pub(crate) present: Option<Probe>,
    /// For a backup step: how to read what it transferred from its output (metrics).
    pub(crate) statistics: Option<Statistics>,
    /// Remote command lines the step may run that its commands do not spell out: what a dynamic
    /// step expands to, what its tool starts on a host (see [`CommandPattern`]).
    pub(crate) may_run: Vec<CommandPattern>,
    /// What repairs the state this step leaves when it does not end normally (see
    /// [`Step::repaired_by`]), in the order they run.
    pub(crate) repairs: Vec<Step>,
}

/// The shell variable in which a repair's presence query, when it is local shell text, finds
/// the id of the process whose step it repairs, once that process is proven gone
/// ([`Step::repaired_by`]): so that it can tell that process's leftovers from another's
/// (rdiff-backup's session marker names the process that wrote it).
pub const REPAIRED_PID: &str = "ARI_REPAIRED_PID";

impl Step {
    /// A step that runs `command` once, always.
    pub fn run(phase: Phase, name: impl Into<String>, command: Command) -> Step {
        Step {
            phase,
            name: name.into(),
            when: When::Always,
            action: Action::Run(command),
            retry: Retry::NEVER,
            undo: None,
            tolerated: Vec::new(),
            removes: None,
            shows: None,
            present: None,
            statistics: None,
            may_run: Vec::new(),
            repairs: Vec::new(),
        }
    }

    /// The same step, reading what it transferred from its standard output with `statistics`.
    pub fn reporting(mut self, statistics: fn(&str) -> Transfer) -> Step {
        self.statistics = Some(statistics);
        self
    }

    /// The same step, with the query that tells whether what it removes is still there.
    pub fn present_while(mut self, query: Command) -> Step {
        self.present = Some(Probe { query, expect: None });
        self
    }

    /// The same step, destructive: before it runs, every time, `query` must succeed and print
    /// exactly the words `expect` (`lvs` showing a snapshot of the job's own volume), or the
    /// step refuses to run. The query also tells recovery whether the thing is still there. A
    /// step that makes something where a path leads (`mkdir`, `mount`) proves that path the
    /// same way, before every try.
    pub fn proven_by<I, S>(mut self, query: Command, expect: I) -> Step
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.present = Some(Probe { query, expect: Some(expect.into_iter().map(Into::into).collect()) });
        self
    }

    /// The same step, naming what it removes (reported as left behind if it fails).
    pub fn removes(mut self, what: impl Into<String>) -> Step {
        self.removes = Some(what.into());
        self
    }

    /// The same step, counting exit status `code` as success when the command's standard
    /// error holds `output` (as the tool documents that status for this command).
    pub fn tolerating(mut self, code: i32, output: &'static str) -> Step {
        self.tolerated.push(Tolerated::new(code, output));
        self
    }

    /// The same step, repaired by `repair` when it does not end normally: a tool that leaves its
    /// store half-written when it is killed (rdiff-backup's interrupted session, which
    /// `rdiff-backup regress` rolls back). The step must run on the backup server, and so must
    /// the repair.
    ///
    /// The engine enforces when a repair may run, so that no backend has to: before the
    /// step's process may execute, the repair goes into the job's ledger with that process's
    /// identity (its pid, its start time and the boot); the process waits until it is there.
    /// When the step succeeds, the repair is dropped unrun. When the step fails, is stopped or
    /// times out, or ari dies while it runs (then `ari recover` or the job's next run), the
    /// repair runs only once that process and every process of its group have been proven gone
    /// (absent, a pid now of another process, or a zombie), and only while its presence query
    /// (`present_while`; required) says the repair is needed. A recorded process still running
    /// holds the repair, and the job, back, saying why.
    pub fn repaired_by(mut self, repair: Step) -> Step {
        self.repairs.push(repair);
        self
    }

    /// A check that stops the job when it succeeds, for `reason`.
    pub fn refuse_if(
        phase: Phase,
        name: impl Into<String>,
        command: Command,
        reason: impl Into<String>,
    ) -> Step {
        Step {
            action: Action::RefuseIf { command, reason: reason.into() },
            ..Step::run(phase, name, Command::argv(Host::Local, Vec::<String>::new()))
        }
    }

    /// A step that runs `query`, then the commands `expand` derives from its output (an error
    /// fails the step before any runs).
    pub fn dynamic(
        phase: Phase,
        name: impl Into<String>,
        query: Command,
        expand: impl Fn(&str) -> Result<Vec<Command>, PluginError> + Send + Sync + 'static,
    ) -> Step {
        Step {
            action: Action::Dynamic { query, expand: Arc::new(expand) },
            ..Step::run(phase, name, Command::argv(Host::Local, Vec::<String>::new()))
        }
    }

    /// A step that runs `queries` (at least one; each must change nothing), then what `expand`
    /// derives from their outputs, in order, ending at the first that fails (an error from
    /// `expand` fails the step before anything runs). Every remote command it derives must match
    /// one of the step's patterns ([`Step::may_run`]). What its streams carried is the step's
    /// transfer, in bytes.
    pub fn gathering(
        phase: Phase,
        name: impl Into<String>,
        queries: Vec<Command>,
        expand: impl Fn(&[&str]) -> Result<Vec<Work>, PluginError> + Send + Sync + 'static,
    ) -> Step {
        assert!(!queries.is_empty(), "a gathering step has a query");
        Step {
            action: Action::Gather { queries, expand: Arc::new(expand) },
            ..Step::run(phase, name, Command::argv(Host::Local, Vec::<String>::new()))
        }
    }

    /// The same step, which may also run `pattern` on a remote host: a dynamic step's expansion
    /// (every remote command it expands to must match one of its patterns, or it fails), or a
    /// command that its tool starts there (rdiff-backup's server).
    pub fn may_run(mut self, pattern: CommandPattern) -> Step {
        self.may_run.push(pattern);
        self
    }

    /// The same dynamic step, showing in plans what it runs after its query, as a pattern.
    pub fn showing(mut self, pattern: impl Into<String>) -> Step {
        self.shows = Some(pattern.into());
        self
    }

    /// The same step, run only when `when` applies.
    pub(crate) fn when(mut self, when: When) -> Step {
        self.when = when;
        self
    }

    /// The same step, retried by `retry`.
    pub(crate) fn retry(mut self, retry: Retry) -> Step {
        self.retry = retry;
        self
    }

    /// The same step, undone by `undo` in the cleanup phase.
    pub fn undo(mut self, undo: Step) -> Step {
        self.undo = Some(Box::new(undo));
        self
    }

    // What a step is, for a plugin's tests.

    /// The phase it belongs to.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Its name in logs and plans.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When it runs: `Always` but for post steps (a backend's run only after success).
    pub fn runs_when(&self) -> When {
        self.when
    }

    /// The command it starts with: what it runs, the check of a refusal, the query of a
    /// dynamic step.
    pub fn command(&self) -> &Command {
        self.action.command()
    }

    /// The step that undoes it in the cleanup phase, if any.
    pub fn undone_by(&self) -> Option<&Step> {
        self.undo.as_deref()
    }

    /// The query that tells whether what it removes is still there ([`Step::present_while`],
    /// [`Step::proven_by`]), with the words that query must print to prove its target, if any.
    pub fn presence(&self) -> Option<(&Command, Option<&[String]>)> {
        self.present.as_ref().map(|probe| (&probe.query, probe.expect.as_deref()))
    }

    /// What it removes, as reported when it fails ([`Step::removes`]).
    pub fn removal(&self) -> Option<&str> {
        self.removes.as_deref()
    }

    /// What repairs the state it leaves when it does not end normally ([`Step::repaired_by`]).
    #[doc(hidden)]
    pub fn repairs(&self) -> &[Step] {
        &self.repairs
    }

    /// Whether it counts an exit with status `code`, having printed `output`, as success
    /// ([`Step::tolerating`]).
    pub fn tolerates(&self, code: i32, output: &str) -> bool {
        self.tolerated.iter().any(|tolerated| tolerated.accepts(code, output))
    }
}

#[cfg(test)]
mod pattern_tests {
    use super::*;

    /// A ZFS name part's characters, and rsync's server options' (their owners, ari-zfs, declare
    /// them), for the tests.
    const NAME: Chars = Chars::new("a ZFS name part", "A-Za-z0-9_.:-");
    const OPTIONS: Chars = Chars::new("rsync's server options", "A-Za-z0-9 .=,_%-");

    #[test]
    fn a_pattern_matches_its_template_with_one_value_of_its_characters() {
        let host = Host::named("zfs");
        let snapshot = CommandPattern::argv_then(host.clone(), ["zfs", "snapshot", "p/x@ari-"], NAME);
        assert!(snapshot.matches("zfs snapshot p/x@ari-2026-12-02--0300"));
        assert!(!snapshot.matches("zfs snapshot p/x@ari-"), "an empty value");
        assert!(!snapshot.matches("zfs snapshot p/x@ari-a;rm -rf /"));
        assert!(!snapshot.matches("zfs snapshot p/x@ari-a b"));
        assert!(!snapshot.matches("zfs snapshot p/y@ari-a"));
        let kill = CommandPattern::with_variable(host.clone(), "kill -{} && wait -{}", Chars::DIGITS);
        assert!(kill.matches("kill -42 && wait -42"));
        assert!(!kill.matches("kill -42 && wait -43"), "the same value at each place");
        let send =
            CommandPattern::argv_parts(host.clone(), ["zfs", "send", "-I", "p/x@ari-{}", "p/x@ari-{}"], NAME);
        assert_eq!(send.template(), "zfs send -I p/x@ari-{} p/x@ari-{}");
        assert!(send.matches("zfs send -I p/x@ari-1 p/x@ari-2"), "each part its own value");
        assert!(send.matches("zfs send -I p/x@ari-1 p/x@ari-1"));
        assert!(!send.matches("zfs send -I p/x@ari-1 p/y@ari-2"));
        assert!(!send.matches("zfs send -I p/x@ari-1 p/x@ari-"), "an empty part");
        assert!(!send.matches("zfs send -I p/x@ari-1 -R p/x@ari-2"));
        assert!(!send.matches("zfs send -I p/x@ari-1 p/x@ari-2 p/y@z"));
        assert!(!send.matches("zfs send -I p/x@ari-1 p/x@ari-2;id"));
        let exact = CommandPattern::exact(host.clone(), "rdiff-backup server");
        assert!(exact.matches("rdiff-backup server"));
        assert!(!exact.matches("rdiff-backup server --x"));
        let rsync = CommandPattern::with_variable(host, "rsync --server {}/zfs/web", OPTIONS);
        assert!(rsync.matches("rsync --server -logDtprze.iLsfxCIvu --stats --delete . /zfs/web"));
        assert!(!rsync.matches("rsync --server -e.x . /zfs/web/../etc"));
        assert!(!rsync.matches("rsync --server --log-file=/etc/x . /zfs/web"));
    }

    #[test]
    fn character_sets_read_as_bracket_expressions() {
        assert!(NAME.contains('-') && NAME.contains('Q') && NAME.contains(':'));
        assert!(!NAME.contains('/') && !NAME.contains(' '));
        assert!(OPTIONS.contains(' ') && !OPTIONS.contains('/'));
        let hex = Chars::new("hexadecimal digits", "0-9a-f");
        assert!(hex.contains('f') && !hex.contains('g'));
    }

    #[test]
    fn a_set_holds_ranges_and_characters_a_filter_takes_as_they_are() {
        for good in ["0-9", "A-Za-z0-9_.:-", "A-Za-z0-9 .=,_%-", "a", "-", "x@+,=%"] {
            assert!(is_bracket_body(good.as_bytes()), "{good}");
        }
        for bad in ["", "a-z/", "'", "\\", "]", "!a", "^a", "a-9", "z-a", "_-a", "--x", "-a", "\u{e9}"] {
            assert!(!is_bracket_body(bad.as_bytes()), "{bad}");
        }
    }
}
