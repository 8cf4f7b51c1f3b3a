//! A mutation fuzzer through the real `ari` binary: job files made from the bad-input corpus and
//! from valid jobs (rdiff, rdiff over LVM, zfs over LVM, the command backend, hooks) by seeded
//! mutations (flipped bytes, deletions, YAML metacharacters, duplicated and swapped lines,
//! truncation, hostile values such as `-oX`, `$(id)`, `{a,b}`, `..`, NUL, long strings, deep
//! nesting). Every input goes to `ari check`; a sample of those from jobs that need no fake
//! tools also goes to `ari plan --json` and `ari run --dry-run`.
//!
//! For every input: ari exits 0 or 2 (never 101, a panic, nor by a signal), its stderr never
//! holds `panicked`, when it exits 2 its output names the job file (or, for a missing tool or
//! directory, the job and the setting, as docs/failures.md shows), its errors show control
//! characters escaped, and what `plan --json` prints is JSON. Nothing runs: no fake LVM or ZFS
//! tool is called and no command of a job leaves its marker.
//!
//! The mutations come from a fixed seed (splitmix64), so a run is the same every time; a failing
//! input is printed in full, escaped, with how it was made, ready for the corpus. The test prints
//! how many inputs it ran, how many ari accepted, and how long they took (see them with
//! `--no-capture`). To explore further, `ARI_FUZZ_SEED=N` and `ARI_FUZZ_INPUTS=N` change the
//! seed and the number of inputs of one run; a failure they find goes into the corpus.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::fmt::Write as _;
use std::path::Path;
use std::process::Output;
use std::time::Instant;

use tests::{run, stderr, stdout, World};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/bad-input.txt");

/// The seed of every run: change it (or set `ARI_FUZZ_SEED`) to explore, never to make a
/// failure go away.
const SEED: u64 = 0x00a1_b4c6_0000_0009;

/// How many mutated inputs a run makes, unless `ARI_FUZZ_INPUTS` says otherwise.
const INPUTS: usize = 400;

/// One in this many inputs from a fake-free job also goes to `plan --json` and `run --dry-run`.
const SAMPLE_EVERY: usize = 3;

/// Workers, each with its own fixture: the machine has two cores, and ari waits on disk often.
const WORKERS: usize = 4;

/// A number from the environment, for exploring; `default` when it is not set.
fn from_env<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text.parse().unwrap_or_else(|_| panic!("{name}={text} is not a number")),
        Err(_) => default,
    }
}

/// splitmix64: small, fast, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (> 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Characters that mean something to YAML.
const METACHARACTERS: &[&str] = &[
    "[", "]", "{", "}", ":", ": ", "-", "- ", "?", ",", "#", " #", "&", "*", "!", "|", ">", "'", "\"", "%",
    "@", "`", "\\", "\n", "\t", "\r", "  ", "---\n", "...\n", "\u{feff}",
];

/// Values that must never reach a command line as they are.
fn hostile_values() -> Vec<String> {
    let mut values: Vec<String> = [
        "-oX",
        "-oProxyCommand=touch /tmp/ari-fuzz-owned",
        "$(id)",
        "`id`",
        "{a,b}",
        "..",
        "/..",
        "../../etc",
        "/srv/./x",
        "/srv//x",
        "/srv/x/",
        "\0",
        "\"\\0\"",
        "\"a\\u0000b\"",
        "'a\nb'",
        "\"\\e[31m\"",
        "\u{202e}",
        ";rm -rf /",
        "a b",
        "~",
        "null",
        "''",
        "[]",
        "{}",
        "*undefined",
        "&a x",
        "!!binary aGk=",
        "!custom x",
        "-1",
        "0",
        "99999999999999999999",
        "1e999",
        ".nan",
        "true",
        "0s",
        "1h 30m",
        "vg0/snapshot1",
        "/dev/vg0/root",
        "[::1]",
        "user@host",
        "|",
        ">-",
    ]
    .iter()
    .map(|v| v.to_string())
    .collect();
    values.push("a".repeat(10_000));
    values.push(format!("/{}", "x".repeat(300)));
    values.push("/xxxxxxx".repeat(600));
    values.push(format!("{}1{}", "[".repeat(70), "]".repeat(70)));
    values.push(format!("{}1{}", "{a: ".repeat(200), "}".repeat(200)));
    values.push("[".repeat(5_000));
    values.push(format!("\n{}", (0..300).map(|i| format!("{}- x\n", " ".repeat(i))).collect::<String>()));
    values
}

/// One mutation, applied in place; returns what it did, for the report.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, hostile: &[String]) -> String {
    let len = input.len();
    let at = |rng: &mut Rng| rng.below(len + 1);
    match rng.below(9) {
        0 if len > 0 => {
            let i = rng.below(len);
            let bit = 1u8 << rng.below(8);
            input[i] ^= bit;
            format!("flip bit {bit:#04x} of byte {i}")
        }
        1 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(16)).min(len);
            input.drain(start..end);
            format!("delete bytes {start}..{end}")
        }
        2 => {
            let i = at(rng);
            let meta = rng.pick(METACHARACTERS);
            input.splice(i..i, meta.bytes());
            format!("insert {meta:?} at {i}")
        }
        3 | 4 => {
            // Replace the value of a `key: value` line, where the kinds are checked.
            let text = String::from_utf8_lossy(input).into_owned();
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            let with_value: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains(": ")).collect();
            if with_value.is_empty() {
                return mutate(rng, input, hostile);
            }
            let line = *rng.pick(&with_value);
            let value = rng.pick(hostile);
            let (key, _) = lines[line].split_once(": ").expect("has a value");
            let new = format!("{key}: {value}\n");
            *input = lines[..line].concat().into_bytes();
            input.extend(new.bytes());
            input.extend(lines[line + 1..].concat().bytes());
            format!("set line {} to `{key}: {}`", line + 1, shorten(value))
        }
        5 => {
            let i = at(rng);
            let value = rng.pick(hostile);
            input.splice(i..i, value.bytes());
            format!("insert `{}` at {i}", shorten(value))
        }
        6 | 7 => {
            let mut lines: Vec<Vec<u8>> =
                input.split_inclusive(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
            if lines.len() < 2 {
                return mutate(rng, input, hostile);
            }
            let a = rng.below(lines.len());
            let b = rng.below(lines.len());
            let what = if rng.below(2) == 0 {
                let copy = lines[a].clone();
                lines.insert(b, copy);
                format!("duplicate line {} before line {}", a + 1, b + 1)
            } else {
                lines.swap(a, b);
                format!("swap lines {} and {}", a + 1, b + 1)
            };
            *input = lines.concat();
            what
        }
        _ => {
            let i = at(rng);
            input.truncate(i);
            format!("truncate at {i}")
        }
    }
}

/// A value as a recipe shows it: escaped, and cut after 40 characters.
fn shorten(value: &str) -> String {
    let shown = value.escape_debug().to_string();
    if shown.chars().count() > 40 {
        format!("{}... ({} bytes)", shown.chars().take(40).collect::<String>(), value.len())
    } else {
        shown
    }
}

/// The input, escaped so that it can be pasted into the corpus or a test.
fn escaped(input: &[u8]) -> String {
    match std::str::from_utf8(input) {
        Ok(text) => format!("{text:?}"),
        Err(_) => format!("b\"{}\"", input.escape_ascii()),
    }
}

/// Job bodies of the corpus (job and config entries: a config is a mapping too).
fn corpus_bodies() -> Vec<String> {
    let text = std::fs::read_to_string(CORPUS).expect("read the corpus");
    let mut bodies = Vec::new();
    for entry in text.split("\n### ").skip(1) {
        let mut body = String::new();
        let mut cli = false;
        for line in entry.split_inclusive('\n').skip(1) {
            if line.starts_with("where: cli") {
                cli = true;
            } else if !(line.starts_with("where: ") || line.starts_with("expect: ")) {
                body.push_str(line);
            }
        }
        if !cli {
            bodies.push(body);
        }
    }
    bodies
}

/// A seed input: its text, and whether it plans without fake tools (no LVM, no ZFS).
struct Seed {
    name: String,
    text: String,
    fake_free: bool,
}

/// Where a job's commands would leave their markers: each worker puts its own fixture's
/// `markers` directory there when it writes an input, so that the inputs themselves are the
/// same in every run.
const MARKERS: &str = "@MARKERS@";

/// Valid jobs of every backend and source. Their commands would leave a marker in
/// [`MARKERS`], which must stay empty.
fn valid_jobs() -> Vec<Seed> {
    let marker = |name: &str| format!("{MARKERS}/{name}");
    vec![
        Seed {
            name: "rdiff".into(),
            text: "#!/usr/bin/env -S ari run\nlabel: web\nbackend: rdiff\ninclude: [/etc, /srv/www]\nexclude: [/srv/www/tmp, '**/*.tmp']\nremove_older_than_timespec: 1M\nrdiff_backup_options: [--exclude-fifos]\nssh_compression: false\n".into(),
            fake_free: true,
        },
        Seed {
            name: "rdiff+lvm".into(),
            text: "label: db\nsnapshot: lvm\nvolumes:\n  - {name: vg0/root, mount_point: /}\n  - name: vg1/data\n    mount_point: /srv/data\n    mount_options: \"ro,noatime\"\ninclude: [/etc, /srv/data]\nexclude: ['**/*.tmp']\nsnapshot_size: 2G\nsnapshot_suffix: -ari_backup\n".to_string(),
            fake_free: false,
        },
        Seed {
            name: "zfs+lvm".into(),
            text: "label: mybackup\nbackend: zfs\nsnapshot: lvm\nvolumes: [{ name: vg0/root, mount_point: / }]\ninclude: [/etc, /srv]\nrsync_dst: zfs-host:/zpool-0/backups/mybackup\nzfs_hostname: zfs-host\ndataset_name: zpool-0/backups/mybackup\nsnapshot_expiration_days: 60\nzfs_keep_min: 2\nzfs_snapshot_prefix: ari-backup-\n".into(),
            fake_free: false,
        },
        Seed {
            name: "command".into(),
            text: format!(
                "label: restic\nbackend: command\ncommand: [touch, {}]\ncommand_host: local\n",
                marker("command")
            ),
            fake_free: true,
        },
        Seed {
            name: "hooks".into(),
            text: format!(
                "label: hooks\nbackend: command\ncommand: \"touch {main}\"\ncommand_timeout: 1h\nmax_retries: 2\npre:\n  - command: [touch, {pre}]\n  - command: \"echo pre > {pre}2\"\n    host: localhost\npost:\n  - command: [touch, {post}]\n    when: success\n  - {{command: \"touch {post}-failure\", when: failure}}\n  - command: [touch, \"{post}-always\"]\n    host: localhost\n    when: always\n",
                main = marker("main"),
                pre = marker("pre"),
                post = marker("post"),
            ),
            fake_free: true,
        },
    ]
}

/// The lines of ari's errors, without their prefix.
fn error_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|l| l.strip_prefix("ari [ERROR] ").or_else(|| l.strip_prefix("error: ")))
}

/// Whether the output reports a missing tool or directory, which names the job by its label and
/// the setting (`job web: rdiff_backup_path: `/x` not found (searched PATH=...)`, as
/// docs/failures.md shows): ari looks every tool up for all jobs at once, after parsing them.
fn reports_a_missing_tool(text: &str) -> bool {
    error_lines(text).any(|line| {
        line.starts_with("job ")
            && [
                " not found (searched PATH=",
                " does not exist: create it",
                " is not a directory",
                ": cannot use `",
            ]
            .iter()
            .any(|shape| line.contains(shape))
    })
}

/// What went wrong with one run of ari, if anything.
fn judge(what: &str, out: &Output, job: &Path, problems: &mut Vec<String>) {
    let err = stderr(out);
    let text = format!("{}{err}", stdout(out));
    let before = problems.len();
    match out.status.code() {
        Some(0) | Some(2) => {}
        Some(code) => problems.push(format!("ari {what} exited {code}, not 0 or 2")),
        None => problems.push(format!("ari {what} was killed by a signal: {:?}", out.status)),
    }
    if err.contains("panicked") {
        problems.push(format!("ari {what} panicked"));
    }
    if out.status.code() == Some(2)
        && !text.contains(&job.display().to_string())
        && !reports_a_missing_tool(&text)
    {
        problems.push(format!("ari {what} exited 2 without naming the job file"));
    }
    // An error shows a value's control characters escaped (`\u{1b}`), so that a job file cannot
    // write to the terminal or to syslog through ari's errors; a file's further errors are
    // lines of their own, each starting with the file.
    let file = job.display().to_string();
    let further = text.lines().filter(|line| line.starts_with(&file));
    if let Some(line) = error_lines(&text).chain(further).find(|line| line.chars().any(char::is_control)) {
        problems.push(format!("ari {what} printed a control character in an error: {}", line.escape_debug()));
    }
    if problems.len() > before {
        problems.push(format!("output of ari {what}:\n{}", text.escape_debug()));
    }
}

/// One worker's fixture: a [`World`] (a mount root, the fakes first on PATH, so that LVM and ZFS
/// jobs find their tools, and any call of one is recorded) with a markers directory.
struct Worker {
    world: World,
}

impl Worker {
    fn new() -> Worker {
        let world = World::new();
        std::fs::create_dir_all(world.fx.path("markers")).unwrap();
        Worker { world }
    }

    /// Runs ari on one input.
    fn check(&self, input: &[u8], sample: bool) -> Outcome {
        let job = self.world.fx.path("jobs.d/fuzz.yaml");
        std::fs::write(&job, self.with_markers(input)).unwrap();
        let mut problems = Vec::new();
        let out = run(self.world.ari().arg("check").arg(&job));
        judge("check", &out, &job, &mut problems);
        let accepted = out.status.code() == Some(0);
        if !sample {
            return Outcome { problems, runs: 1, accepted };
        }
        let out = run(self.world.ari().arg("plan").arg("--json").arg(&job));
        judge("plan --json", &out, &job, &mut problems);
        if out.status.code() == Some(0) {
            if let Err(err) = serde_json::Deserializer::from_slice(&out.stdout)
                .into_iter::<serde_json::Value>()
                .collect::<Result<Vec<_>, _>>()
            {
                problems.push(format!("ari plan --json printed what is not JSON: {err}\n{}", stdout(&out)));
            }
        }
        let out = run(self.world.ari().arg("run").arg("--dry-run").arg(&job));
        judge("run --dry-run", &out, &job, &mut problems);
        Outcome { problems, runs: 3, accepted }
    }

    /// The input with [`MARKERS`] replaced by this worker's markers directory.
    fn with_markers(&self, input: &[u8]) -> Vec<u8> {
        let markers = self.world.fx.p("markers");
        let mut out = Vec::with_capacity(input.len());
        let mut rest = input;
        while let Some(at) = rest.windows(MARKERS.len()).position(|w| w == MARKERS.as_bytes()) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(markers.as_bytes());
            rest = &rest[at + MARKERS.len()..];
        }
        out.extend_from_slice(rest);
        out
    }

    /// Whatever ran that should not have: a fake tool called, a marker left.
    fn leftovers(&self) -> Vec<String> {
        let mut found: Vec<String> =
            self.world.fakes.calls().iter().map(|c| format!("called {}", c.describe())).collect();
        for entry in std::fs::read_dir(self.world.fx.path("markers")).unwrap().flatten() {
            found.push(format!("a job's command ran: {} exists", entry.path().display()));
        }
        found
    }
}

/// What came of one input.
struct Outcome {
    /// What went wrong, with ari's output.
    problems: Vec<String>,
    /// How many times ari ran.
    runs: usize,
    /// Whether `ari check` accepted it.
    accepted: bool,
}

/// One input: how it was made, and its bytes.
struct Input {
    number: usize,
    recipe: String,
    bytes: Vec<u8>,
    sample: bool,
}

fn inputs(seeds: &[Seed], valid: usize, seed: u64, count: usize) -> Vec<Input> {
    let mut rng = Rng(seed);
    let hostile = hostile_values();
    (0..count)
        .map(|number| {
            // Half from the valid jobs, whose mutants reach deeper than the corpus's.
            let seed = if rng.below(2) == 0 { &seeds[rng.below(valid)] } else { rng.pick(seeds) };
            let mut bytes = seed.text.clone().into_bytes();
            let mut steps = Vec::new();
            for _ in 0..1 + rng.below(3) {
                steps.push(mutate(&mut rng, &mut bytes, &hostile));
            }
            Input {
                number,
                recipe: format!("from `{}`: {}", seed.name, steps.join("; ")),
                bytes,
                sample: seed.fake_free && number % SAMPLE_EVERY == 0,
            }
        })
        .collect()
}

#[test]
fn mutated_job_files_are_checked_or_refused_naming_the_file_and_run_nothing() {
    let workers: Vec<Worker> = (0..WORKERS).map(|_| Worker::new()).collect();
    let mut seeds = valid_jobs();
    let valid = seeds.len();
    for (i, body) in corpus_bodies().into_iter().enumerate() {
        let fake_free = !body.contains("lvm") && !body.contains("zfs");
        seeds.push(Seed { name: format!("corpus entry {}", i + 1), text: body, fake_free });
    }
    assert!(seeds.len() > 150, "only {} seeds: did the corpus move?", seeds.len());

    // The valid jobs are valid: their mutants start from something ari accepts.
    for seed in &seeds[..valid] {
        let job = workers[0].world.fx.path("jobs.d/valid.yaml");
        std::fs::write(&job, workers[0].with_markers(seed.text.as_bytes())).unwrap();
        let out = run(workers[0].world.ari().arg("check").arg(&job));
        assert_eq!(out.status.code(), Some(0), "{}: {}{}", seed.name, stdout(&out), stderr(&out));
    }

    let seed = from_env("ARI_FUZZ_SEED", SEED);
    let inputs = inputs(&seeds, valid, seed, from_env("ARI_FUZZ_INPUTS", INPUTS));
    let started = Instant::now();
    let results: Vec<(usize, Outcome)> = std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .iter()
            .enumerate()
            .map(|(w, worker)| {
                let inputs = &inputs;
                scope.spawn(move || {
                    inputs
                        .iter()
                        .skip(w)
                        .step_by(WORKERS)
                        .map(|input| (input.number, worker.check(&input.bytes, input.sample)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a fuzz worker panicked")).collect()
    });
    let elapsed = started.elapsed();
    let runs: usize = results.iter().map(|(_, outcome)| outcome.runs).sum();
    let accepted = results.iter().filter(|(_, outcome)| outcome.accepted).count();
    println!(
        "fuzz: {} inputs ({accepted} accepted by check, the rest refused), {runs} runs of ari, in {:.1} s (seed {seed:#x})",
        inputs.len(),
        elapsed.as_secs_f64()
    );

    let mut report = String::new();
    let mut failed = 0;
    for (number, Outcome { problems, .. }) in &results {
        if problems.is_empty() {
            continue;
        }
        failed += 1;
        let input = &inputs[*number];
        let _ = writeln!(
            report,
            "--- input {} ({}; {MARKERS} stands for a fixture's directory):\n{}\n{}",
            input.number,
            input.recipe,
            escaped(&input.bytes),
            problems.join("\n")
        );
    }
    for worker in &workers {
        for leftover in worker.leftovers() {
            let _ = writeln!(report, "--- nothing may run, but: {leftover}");
        }
    }
    assert!(report.is_empty(), "{failed} of {} inputs failed:\n{report}", inputs.len());
}
