//! Database dumps (`dumps:`), streamed from their host into the store with the real tools:
//! SQLite, PostgreSQL (a server this test starts as `nobody` in a directory of its own, with
//! peer authentication as on a stock host) and MariaDB (`mariadbd` started as root on a socket
//! of its own, no network), locally and through the harness sshd. Each dump restores to the same
//! rows; a dump that fails half-way, one cut short with every status 0, and one that hangs fail
//! the job and leave the previous dump; the filter `ari authorize` makes allows every dump and
//! refuses a changed one; a zfs job keeps its dumps inside the dataset, where rsync's `--delete`
//! leaves them.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tests::rdiff::rdiff_backup;
use tests::{assert_exit, eventually, require_tool, run, stderr, stdout, Fixture, Sshd, World};

/// Where an rdiff job's dumps land before rdiff-backup versions them.
fn incoming(fx: &Fixture, label: &str) -> PathBuf {
    fx.path(&format!("store/.ari-dumps/.incoming/{label}"))
}

/// The store rdiff-backup versions them into.
fn versioned(fx: &Fixture, label: &str) -> PathBuf {
    fx.path(&format!("store/.ari-dumps/{label}"))
}

fn increments(store: &Path) -> usize {
    let out = run(Command::new("rdiff-backup")
        .args(["--terminal-verbosity", "1", "list", "increments"])
        .arg(store));
    assert_exit(&out, 0);
    stdout(&out).lines().filter(|l| l.contains("increments.") || l.contains("Current mirror")).count()
}

fn history_dumps(fx: &Fixture, label: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fx.path(&format!("state/history/{label}.json"))).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["runs"].as_array().unwrap().last().unwrap()["dumps"].clone()
}

/// A process this test started (a database server), stopped by its PID when the test ends.
struct Server {
    child: Child,
    stop: libc::c_int,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, self.stop)
        };
        let _ = self.child.wait();
    }
}

fn sqlite(db: &Path, sql: &str) -> String {
    let out = run(Command::new("sqlite3").arg(db).arg(sql));
    assert_exit(&out, 0);
    stdout(&out)
}

#[test]
fn a_sqlite_dump_restores_to_the_same_rows_locally_and_through_sshd_and_is_versioned() {
    rdiff_backup();
    require_tool("sqlite3", "sqlite3");
    let sshd = Sshd::start();
    let fx = Fixture::new();
    fx.write_config(&sshd.config_yaml());
    let src = fx.make_tree("src", &[("etc/app.conf", "x=1\n")]);
    let db = fx.path("app.db");
    sqlite(&db, "create table t(id integer primary key, v text); with recursive n(i) as (select 1 union all select i+1 from n where i < 500) insert into t select i, hex(randomblob(16)) from n;");
    let fingerprint = "select count(*), sum(length(v)), group_concat(v, '') from t";
    let before = sqlite(&db, fingerprint);
    let job = fx.write_job(
        "web.yaml",
        &format!(
            "source_hostname: {host}\ninclude: [{src}]\ndumps:\n  - {{name: here, type: sqlite, path: {db}, host: localhost}}\n  - {{name: there, type: sqlite, path: {db}, compress: zstd}}\n",
            host = sshd.host_alias(),
            src = src.display(),
            db = db.display(),
        ),
    );
    let out = run(fx.ari().arg("run").arg(&job));
    assert!(out.status.success(), "{}\nsshd log:\n{}", stderr(&out), sshd.log_tail());
    for (file, compressed) in [("here.sql", false), ("there.sql.zst", true)] {
        let stored = versioned(&fx, "web").join(file);
        let restored = fx.path(&format!("restored-{file}.db"));
        let sql = if compressed {
            let out = run(Command::new("zstd").arg("-dc").arg(&stored));
            assert_exit(&out, 0);
            out.stdout
        } else {
            std::fs::read(&stored).unwrap()
        };
        std::fs::write(fx.path("load.sql"), sql).unwrap();
        let out = run(Command::new("sqlite3").arg(&restored).arg(format!(".read {}", fx.p("load.sql"))));
        assert_exit(&out, 0);
        assert_eq!(sqlite(&restored, fingerprint), before, "{file} restores to the same rows");
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&stored).unwrap().permissions());
        assert_eq!(mode & 0o077, 0, "{file} is readable by root only");
    }
    let dumps = history_dumps(&fx, "web");
    assert_eq!(dumps.as_array().map(Vec::len), Some(2), "{dumps}");
    assert!(dumps[0]["bytes"].as_u64().unwrap() > 500 * 32, "{dumps}");
    // A second run with changed rows: the dump store keeps the first as an increment.
    sqlite(&db, "update t set v = 'changed' where id = 1");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 0);
    assert_eq!(increments(&versioned(&fx, "web")), 2);
    assert!(std::fs::read_to_string(versioned(&fx, "web").join("here.sql")).unwrap().contains("'changed'"));
    // `ari restore --dump`: the newest, an older one, decompressed or as stored.
    let restore = |name: &str, extra: &[&str], to: &str| {
        let out = run(fx.ari().args(["restore", "web", "--dump", name, "--to", &fx.p(to)]).args(extra));
        assert_exit(&out, 0);
        stdout(&out)
    };
    let said = restore("here", &[], "r0");
    assert!(said.contains("to load it: sqlite3 NEW.db < "), "{said}");
    assert!(std::fs::read_to_string(fx.path("r0/here.sql")).unwrap().contains("'changed'"));
    restore("here", &["--at", "1B"], "r1");
    assert!(!std::fs::read_to_string(fx.path("r1/here.sql")).unwrap().contains("'changed'"));
    restore("there", &[], "r2");
    assert!(std::fs::read_to_string(fx.path("r2/there.sql")).unwrap().contains("'changed'"));
    restore("there", &["--raw"], "r3");
    assert!(fx.path("r3/there.sql.zst").exists() && !fx.path("r3/there.sql").exists());
    let out = run(fx.ari().args(["restore", "web", "--dump", "nope", "--to", &fx.p("r4")]));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("its dumps: here, there"), "{}", stderr(&out));
    let out = run(fx.ari().args(["history", "web"]));
    assert!(stdout(&out).contains("dumps: here "), "{}", stdout(&out));
    // `ari verify --full` reads each kept dump back and judges it by its format.
    let verify = |expect: i32| {
        let out = run(fx.ari().args(["verify", "web", "--full", "--json"]));
        assert_exit(&out, expect);
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        json["store_checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"].as_str().unwrap().starts_with("dump "))
            .cloned()
            .collect::<Vec<_>>()
    };
    let out = run(fx.ari().args(["verify", "web", "--full", "--json"]));
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("rdiff-backup verify of the dump store's mirror"), "{}", stdout(&out));
    // The versioning of the dumps is repaired as the job's own backup is, after a crash.
    let plan = fx.plan_json(&job);
    let version = plan["steps"].as_array().unwrap().iter().find(|s| s["name"] == "version dumps").unwrap();
    assert_eq!(version["phase"], "dump");
    assert!(version["repairs"].as_array().is_some_and(|r| !r.is_empty()), "{version}");
    let checks = verify(0);
    assert_eq!(checks.len(), 2, "{checks:?}");
    assert!(checks.iter().all(|c| c["passed"] == true), "{checks:?}");
    // A kept dump cut short since (a disk that lost its end) fails it.
    let kept = incoming(&fx, "web").join("here.sql");
    let text = std::fs::read_to_string(&kept).unwrap();
    std::fs::write(&kept, &text[..text.len() / 2]).unwrap();
    let checks = verify(1);
    let here = checks.iter().find(|c| c["name"] == "dump here").unwrap();
    assert_eq!(here["passed"], false, "{here}");
    assert!(here["detail"].as_str().unwrap().contains("COMMIT;"), "{here}");
    // A link in the dump's place is not read through, however whole what it names looks.
    let elsewhere = fx.path("elsewhere.sql");
    std::fs::write(&elsewhere, text).unwrap();
    std::fs::remove_file(&kept).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &kept).unwrap();
    let checks = verify(1);
    let here = checks.iter().find(|c| c["name"] == "dump here").unwrap();
    assert!(here["detail"].as_str().unwrap().contains("there is no dump here.sql"), "{here}");
}

/// A PostgreSQL server in a directory of its own, run by `nobody` (initdb refuses root), reached
/// on a socket there with peer authentication: `(server, socket directory, port)`.
fn postgres(fx: &Fixture) -> (Server, PathBuf, u16, tempfile::TempDir) {
    let bin = Path::new("/usr/lib/postgresql/15/bin");
    require_tool(&bin.join("initdb").to_string_lossy(), "postgresql-15");
    // nobody must reach the directories: a world-searchable one outside the fixture.
    let top = tempfile::Builder::new().prefix("ari-pg").tempdir().unwrap();
    std::fs::set_permissions(top.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (data, socket) = (top.path().join("data"), top.path().join("socket"));
    for dir in [&data, &socket] {
        std::fs::create_dir(dir).unwrap();
        std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
    }
    let as_nobody = |program: &Path| {
        let mut command = Command::new("setpriv");
        command.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(program).current_dir("/");
        command
    };
    let out = run(as_nobody(&bin.join("initdb")).arg("-D").arg(&data).args([
        "-U",
        "nobody",
        "--auth-local=peer",
        "--auth-host=reject",
        "--locale=C.UTF-8",
        "-E",
        "UTF8",
    ]));
    assert_exit(&out, 0);
    let port = 20000 + (std::process::id() % 20000) as u16;
    let child = as_nobody(&bin.join("postgres"))
        .arg("-D")
        .arg(&data)
        .arg("-k")
        .arg(&socket)
        .args(["-c", "listen_addresses=", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { child, stop: libc::SIGINT };
    assert!(
        eventually(|| run(Command::new(bin.join("pg_isready"))
            .arg("-h")
            .arg(&socket)
            .args(["-p", &port.to_string()]))
        .status
        .success()),
        "postgres did not start in {}",
        fx.root().display()
    );
    (server, socket, port, top)
}

fn psql(socket: &Path, port: u16, database: &str, sql: &str) -> String {
    let out = run(Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "psql",
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .arg("-h")
        .arg(socket)
        .args(["-p", &port.to_string(), "-d", database, "-c", sql])
        .current_dir("/"));
    assert_exit(&out, 0);
    stdout(&out)
}

#[test]
fn a_postgresql_dump_through_sshd_restores_to_the_same_data() {
    rdiff_backup();
    let fx = Fixture::new();
    let (_server, socket, port, _top) = postgres(&fx);
    psql(&socket, port, "postgres", "create database app");
    psql(&socket, port, "app", "create table t(id int primary key, v text); insert into t select i, md5(i::text) from generate_series(1, 2000) i");
    let fingerprint = "select count(*), md5(string_agg(v, ',' order by id)) from t";
    let before = psql(&socket, port, "app", fingerprint);
    let sshd = Sshd::start();
    fx.write_config(&sshd.config_yaml());
    let src = fx.make_tree("src", &[("a", "1")]);
    let job = fx.write_job(
        "db.yaml",
        &format!(
            "source_hostname: {host}\ninclude: [{src}]\ndumps:\n  - {{name: app, type: postgresql, database: app, run_as: nobody, compress: zstd, options: ['--host={socket}', '--port={port}']}}\n  - {{name: roles, type: postgresql, globals: true, run_as: nobody, options: ['--host={socket}', '--port={port}']}}\n",
            host = sshd.host_alias(),
            src = src.display(),
            socket = socket.display(),
        ),
    );
    let out = run(fx.ari().arg("run").arg(&job));
    assert!(out.status.success(), "{}\nsshd log:\n{}", stderr(&out), sshd.log_tail());
    let stored = versioned(&fx, "db").join("app.pgdump.zst");
    let roles = std::fs::read_to_string(versioned(&fx, "db").join("roles.sql")).unwrap();
    assert!(roles.contains("CREATE ROLE nobody"), "{roles}");
    psql(&socket, port, "postgres", "create database restored");
    let dump = run(Command::new("zstd").arg("-dc").arg(&stored));
    assert_exit(&dump, 0);
    let mut restore = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "pg_restore", "--no-owner"])
        .arg("-h")
        .arg(&socket)
        .args(["-p", &port.to_string(), "-d", "restored"])
        .current_dir("/")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(restore.stdin.as_mut().unwrap(), &dump.stdout).unwrap();
    drop(restore.stdin.take());
    assert!(restore.wait().unwrap().success());
    assert_eq!(psql(&socket, port, "restored", fingerprint), before);
}

/// A MariaDB server in the fixture, as root on a socket of its own, without networking.
fn mariadb(fx: &Fixture) -> (Server, PathBuf) {
    require_tool("/usr/sbin/mariadbd", "mariadb-server-core");
    require_tool("mysqldump", "mariadb-client");
    let (data, socket) = (fx.path("mariadb/data"), fx.path("mariadb/socket"));
    let out = run(Command::new("mariadb-install-db")
        .args(["--no-defaults", "--user=root", "--auth-root-authentication-method=socket"])
        .arg(format!("--datadir={}", data.display())));
    assert_exit(&out, 0);
    let child = Command::new("/usr/sbin/mariadbd")
        .args(["--no-defaults", "--user=root", "--skip-networking"])
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--pid-file={}", fx.p("mariadb/pid")))
        .arg(format!("--log-error={}", fx.p("mariadb/error.log")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { child, stop: libc::SIGTERM };
    assert!(
        eventually(|| run(Command::new("mariadb-admin")
            .arg(format!("--socket={}", socket.display()))
            .arg("ping"))
        .status
        .success()),
        "mariadbd did not start: {}",
        std::fs::read_to_string(fx.path("mariadb/error.log")).unwrap_or_default()
    );
    (server, socket)
}

fn mysql(socket: &Path, sql: &str) -> String {
    let out = run(Command::new("mariadb")
        .arg(format!("--socket={}", socket.display()))
        .args(["-N", "-B", "-e", sql]));
    assert_exit(&out, 0);
    stdout(&out)
}

#[test]
fn a_mariadb_dump_through_sshd_restores_to_the_same_data() {
    rdiff_backup();
    let fx = Fixture::new();
    let sshd = Sshd::start();
    fx.write_config(&sshd.config_yaml());
    let (_server, socket) = mariadb(&fx);
    mysql(&socket, "create database shop; create table shop.t (id int primary key, v varchar(64)); use shop; insert into t select seq, md5(seq) from seq_1_to_3000");
    let fingerprint = "select count(*), md5(group_concat(v order by id separator ',')) from shop.t";
    let before = mysql(&socket, fingerprint);
    let src = fx.make_tree("src", &[("a", "1")]);
    let job = fx.write_job(
        "shop.yaml",
        &format!(
            "include: [{src}]\ndumps:\n  - {{name: shop, type: mysql, database: shop, host: {host}, options: ['--socket={socket}', --user=root, --routines]}}\n",
            host = sshd.host_alias(),
            src = src.display(),
            socket = socket.display(),
        ),
    );
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 0);
    let stored = versioned(&fx, "shop").join("shop.sql");
    mysql(&socket, "drop database shop");
    let out = run(Command::new("sh").arg("-c").arg(format!(
        "mariadb --socket={} < {}",
        socket.display(),
        stored.display()
    )));
    assert_exit(&out, 0);
    assert_eq!(mysql(&socket, fingerprint), before);
}

/// A local job with one command dump named `db` whose command is `command` (YAML).
fn command_job(fx: &Fixture, command: &str, extra: &str) -> PathBuf {
    let src = fx.make_tree("src", &[("a", "1")]);
    fx.write_job(
        "web.yaml",
        &format!("include: [{}]\ndumps:\n  - {{name: db, command: {command}{extra}}}\n", src.display()),
    )
}

#[test]
fn a_dump_that_fails_half_way_fails_the_job_and_the_previous_dump_stays() {
    rdiff_backup();
    let fx = Fixture::new();
    fx.write_config("");
    let job = command_job(&fx, "[sh, -c, 'echo the good dump']", "");
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    let kept = incoming(&fx, "web").join("db.dump");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "the good dump\n");
    // 1 MiB, then a failure: what a dump tool that dies mid-way does.
    let job = command_job(&fx, "[sh, -c, 'head -c 1048576 /dev/zero; echo dying >&2; exit 1']", "");
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("exited with status 1"), "{}", stderr(&out));
    assert!(stderr(&out).contains("dying"), "the dump's last words: {}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "the good dump\n", "the previous dump stays");
    assert_eq!(std::fs::read_to_string(versioned(&fx, "web").join("db.dump")).unwrap(), "the good dump\n");
    assert_eq!(increments(&versioned(&fx, "web")), 1, "nothing was versioned");
    assert_eq!(increments(&fx.path("store/web")), 1, "the backup did not run after the failed dump");
    let dumps = history_dumps(&fx, "web");
    assert_eq!(dumps[0]["bytes"].as_u64(), Some(1 << 20), "{dumps}");
    assert_eq!(dumps[0]["ok"].as_bool(), Some(false), "{dumps}");
}

#[test]
fn a_dump_cut_short_with_every_status_zero_fails_its_format_check() {
    rdiff_backup();
    let fx = Fixture::new();
    // A mysqldump that stops without its last line, and exits 0.
    let bin = fx.path("bin");
    fx.write_script(
        "bin/mysqldump",
        "#!/bin/sh\necho '-- MariaDB dump'\necho 'INSERT INTO t VALUES (1),(2'\n",
    );
    fx.write_config("");
    let src = fx.make_tree("src", &[("a", "1")]);
    let job = fx.write_job(
        "web.yaml",
        &format!("include: [{}]\ndumps:\n  - {{name: all, type: mysql, host: localhost}}\n", src.display()),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = run(fx.ari().arg("run").arg(&job).env("PATH", path));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("dump all is not whole"), "{}", stderr(&out));
    assert!(stderr(&out).contains("-- Dump completed"), "{}", stderr(&out));
    assert!(!incoming(&fx, "web").join("all.sql").exists(), "no dump replaced by a cut one");
}

#[test]
fn a_hung_dump_is_stopped_at_its_timeout_on_the_host_too() {
    rdiff_backup();
    let sshd = Sshd::start();
    let fx = Fixture::new();
    fx.write_config(&sshd.config_yaml());
    let pid_file = fx.path("dump.pid");
    let src = fx.make_tree("src", &[("a", "1")]);
    let job = fx.write_job(
        "web.yaml",
        &format!(
            "source_hostname: {host}\ninclude: [{src}]\ndumps:\n  - {{name: db, command: \"echo $$ > {pid}; echo partial; exec sleep 600\", timeout: 3s}}\n",
            host = sshd.host_alias(),
            src = src.display(),
            pid = pid_file.display(),
        ),
    );
    let clock = std::time::Instant::now();
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("was killed when it reached the dump's timeout 3s"), "{}", stderr(&out));
    assert!(clock.elapsed() < std::time::Duration::from_secs(60), "stopped, not waited for");
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    // SAFETY: kill(2) with signal 0 only asks whether the pid exists.
    #[allow(unsafe_code)]
    let alive = || unsafe { libc::kill(pid, 0) } == 0;
    assert!(eventually(|| !alive()), "the dump's process {pid} on the host was stopped too");
    assert!(!incoming(&fx, "web").join("db.dump").exists());
}

#[test]
fn the_filter_allows_every_dump_and_refuses_a_changed_one() {
    rdiff_backup();
    let sshd = Sshd::start();
    let fx = Fixture::new();
    fx.write_config(&format!("{}ssh_filter_path: {}\n", sshd.config_yaml(), fx.p("ssh-filter")));
    let db = fx.path("app.db");
    sqlite(&db, "create table t(a); insert into t values (1);");
    let src = fx.make_tree("src", &[("a", "1")]);
    let write = |db: &Path| {
        fx.write_job(
            "web.yaml",
            &format!(
                "source_hostname: {host}\ninclude: [{src}]\ndumps:\n  - {{name: app, type: sqlite, path: {db}}}\n  - {{name: ldap, command: [echo, dn]}}\n",
                host = sshd.host_alias(),
                src = src.display(),
                db = db.display(),
            ),
        )
    };
    let job = write(&db);
    let key = format!("{}.pub", sshd.client_key_path().display());
    let out = run(fx.ari().args(["authorize", "--host", sshd.host_alias(), "--key", &key, "--json"]));
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let entry = &json["hosts"][0];
    let allowed: Vec<&str> = entry["allowed"].as_array().unwrap().iter().filter_map(|c| c.as_str()).collect();
    assert!(allowed.iter().any(|c| c.contains("sqlite3 -readonly")), "{allowed:?}");
    assert!(allowed.iter().any(|c| c.ends_with("echo dn")), "{allowed:?}");
    let path = Path::new(entry["filter_path"].as_str().unwrap());
    std::fs::write(path, entry["filter"].as_str().unwrap()).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let line = entry["authorized_keys_line"].as_str().unwrap();
    sshd.set_key_options(line.split_once(' ').unwrap().0);
    let out = run(fx.ari().arg("run").arg(&job));
    assert!(out.status.success(), "{}\nsshd log:\n{}", stderr(&out), sshd.log_tail());
    assert!(incoming(&fx, "web").join("app.sql").exists());
    // A dump of another database is another command line: refused, and named.
    std::fs::copy(&db, fx.path("other.db")).unwrap();
    let job = write(&fx.path("other.db"));
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("refused by the ssh filter"), "{}", stderr(&out));
    let out = run(fx.ari().args(["check", "--connect"]).arg(&job));
    assert!(stdout(&out).contains("job web changed since the filter was made"), "{}", stdout(&out));
}

#[test]
fn a_zfs_job_keeps_its_dumps_in_the_dataset_where_rsync_leaves_them() {
    require_tool("rsync", "rsync");
    let zfs = World::new();
    let dst = zfs.fx.path("zfs/web");
    std::fs::create_dir_all(&dst).unwrap();
    zfs.fakes.add_mounted_dataset("pool/backups/web", &dst);
    let src = zfs.fx.make_tree("src", &[("etc/hosts", "127.0.0.1\n")]);
    let job = |verify: &str| {
        zfs.fx.write_job(
            "web.yaml",
            &format!(
                "label: web\nbackend: zfs\ninclude: [{src}/etc]\nrsync_dst: {dst}\nzfs_hostname: localhost\ndataset_name: pool/backups/web\nsnapshot_expiration_days: 60\n{verify}dumps:\n  - {{name: ldap, command: [echo, the dump]}}\n",
                src = src.display(),
                dst = dst.display(),
            ),
        )
    };
    // The spot check leaves the dumps out of its comparison.
    let plan = zfs.fx.plan_json(&job("verify_sample: 100%\n"));
    let verify =
        plan["steps"].as_array().unwrap().iter().find(|s| s["phase"] == "verify").unwrap().to_string();
    assert!(verify.contains("/\\\\.ari-dumps"), "{verify}");
    let job = job("");
    let plan = zfs.fx.plan_json(&job);
    let phases: Vec<(&str, &str)> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["phase"].as_str().unwrap(), s["name"].as_str().unwrap()))
        .collect();
    let at = |name: &str| {
        phases.iter().position(|(_, n)| *n == name).unwrap_or_else(|| panic!("{name}: {phases:?}"))
    };
    assert!(at("keep dump ldap") < at("rsync") && at("rsync") < at("zfs snapshot"), "{phases:?}");
    let rsync = plan["steps"][at("rsync")]["argv"].to_string();
    assert!(rsync.contains("--filter=P /.ari-dumps/") && rsync.contains("\"/.ari-dumps\""), "{rsync}");
    for _ in 0..2 {
        let out = zfs.run(&job);
        assert_exit(&out, 0);
        assert_eq!(std::fs::read_to_string(dst.join(".ari-dumps/ldap.dump")).unwrap(), "the dump\n");
    }
    // Each snapshot holds the run's dumps with its files: a dump comes back out of one.
    let out = run(zfs.ari().args(["restore", "web", "--dump", "ldap", "--at", "1B", "--to", &zfs.fx.p("r")]));
    assert_exit(&out, 0);
    assert_eq!(std::fs::read_to_string(zfs.fx.path("r/ldap.dump")).unwrap(), "the dump\n");
    // A snapshot that holds a link where the dump was (its host wrote rsync_dst): restored as
    // it is, and refused as a dump, never read through.
    let secret = zfs.fx.path("secret");
    std::fs::write(&secret, "not a dump\n").unwrap();
    let mut snapshots: Vec<PathBuf> =
        std::fs::read_dir(dst.join(".zfs/snapshot")).unwrap().map(|e| e.unwrap().path()).collect();
    snapshots.sort();
    let planted = snapshots.last().unwrap().join(".ari-dumps/ldap.dump");
    std::fs::remove_file(&planted).unwrap();
    std::os::unix::fs::symlink(&secret, &planted).unwrap();
    let out = run(zfs.ari().args(["restore", "web", "--dump", "ldap", "--to", &zfs.fx.p("r2")]));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("as something other than a file"), "{}", stderr(&out));
    zfs.fakes.assert_no_unexpected_calls();
}

#[test]
fn a_dump_of_many_tiny_writes_arrives_whole() {
    rdiff_backup();
    let fx = Fixture::new();
    fx.write_config("");
    // 3000 writes of one byte each, some with a pause between: what a slow, chatty dump tool
    // does; the relay must neither lose a byte nor stall.
    let job = command_job(
        &fx,
        "\"i=0; while [ $i -lt 3000 ]; do printf x; i=$((i+1)); [ $((i % 500)) -eq 0 ] && sleep 0.05; done\"",
        ", timeout: 60s",
    );
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 0);
    assert_eq!(std::fs::read_to_string(incoming(&fx, "web").join("db.dump")).unwrap(), "x".repeat(3000));
}

#[test]
fn a_mongodb_archive_is_kept_whole_and_one_without_its_terminator_is_refused() {
    rdiff_backup();
    // Debian packages no MongoDB: a fake mongodump that writes a known archive (the magic
    // number, a body, the terminator) when asked for `--archive --db=users`, and a cut one when
    // asked for another database.
    let fx = Fixture::new();
    fx.write_config("");
    fx.write_script(
        "bin/mongodump",
        "#!/bin/sh\n[ \"$1\" = --archive ] || { echo \"fake mongodump: want --archive first, got $*\" >&2; exit 9; }\nprintf '\\155\\342\\231\\201archive-body'\n[ \"$2\" = --db=users ] && printf '\\377\\377\\377\\377'\nexit 0\n",
    );
    let src = fx.make_tree("src", &[("a", "1")]);
    let job = |database: &str| {
        fx.write_job(
            "web.yaml",
            &format!(
                "include: [{}]\ndumps:\n  - {{name: users, type: mongodb, database: {database}, host: localhost}}\n",
                src.display()
            ),
        )
    };
    let path = format!("{}:{}", fx.p("bin"), std::env::var("PATH").unwrap());
    let out = run(fx.ari().arg("run").arg(job("users")).env("PATH", &path));
    assert_exit(&out, 0);
    let kept = std::fs::read(incoming(&fx, "web").join("users.archive")).unwrap();
    assert_eq!(kept, b"\x6d\xe2\x99\x81archive-body\xff\xff\xff\xff");
    let out = run(fx.ari().arg("run").arg(job("cut")).env("PATH", &path));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("dump users is not whole"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(incoming(&fx, "web").join("users.archive")).unwrap(),
        kept,
        "the previous dump stays"
    );
}

#[test]
fn under_remote_sudo_a_dump_runs_through_sudo_and_its_rule_passes_visudo() {
    rdiff_backup();
    let visudo = require_tool("/usr/sbin/visudo", "sudo");
    let fx = Fixture::new();
    // A fake sudo on the sshd's PATH that takes only `-n --`, records the command and runs it.
    fx.write_script(
        "sudo-bin/sudo",
        &format!(
            "#!/bin/sh\n[ \"$1\" = -n ] && [ \"$2\" = -- ] || {{ echo \"fake sudo: want -n --, got $*\" >&2; exit 99; }}\nshift 2\nprintf '%s\\n' \"$*\" >> {}\nexec \"$@\"\n",
            fx.p("sudo-log")
        ),
    );
    let sshd = Sshd::builder().path_prefix(fx.path("sudo-bin")).start();
    fx.write_config(&format!("{}remote_sudo: true\n", sshd.config_yaml()));
    let db = fx.path("app.db");
    sqlite(&db, "create table t(a); insert into t values (42);");
    let src = fx.make_tree("src", &[("a", "1")]);
    let job = fx.write_job(
        "web.yaml",
        &format!(
            "source_hostname: {host}\ninclude: [{src}]\ndumps:\n  - {{name: app, type: sqlite, path: {db}, run_as: nobody}}\n",
            host = sshd.host_alias(),
            src = src.display(),
            db = db.display(),
        ),
    );
    // nobody reads the database through a directory it can search.
    let top = tempfile::Builder::new().prefix("ari-sqlite").tempdir().unwrap();
    std::fs::set_permissions(top.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let shared = top.path().join("app.db");
    std::fs::copy(&db, &shared).unwrap();
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let text = std::fs::read_to_string(&job)
        .unwrap()
        .replace(&db.display().to_string(), &shared.display().to_string());
    std::fs::write(&job, text).unwrap();
    let out = run(fx.ari().arg("run").arg(&job));
    assert!(out.status.success(), "{}\nsshd log:\n{}", stderr(&out), sshd.log_tail());
    let ran = std::fs::read_to_string(fx.path("sudo-log")).unwrap();
    assert!(ran.contains("exec runuser -u nobody -- sqlite3 -readonly"), "{ran}");
    assert!(std::fs::read_to_string(incoming(&fx, "web").join("app.sql")).unwrap().contains("42"));
    // The drop-in's rule for it is exact, and visudo takes the drop-in.
    let key = format!("{}.pub", sshd.client_key_path().display());
    let out = run(fx
        .ari()
        .args(["authorize", "--host", sshd.host_alias(), "--key", &key, "--json"])
        .args(["--set", "remote_user=backup"]));
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let sudoers = json["hosts"][0]["sudoers"].as_str().unwrap().to_string();
    let rule = format!(
        "NOPASSWD: /bin/sh ^-c \\( exec runuser -u nobody -- sqlite3 -readonly {} \\.dump \\)$",
        shared.display().to_string().replace('.', "\\.")
    );
    assert!(sudoers.contains(&rule), "{rule}\n{sudoers}");
    let filled = tests::installed_sudoers(&sudoers);
    std::fs::write(fx.path("ari-sudoers"), filled).unwrap();
    assert_exit(&run(Command::new(visudo).arg("-cf").arg(fx.path("ari-sudoers"))), 0);
}

#[test]
fn a_remote_zfs_host_gets_its_dumps_through_ssh_and_a_planted_link_stops_them() {
    require_tool("rsync", "rsync");
    let zfs = World::new();
    let dst = zfs.fx.path("zfs/web");
    std::fs::create_dir_all(&dst).unwrap();
    zfs.fakes.add_mounted_dataset("pool/backups/web", &dst);
    let sshd = Sshd::builder().path_prefix(zfs.fakes.bin_dir()).start();
    zfs.write_config(&sshd.config_yaml());
    let src = zfs.fx.make_tree("src", &[("etc/hosts", "127.0.0.1\n")]);
    let job = zfs.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\ninclude: [{src}/etc]\nrsync_dst: {host}:{dst}\nzfs_hostname: {host}\ndataset_name: pool/backups/web\nsnapshot_expiration_days: 60\ndumps:\n  - {{name: ldap, command: \"printf 'dn: o=x\\\\n'\", compress: zstd}}\n",
            host = sshd.host_alias(),
            src = src.display(),
            dst = dst.display(),
        ),
    );
    let out = zfs.run(&job);
    assert!(out.status.success(), "{}\nsshd log:\n{}", stderr(&out), sshd.log_tail());
    let stored = dst.join(".ari-dumps/ldap.dump.zst");
    let out = run(Command::new("zstd").arg("-dc").arg(&stored));
    assert_eq!(stdout(&out), "dn: o=x\n");
    // What a source host's own rsync could leave in rsync_dst: the dump directory as a link to
    // a directory elsewhere on the ZFS host. The writer refuses to enter it; nothing lands there.
    let elsewhere = zfs.fx.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::rename(dst.join(".ari-dumps"), zfs.fx.path("old-dumps")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dst.join(".ari-dumps")).unwrap();
    let out = zfs.run(&job);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("leads to"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing written through the link");
}

/// A local job with one command dump `db` printing 1.2 MiB of lines, and `bin` first on ari's
/// PATH (fakes of the tools the stream's stages use).
fn faked_tools_job(fx: &Fixture, compress: &str) -> (PathBuf, String) {
    fx.write_config("");
    let job = command_job(fx, "[sh, -c, 'seq 1 200000']", &format!(", compress: {compress}"));
    let path = format!("{}:{}", fx.p("bin"), std::env::var("PATH").unwrap());
    (job, path)
}

#[test]
fn a_link_planted_between_the_writers_removal_and_its_open_is_never_written_through() {
    rdiff_backup();
    let fx = Fixture::new();
    let (job, path) = faked_tools_job(&fx, "none");
    assert_exit(&run(fx.ari().arg("run").arg(&job).env("PATH", &path)), 0);
    let kept = std::fs::read(incoming(&fx, "web").join("db.dump")).unwrap();
    // The race a host that writes the dump directory could win: right after the writer removes
    // its temporary name, a link to a device takes its place (a shell's `set -C` would write
    // through it: it refuses only an existing regular file).
    fx.write_script(
        "bin/rm",
        "#!/bin/sh\n/bin/rm \"$@\" || exit\nfor last; do :; done\nln -s /dev/null \"$last\"\n",
    );
    let out = run(fx.ari().arg("run").arg(&job).env("PATH", &path));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("dump db"), "{}", stderr(&out));
    let kept_now = std::fs::symlink_metadata(incoming(&fx, "web").join("db.dump")).unwrap();
    assert!(kept_now.file_type().is_file(), "the dump is a file, not the planted link");
    assert_eq!(std::fs::read(incoming(&fx, "web").join("db.dump")).unwrap(), kept, "the previous dump stays");
}

#[test]
fn a_compressor_that_stops_early_with_status_zero_fails_the_dump() {
    rdiff_backup();
    require_tool("zstd", "zstd");
    let fx = Fixture::new();
    let (job, path) = faked_tools_job(&fx, "zstd");
    let zstd = String::from_utf8(run(Command::new("sh").args(["-c", "command -v zstd"])).stdout).unwrap();
    let zstd = zstd.trim();
    // Reads a little, writes its start, exits 0: what ari reads of the source is whole, what is
    // stored is not.
    fx.write_script(
        "bin/zstd",
        &format!(
            "#!/bin/sh\ncase \" $* \" in *' -t '*) exec {zstd} \"$@\" ;; esac\nhead -c 1000 | {zstd} -q -c\n"
        ),
    );
    let out = run(fx.ari().arg("run").arg(&job).env("PATH", &path));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("stopped reading the stream before its end"), "{}", stderr(&out));
    // One that reads everything but stores a cut frame: the stored file fails `zstd -t`.
    fx.write_script("bin/zstd", &format!("#!/bin/sh\ncase \" $* \" in *' -t '*) exec {zstd} \"$@\" ;; esac\n{zstd} -q -c | head -c 100\ncat > /dev/null\n"));
    let out = run(fx.ari().arg("run").arg(&job).env("PATH", &path));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("keep dump db"), "{}", stderr(&out));
    assert!(!incoming(&fx, "web").join("db.dump.zst").exists(), "no cut dump kept");
}

#[test]
fn a_zfs_job_with_a_remote_source_dumps_only_that_host() {
    let fx = Fixture::new();
    fx.write_config("");
    let job = fx.write_job(
        "web.yaml",
        "label: web\nbackend: zfs\nsource_hostname: web1\ninclude: [/etc]\nrsync_dst: zfs1:/tank/web\nzfs_hostname: zfs1\ndataset_name: tank/web\nsnapshot_expiration_days: 60\ndumps:\n  - {name: own, command: [echo, a]}\n  - {name: other, command: [echo, b], host: db1}\n",
    );
    let out = run(fx.ari().arg("check").arg(&job));
    assert_exit(&out, 2);
    assert!(stdout(&out).contains("dumps[1].host: `db1` is not the source host"), "{}", stdout(&out));
}

#[test]
fn a_rename_that_fails_keeps_the_previous_dump() {
    rdiff_backup();
    let fx = Fixture::new();
    let (job, path) = faked_tools_job(&fx, "none");
    assert_exit(&run(fx.ari().arg("run").arg(&job).env("PATH", &path)), 0);
    let kept = std::fs::read(incoming(&fx, "web").join("db.dump")).unwrap();
    // A rename that fails, as on a full file system.
    fx.write_script("bin/mv", "#!/bin/sh\necho 'mv: No space left on device' >&2\nexit 1\n");
    let out = run(fx.ari().arg("run").arg(&job).env("PATH", &path));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("keep dump db"), "{}", stderr(&out));
    assert_eq!(std::fs::read(incoming(&fx, "web").join("db.dump")).unwrap(), kept, "the previous dump stays");
}

/// A writer that refuses (here: its directory became a link) while the compressor still writes
/// kills the compressor with a broken pipe; the error names the writer's refusal, not the
/// compressor's SIGPIPE, whichever of the two ended first.
#[test]
fn a_writer_that_refuses_is_blamed_not_the_compressor_its_exit_broke() {
    rdiff_backup();
    require_tool("zstd", "zstd");
    let fx = Fixture::new();
    fx.write_config("");
    // Enough that the compressor is still writing when the writer refuses.
    let job = command_job(&fx, "[sh, -c, 'seq 1 3000000']", ", compress: zstd");
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    let dir = incoming(&fx, "web");
    let elsewhere = fx.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::rename(&dir, fx.path("old-incoming")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &dir).unwrap();
    for _ in 0..5 {
        let out = run(fx.ari().arg("run").arg(&job));
        assert_exit(&out, 1);
        let err = stderr(&out);
        assert!(err.contains("leads to") && !err.contains("signal 13"), "{err}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing written through the link");
    }
}
