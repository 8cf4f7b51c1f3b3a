//! A job's `dumps:` entries: database dumps (or any command's standard output) that the engine
//! streams from a host into the store. Each entry is read strictly, every value by its kind, and
//! the options of a dump tool from an allow-list of that tool's: nothing that writes a file,
//! names a password, or changes the dump's format, which ari sets and checks.

use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::contract::end_check::EndCheck;
use crate::contract::kinds::{self, TextKind};
use crate::contract::step::Program;

/// The directory, in a store, that holds a job's dumps: it starts with a dot, which no label
/// can, so no job's store and no dump's name can collide with it.
pub const DUMPS_DIR: &str = ".ari-dumps";

/// One entry of a job's `dumps:` list.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    /// Its label: the file's name in the store, and the name `ari restore --dump` takes.
    pub name: String,
    /// What is dumped.
    pub of: DumpOf,
    /// Where the dump runs (`None`: the job's source host).
    pub host: Option<String>,
    /// The container on that host it runs in (`docker exec`/`podman exec`).
    pub container: Option<Container>,
    /// The user it runs as.
    pub run_as: Option<String>,
    /// Extra words for the dump tool, each from the tool's allow-list.
    pub options: Vec<String>,
    /// Compressed on the backup server (never on the host).
    pub compress: Compression,
    /// How long it may run (`None`: `dump_timeout`).
    pub timeout: Option<Duration>,
}

/// What a dump dumps: a database of a known server, or what a command writes to stdout.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpOf {
    /// `pg_dump --format=custom DATABASE`, or `pg_dumpall --globals-only`.
    Postgresql {
        /// The database; `None` with `globals`.
        database: Option<String>,
    },
    /// `mysqldump --single-transaction`, of one database or of all.
    Mysql {
        /// The database; `None`: all of them.
        database: Option<String>,
    },
    /// `mongodump --archive`, of one database or of all.
    Mongodb {
        /// The database; `None`: all of them.
        database: Option<String>,
    },
    /// `sqlite3 -readonly PATH .dump`.
    Sqlite {
        /// The database file on the host.
        path: String,
    },
    /// Anything that writes the dump to its standard output.
    Command(Program),
}

impl DumpOf {
    /// What the tool's output shows when the dump is whole.
    pub(crate) fn end_check(&self) -> EndCheck {
        match self {
            // The custom format's header; the archive has no trailer that pg_dump writes last.
            DumpOf::Postgresql { database: Some(_) } => {
                EndCheck { starts_with: b"PGDMP", ..EndCheck::default() }
            }
            // pg_dumpall's last comment, its three lines.
            DumpOf::Postgresql { database: None } => EndCheck {
                ends_with: b"--\n-- PostgreSQL database cluster dump complete\n--",
                ..EndCheck::default()
            },
            // mysqldump (and mariadb-dump) writes this line last (ari allows no option that
            // drops it).
            DumpOf::Mysql { .. } => {
                EndCheck { last_line_starts_with: b"-- Dump completed", ..EndCheck::default() }
            }
            // The archive's magic number (0x8199e26d, little-endian) and its terminator.
            DumpOf::Mongodb { .. } => EndCheck {
                starts_with: b"\x6d\xe2\x99\x81",
                ends_with: b"\xff\xff\xff\xff",
                ..EndCheck::default()
            },
            // `.dump` wraps everything in one transaction.
            DumpOf::Sqlite { .. } => EndCheck { ends_with: b"COMMIT;", ..EndCheck::default() },
            DumpOf::Command(_) => EndCheck::default(),
        }
    }
}

/// A container that a dump runs in.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Its name or id.
    pub name: String,
    /// `docker` or `podman`.
    pub engine: String,
}

/// How a dump is compressed on the backup server.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Stored as the tool wrote it (rdiff-backup's deltas work on it; ZFS compresses it).
    #[default]
    None,
    /// `zstd --rsyncable`.
    Zstd,
}

/// The kinds of a dump's values.
static DATABASE: TextKind = TextKind::new(
    "database",
    "a database name: letters, digits, `_`, `-`, `.`, `$`, not starting with `-` or `.`, at most 63 characters",
    check_database,
);

fn check_database(name: &str) -> Result<(), String> {
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$');
    if name.is_empty() || name.len() > 63 || name.starts_with(['-', '.']) || !name.chars().all(fine) {
        return Err("is no database name ari takes".into());
    }
    Ok(())
}

static CONTAINER: TextKind = TextKind::new(
    "container",
    "a container name or id: letters, digits, `_`, `.`, `-`, starting with a letter or digit",
    check_container,
);

fn check_container(name: &str) -> Result<(), String> {
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty()
        || name.len() > 128
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.chars().all(fine)
    {
        return Err("is no container name ari takes".into());
    }
    Ok(())
}

/// The options each dump tool takes from a job, by how they are spelled: `--name` alone, or
/// `--name=VALUE` (never a separate value word, which could be read as an option of its own).
/// Left out on purpose: every option that writes a file (`pg_dump -f`, `mysqldump
/// --result-file`/`--tab`, `mongodump --out`), takes a password or a connection string that
/// may hold one, sets the format ari checks or drops the end it checks (`--compact`,
/// `--skip-comments`, mongodump's `--gzip`), reads options from a file that could say any of
/// that (`--defaults-extra-file`: mysqldump takes `result-file` from it), or changes the server
/// beyond the dump (`--dump-slave` stops a replica's SQL thread, `--flush-logs` and
/// `--flush-privileges` flush the server's, `--master-data` writes a `CHANGE MASTER TO` that
/// loading the dump runs; `--where` is SQL, which `INTO OUTFILE` makes the server write a file
/// with).
struct Allowed {
    flags: &'static [&'static str],
    valued: &'static [(&'static str, Value)],
}

/// What an option's value is, checked as such.
#[derive(Clone, Copy)]
enum Value {
    /// A host name or address ([`kinds::HOST`]), or a socket's directory (an absolute path).
    Host,
    /// A port, 1 to 65535.
    Port,
    /// A user or role name ([`kinds::USER`]).
    User,
    /// An absolute, normalised path ([`kinds::PATH`]).
    Path,
    /// A whole number.
    Number,
    /// A word: letters, digits and `_.:-` (an encoding, a size, a mechanism, `10s`).
    Word,
    /// A name or pattern of the database's own (a table, a schema, a collection, a replica
    /// set's hosts): any text without control characters.
    Pattern,
    /// mongodump's hosts (`rs0/db1:27017,db2`): no `@` and no `://`, so no URI that could hold
    /// a password.
    Hosts,
    /// One of these words.
    Choice(&'static [&'static str]),
}

impl Value {
    fn check(self, value: &str) -> Result<(), String> {
        let word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-');
        match self {
            Value::Host if value.starts_with('/') => kinds::PATH.check(value),
            Value::Host => kinds::HOST.check(value),
            Value::Port => match value.parse::<u16>() {
                Ok(port) if port > 0 => Ok(()),
                _ => Err("is no port (1 to 65535)".into()),
            },
            Value::User => kinds::USER.check(value),
            Value::Path => kinds::PATH.check(value),
            Value::Number if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
            Value::Number => Err("is no whole number".into()),
            Value::Word if value.chars().all(word) => Ok(()),
            Value::Word => Err("takes letters, digits and `_.:-` only".into()),
            Value::Pattern => Ok(()),
            Value::Hosts if value.contains('@') || value.contains("://") => {
                Err("is a URI, which may hold a password: give the hosts (`rs0/db1:27017,db2`)".into())
            }
            Value::Hosts => Ok(()),
            Value::Choice(words) if words.contains(&value) => Ok(()),
            Value::Choice(words) => Err(format!("is none of {}", words.join(", "))),
        }
    }
}

const PG_DUMP: Allowed = Allowed {
    flags: &[
        "--no-owner",
        "--no-privileges",
        "--no-acl",
        "--no-comments",
        "--no-publications",
        "--no-subscriptions",
        "--no-security-labels",
        "--no-tablespaces",
        "--no-unlogged-table-data",
        "--no-password",
        "--clean",
        "--if-exists",
        "--create",
        "--schema-only",
        "--data-only",
        "--blobs",
        "--no-blobs",
        "--serializable-deferrable",
        "--quote-all-identifiers",
        "--no-sync",
        "--no-synchronized-snapshots",
        "--load-via-partition-root",
    ],
    valued: &[
        ("--host", Value::Host),
        ("--port", Value::Port),
        ("--username", Value::User),
        ("--role", Value::User),
        ("--schema", Value::Pattern),
        ("--exclude-schema", Value::Pattern),
        ("--table", Value::Pattern),
        ("--exclude-table", Value::Pattern),
        ("--exclude-table-data", Value::Pattern),
        ("--encoding", Value::Word),
        ("--lock-wait-timeout", Value::Word),
        ("--compress", Value::Word),
        ("--extra-float-digits", Value::Number),
        ("--section", Value::Choice(&["pre-data", "data", "post-data"])),
    ],
};

const PG_DUMPALL: Allowed = Allowed {
    flags: &[
        "--no-owner",
        "--no-privileges",
        "--no-comments",
        "--no-password",
        "--no-role-passwords",
        "--no-tablespaces",
        "--quote-all-identifiers",
        "--no-sync",
        "--clean",
        "--if-exists",
    ],
    valued: &[
        ("--host", Value::Host),
        ("--port", Value::Port),
        ("--username", Value::User),
        ("--role", Value::User),
        ("--lock-wait-timeout", Value::Word),
        ("--encoding", Value::Word),
    ],
};

const MYSQLDUMP: Allowed = Allowed {
    flags: &[
        "--routines",
        "--events",
        "--triggers",
        "--skip-triggers",
        "--no-tablespaces",
        "--skip-lock-tables",
        "--quick",
        "--hex-blob",
        "--skip-extended-insert",
        "--complete-insert",
        "--add-drop-database",
        "--add-drop-table",
        "--skip-add-drop-table",
        "--no-create-db",
        "--no-create-info",
        "--no-data",
        "--order-by-primary",
        "--system=all",
    ],
    valued: &[
        ("--socket", Value::Path),
        ("--host", Value::Host),
        ("--port", Value::Port),
        ("--user", Value::User),
        ("--protocol", Value::Choice(&["tcp", "socket"])),
        ("--default-character-set", Value::Word),
        ("--max-allowed-packet", Value::Word),
        ("--net-buffer-length", Value::Word),
        ("--ignore-table", Value::Pattern),
        ("--ignore-database", Value::Pattern),
        ("--set-gtid-purged", Value::Choice(&["OFF", "ON", "AUTO"])),
    ],
};

const MONGODUMP: Allowed = Allowed {
    flags: &["--oplog", "--quiet", "--dumpDbUsersAndRoles", "--ssl", "--tls"],
    valued: &[
        ("--host", Value::Hosts),
        ("--port", Value::Port),
        ("--username", Value::User),
        ("--authenticationDatabase", Value::Word),
        ("--authenticationMechanism", Value::Word),
        ("--config", Value::Path),
        ("--collection", Value::Pattern),
        ("--excludeCollection", Value::Pattern),
        ("--excludeCollectionsWithPrefix", Value::Pattern),
        ("--readPreference", Value::Word),
        ("--numParallelCollections", Value::Number),
    ],
};

fn allowed(of: &DumpOf, globals: bool) -> Option<(&'static str, &'static Allowed)> {
    match of {
        DumpOf::Postgresql { .. } if globals => Some(("pg_dumpall", &PG_DUMPALL)),
        DumpOf::Postgresql { .. } => Some(("pg_dump", &PG_DUMP)),
        DumpOf::Mysql { .. } => Some(("mysqldump", &MYSQLDUMP)),
        DumpOf::Mongodb { .. } => Some(("mongodump", &MONGODUMP)),
        DumpOf::Sqlite { .. } | DumpOf::Command(_) => None,
    }
}

/// Checks one option word against its tool's allow-list.
fn check_option(tool: &str, allowed: &Allowed, word: &str) -> Result<(), String> {
    let shown = kinds::shown(word);
    kinds::check_no_control(word).map_err(|why| format!("option `{shown}` {why}"))?;
    let (name, value) = match word.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (word, None),
    };
    let kind = allowed.valued.iter().find(|(valued, _)| *valued == name).map(|(_, kind)| *kind);
    let ok = match value {
        None => allowed.flags.contains(&word),
        Some(value) => {
            allowed.flags.contains(&word) || (kind.is_some() && !value.is_empty() && !value.starts_with('-'))
        }
    };
    if let (true, Some(kind), Some(value)) = (ok, kind, value) {
        return kind.check(value).map_err(|why| format!("option `{shown}`: `{}` {why}", kinds::shown(value)));
    }
    if ok {
        return Ok(());
    }
    let why = if kind.is_some() && value == Some("") {
        format!("`{name}=` has an empty value")
    } else if kind.is_some() && value.is_some_and(|v| v.starts_with('-')) {
        "has a value that starts with `-`, which the tool could read as an option".to_string()
    } else if kind.is_some() {
        format!("`{name}` takes its value in the same word: `{name}=VALUE`")
    } else if name == "--defaults-extra-file" || name == "--defaults-file" {
        "reads options from a file, which can set any of them (result-file too): keep credentials in the ~/.my.cnf of the user the dump runs as (run_as)".into()
    } else if matches!(
        name,
        "-f" | "--file"
            | "-r"
            | "--result-file"
            | "-T"
            | "--tab"
            | "-o"
            | "--out"
            | "--archive"
            | "--format"
            | "-F"
    ) {
        "writes the dump somewhere of its own or in another format; ari streams it and sets the format".into()
    } else if name.contains("pass")
        || name == "-p"
        || name == "-W"
        || name == "--uri"
        || name == "--dbname"
        || name == "-d"
    {
        "would put a credential on the command line, where every user of the host sees it: keep it on the host, in the ~/.pgpass or ~/.my.cnf of the user the dump runs as (run_as), or mongodump's --config file".into()
    } else {
        format!("is not an option of {tool} that ari passes (docs/jobs.md lists them)")
    };
    Err(format!("option `{shown}` {why}"))
}

/// A `dumps:` entry as the file says it.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a dump: {name: ..., type: ..., database: ...} or {name: ..., command: [...]}"
)]
struct RawDump {
    #[serde(deserialize_with = "label")]
    name: String,
    #[serde(default, rename = "type")]
    kind: Option<DumpType>,
    #[serde(default)]
    command: Option<super::program::ProgramSpec>,
    #[serde(default, deserialize_with = "database")]
    database: Option<String>,
    #[serde(default)]
    globals: bool,
    #[serde(default, deserialize_with = "path")]
    path: Option<String>,
    #[serde(default, deserialize_with = "host")]
    host: Option<String>,
    #[serde(default, deserialize_with = "container")]
    container: Option<String>,
    #[serde(default)]
    container_engine: Option<Engine>,
    #[serde(default, deserialize_with = "user")]
    run_as: Option<String>,
    #[serde(default)]
    options: Vec<String>,
    #[serde(default)]
    compress: Option<CompressName>,
    #[serde(default, deserialize_with = "duration")]
    timeout: Option<Duration>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase", expecting = "one of postgresql, mysql, mongodb, sqlite")]
enum DumpType {
    Postgresql,
    Mysql,
    Mongodb,
    Sqlite,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase", expecting = "one of docker, podman")]
enum Engine {
    Docker,
    Podman,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase", expecting = "one of none, zstd")]
enum CompressName {
    None,
    Zstd,
}

fn checked<'de, D: Deserializer<'de>>(kind: &'static TextKind, d: D) -> Result<Option<String>, D::Error> {
    label_of(kind, d).map(Some)
}

fn label_of<'de, D: Deserializer<'de>>(kind: &'static TextKind, d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    kind.check(&text).map_err(|why| de::Error::custom(format!("`{}` {why}", kinds::shown(&text))))?;
    Ok(text)
}

fn label<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    label_of(&kinds::LABEL, d)
}
fn database<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked(&DATABASE, d)
}
fn path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked(&kinds::PATH, d)
}
fn host<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked(&kinds::HOST, d)
}
fn container<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked(&CONTAINER, d)
}
fn user<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked(&kinds::USER, d)
}
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    crate::contract::settings::parse_duration(&text).map(Some).map_err(de::Error::custom)
}

impl<'de> Deserialize<'de> for Dump {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Dump, D::Error> {
        let raw = RawDump::deserialize(deserializer)?;
        Dump::from_raw(raw).map_err(de::Error::custom)
    }
}

impl Dump {
    /// What spans an entry's keys: a `type` or a `command`, and the keys each takes.
    fn from_raw(raw: RawDump) -> Result<Dump, String> {
        let name = &raw.name;
        let not_for =
            |key: &str, kind: &str| Err(format!("dump `{name}`: `{key}` is not a key of a {kind} dump"));
        let of = match (raw.kind, raw.command) {
            (Some(_), Some(_)) => {
                return Err(format!("dump `{name}` has both `type` and `command`: give one"))
            }
            (None, None) => {
                return Err(format!(
                    "dump `{name}` needs a `type` (postgresql, mysql, mongodb, sqlite) or a `command`"
                ))
            }
            (None, Some(command)) => {
                for (key, set) in [
                    ("database", raw.database.is_some()),
                    ("path", raw.path.is_some()),
                    ("globals", raw.globals),
                ] {
                    if set {
                        return not_for(key, "command");
                    }
                }
                if !raw.options.is_empty() {
                    return Err(format!(
                        "dump `{name}`: a command dump takes no `options`: write them into the command"
                    ));
                }
                DumpOf::Command(command.0)
            }
            (Some(DumpType::Sqlite), None) => {
                if raw.database.is_some() || raw.globals {
                    return not_for(if raw.globals { "globals" } else { "database" }, "sqlite");
                }
                let Some(path) = raw.path else {
                    return Err(format!("dump `{name}`: a sqlite dump needs the database file's `path`"));
                };
                if !raw.options.is_empty() {
                    return Err(format!("dump `{name}`: a sqlite dump takes no `options`"));
                }
                DumpOf::Sqlite { path }
            }
            (Some(kind), None) => {
                if raw.path.is_some() {
                    return Err(format!("dump `{name}`: `path` is a key of sqlite dumps only"));
                }
                match kind {
                    DumpType::Postgresql => {
                        match (&raw.database, raw.globals) {
                            (Some(_), true) => return Err(format!("dump `{name}`: `globals: true` dumps the server's roles and tablespaces, not a database: drop `database` or `globals`")),
                            (None, false) => return Err(format!("dump `{name}`: a postgresql dump needs a `database`, or `globals: true` for the roles and tablespaces")),
                            _ => {}
                        }
                        DumpOf::Postgresql { database: raw.database }
                    }
                    _ if raw.globals => {
                        return Err(format!("dump `{name}`: `globals` is a key of postgresql dumps only"))
                    }
                    DumpType::Mysql => DumpOf::Mysql { database: raw.database },
                    DumpType::Mongodb => DumpOf::Mongodb { database: raw.database },
                    DumpType::Sqlite => unreachable!("handled above"),
                }
            }
        };
        if let Some((tool, allowed)) = allowed(&of, raw.globals) {
            for word in &raw.options {
                check_option(tool, allowed, word).map_err(|why| format!("dump `{name}`: {why}"))?;
            }
        }
        if raw.container_engine.is_some() && raw.container.is_none() {
            return Err(format!("dump `{name}`: `container_engine` is for a dump with a `container`"));
        }
        let container = raw.container.map(|container| Container {
            name: container,
            engine: match raw.container_engine {
                Some(Engine::Podman) => "podman",
                _ => "docker",
            }
            .to_string(),
        });
        Ok(Dump {
            name: raw.name,
            of,
            host: raw.host,
            container,
            run_as: raw.run_as,
            options: raw.options,
            compress: match raw.compress {
                Some(CompressName::Zstd) => Compression::Zstd,
                _ => Compression::None,
            },
            timeout: raw.timeout,
        })
    }
}

/// Refuses two dumps of one name: each is one file in the store.
pub(crate) fn check_names(dumps: &[Dump]) -> Result<(), (usize, String)> {
    for (i, dump) in dumps.iter().enumerate() {
        if dumps[..i].iter().any(|other| other.name == dump.name) {
            return Err((i, format!("two dumps are named `{}`: each is one file in the store", dump.name)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str) -> Result<Dump, String> {
        serde_yaml::from_str::<Dump>(yaml).map_err(|e| e.to_string())
    }

    fn check(yaml: &str, expected: Result<DumpOf, &str>) {
        match (read(yaml), expected) {
            (Ok(dump), Ok(of)) => assert_eq!(dump.of, of, "{yaml}"),
            (Err(error), Err(part)) => assert!(error.contains(part), "{yaml}: {error}"),
            (got, want) => panic!("{yaml}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn entries_of_every_kind_are_read_and_checked() {
        let db = |d: &str| Some(d.to_string());
        check("{name: app, type: postgresql, database: app}", Ok(DumpOf::Postgresql { database: db("app") }));
        check("{name: g, type: postgresql, globals: true}", Ok(DumpOf::Postgresql { database: None }));
        check("{name: all, type: mysql}", Ok(DumpOf::Mysql { database: None }));
        check("{name: u, type: mongodb, database: users}", Ok(DumpOf::Mongodb { database: db("users") }));
        check(
            "{name: c, type: sqlite, path: /var/lib/app/db.sqlite3}",
            Ok(DumpOf::Sqlite { path: "/var/lib/app/db.sqlite3".into() }),
        );
        check(
            "{name: ldap, command: [slapcat, -n, '1']}",
            Ok(DumpOf::Command(Program::Argv(vec!["slapcat".into(), "-n".into(), "1".into()]))),
        );
        check("{name: app, type: postgresql}", Err("needs a `database`, or `globals: true`"));
        check(
            "{name: app, type: postgresql, database: a, globals: true}",
            Err("drop `database` or `globals`"),
        );
        check("{name: app, type: mysql, globals: true}", Err("postgresql dumps only"));
        check("{name: app, type: sqlite}", Err("needs the database file's `path`"));
        check("{name: app, type: sqlite, path: db.sqlite}", Err("absolute"));
        check("{name: app}", Err("needs a `type`"));
        check("{name: app, type: mysql, command: [x]}", Err("both `type` and `command`"));
        check("{name: .app, type: mysql}", Err("letter or digit"));
        check("{name: app, type: oracle}", Err("unknown variant `oracle`"));
        check("{name: app, type: mysql, database: -x}", Err("no database name"));
        check("{name: app, type: mysql, databse: x}", Err("unknown field `databse`"));
        check("{name: app, command: [x], database: y}", Err("not a key of a command dump"));
        check("{name: app, command: [x], options: [--y]}", Err("takes no `options`"));
        check("{name: app, type: mysql, container_engine: podman}", Err("for a dump with a `container`"));
        check("{name: app, type: mysql, timeout: 0s}", Err("positive"));
    }

    #[test]
    fn options_come_from_each_tools_allow_list() {
        let opts = |kind: &str, option: &str| {
            format!("{{name: a, type: {kind}, database: d, options: ['{option}']}}")
        };
        for (kind, option) in [
            ("postgresql", "--no-owner"),
            ("postgresql", "--host=/run/postgresql"),
            ("postgresql", "--host=db.example.com"),
            ("postgresql", "--port=5433"),
            ("postgresql", "--table=public.orders*"),
            ("mysql", "--socket=/run/mysqld/mysqld.sock"),
            ("mysql", "--set-gtid-purged=OFF"),
            ("postgresql", "--exclude-table=logs"),
            ("mysql", "--routines"),
            ("mongodb", "--config=/etc/ari/mongo.yaml"),
            ("mongodb", "--host=rs0/db1:27017,db2"),
        ] {
            assert!(read(&opts(kind, option)).is_ok(), "{kind} {option}");
        }
        for (kind, option, why) in [
            ("postgresql", "-f", "writes the dump somewhere"),
            ("postgresql", "--file=/tmp/x", "writes the dump somewhere"),
            ("postgresql", "--format=plain", "writes the dump somewhere"),
            ("postgresql", "--password", "credential"),
            ("postgresql", "--dbname=postgres://u:pw@h/db", "credential"),
            ("postgresql", "--host", "same word"),
            ("postgresql", "--host=-oops", "starts with `-`"),
            ("mysql", "--result-file=/etc/passwd", "writes the dump somewhere"),
            ("mysql", "--tab=/tmp", "writes the dump somewhere"),
            ("mysql", "--defaults-extra-file=/home/u/my.cnf", "reads options from a file"),
            ("mysql", "--compact", "not an option"),
            ("mysql", "--where=1 INTO OUTFILE /tmp/x", "not an option"),
            ("mysql", "--skip-comments", "not an option"),
            ("mongodb", "--gzip", "not an option"),
            ("postgresql", "--host=", "empty value"),
            ("postgresql", "--port=5432x", "no port"),
            ("postgresql", "--host=db;touch x", "host"),
            ("postgresql", "--section=all", "none of pre-data, data, post-data"),
            ("mysql", "--socket=run/mysqld.sock", "absolute"),
            ("mysql", "--user=root x", "user"),
            ("mongodb", "--numParallelCollections=4x", "no whole number"),
            ("mongodb", "--host=mongodb://u:secret@db1", "URI"),
            ("mongodb", "--host=u:secret@db1", "URI"),
            ("mysql", "--password=secret", "credential"),
            ("mysql", "-psecret", "not an option"),
            ("mongodb", "--out=/tmp", "writes the dump somewhere"),
            ("mongodb", "--uri=mongodb://u:p@h", "credential"),
            ("mongodb", "--archive=/tmp/x", "writes the dump somewhere"),
        ] {
            let error = read(&opts(kind, option)).unwrap_err();
            assert!(error.contains(why), "{kind} {option}: {error}");
        }
    }

    #[test]
    fn a_dump_cut_short_fails_its_format_check() {
        let mysql = DumpOf::Mysql { database: None }.end_check();
        assert!(mysql
            .judge(b"-- MariaDB dump", b"UNLOCK TABLES;\n-- Dump completed on 2026-12-07\n")
            .is_ok());
        assert!(mysql
            .judge(b"-- MariaDB dump", b"INSERT INTO t VALUES (1),(2")
            .unwrap_err()
            .contains("cut short"));
        // A row that holds the end line's text is not the end line.
        let cut = b"INSERT INTO t VALUES (99999,'-- Dump completed on 2026-01-01');\nINSERT INTO u VALUES (1";
        assert!(mysql.judge(b"-- MariaDB dump", cut).is_err());
        let globals = DumpOf::Postgresql { database: None }.end_check();
        let whole = b"ALTER ROLE x;\n\n--\n-- PostgreSQL database cluster dump complete\n--\n\n";
        assert!(globals.judge(b"--", whole).is_ok());
        assert!(globals.judge(b"--", b"-- PostgreSQL database cluster dump complete\nALTER ROLE y").is_err());
        let pg = DumpOf::Postgresql { database: Some("app".into()) }.end_check();
        assert!(pg.judge(b"PGDMP\x01\x0e", b"whatever").is_ok());
        assert!(pg.judge(b"", b"").is_err(), "an empty dump is no dump");
        let sqlite = DumpOf::Sqlite { path: "/x".into() }.end_check();
        assert!(sqlite.judge(b"PRAGMA", b"CREATE TABLE t(a);\nCOMMIT;\n").is_ok());
        assert!(sqlite.judge(b"PRAGMA", b"CREATE TABLE t(a);\n").is_err());
        let mongo = DumpOf::Mongodb { database: None }.end_check();
        assert!(mongo.judge(b"\x6d\xe2\x99\x81rest", b"data\xff\xff\xff\xff").is_ok());
        assert!(mongo.judge(b"\x6d\xe2\x99\x81rest", b"data").is_err());
        assert!(DumpOf::Command(Program::Shell("x".into())).end_check().judge(b"", b"").is_ok());
    }

    #[test]
    fn names_are_unique() {
        let dump = |name: &str| read(&format!("{{name: {name}, type: mysql}}")).unwrap();
        assert!(check_names(&[dump("a"), dump("b")]).is_ok());
        assert_eq!(check_names(&[dump("a"), dump("b"), dump("a")]).unwrap_err().0, 2);
    }
}
