//! Pings of `ping_url` against a real HTTP server on loopback that this test starts: the start,
//! success and failure pings with the log's last lines, the exit-code form, and servers that
//! answer 500, hang, or refuse connections, none of which fails or holds the backup.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use tests::rdiff::rdiff_backup;
use tests::{assert_exit, eventually, run, stderr, Fixture, Running};

/// How the server answers.
#[derive(Clone, PartialEq)]
enum Answer {
    Ok,
    Error500,
    /// Reads the request and never answers.
    Hang,
    /// A 307 redirect to this prefix + `/moved` + the request's path, for paths not under
    /// `/moved`; those get 200.
    Redirect(String),
}

/// A request the server got: method, path, body.
type Request = (String, String, String);

/// An HTTP server on 127.0.0.1 that records every request.
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn start(answer: Answer) -> Server {
        Server::start_on("127.0.0.1", answer)
    }

    /// A server on `address`, a loopback address.
    fn start_on(address: &str, answer: Answer) -> Server {
        let listener = TcpListener::bind((address, 0)).expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                let request = read_request(&stream);
                let path = request.as_ref().map(|(_, path, _)| path.clone()).unwrap_or_default();
                if let Some(request) = request {
                    seen.lock().unwrap().push(request);
                }
                let mut stream = stream;
                match &answer {
                    Answer::Redirect(prefix) if !path.starts_with("/moved") => {
                        let _ = stream.write_all(
                            format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {prefix}/moved{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                .as_bytes(),
                        );
                    }
                    Answer::Ok | Answer::Redirect(_) => {
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK",
                        );
                    }
                    Answer::Error500 => {
                        let _ = stream.write_all(
                            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                    // Keep the connection open, unanswered, until the test ends.
                    Answer::Hang => held.push(stream),
                }
            }
        });
        Server { port, requests }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/ping/0f6c-secret", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let (method, path) = (words.next()?.to_string(), words.next()?.to_string());
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, String::from_utf8_lossy(&body).into_owned()))
}

fn job(fx: &Fixture, name: &str, extra: &str) -> std::path::PathBuf {
    let src = fx.make_tree("src", &[("a", "1")]);
    fx.write_job(&format!("{name}.yaml"), &format!("include: [{}]\n{extra}", src.display()))
}

#[test]
fn a_job_pings_start_then_success_or_failure_with_its_last_log_lines() {
    rdiff_backup();
    let server = Server::start(Answer::Ok);
    let fx = Fixture::new();
    fx.write_config(&format!("ping_url: {}\n", server.url()));
    let good = job(&fx, "good", "");
    assert_exit(&run(fx.ari().arg("run").arg(&good).arg("--dry-run")), 0);
    assert!(server.requests().is_empty(), "a dry run pings nothing: {:?}", server.requests());

    assert_exit(&run(fx.ari().arg("run").arg(&good)), 0);
    let requests = server.requests();
    let paths: Vec<&str> = requests
        .iter()
        .map(|(m, p, _)| {
            assert_eq!(m, "POST");
            p.as_str()
        })
        .collect();
    assert_eq!(paths, ["/ping/0f6c-secret/start", "/ping/0f6c-secret"]);
    let body = &requests[1].2;
    assert!(body.starts_with("ari job good exited 0\n"), "{body}");
    assert!(body.contains("[INFO] job succeeded"), "the log's last lines: {body}");

    let bad = job(&fx, "bad", "pre:\n  - command: [\"false\"]\n");
    assert_exit(&run(fx.ari().arg("run").arg(&bad)), 1);
    let (_, path, body) = server.requests().last().cloned().unwrap();
    assert_eq!(path, "/ping/0f6c-secret/fail");
    assert!(body.starts_with("ari job bad exited 1\n") && body.contains("[ERROR]"), "{body}");

    assert_exit(&run(fx.ari().arg("run").arg(&bad).arg("--ping-exit-code")), 1);
    assert_eq!(
        server.requests().last().unwrap().1,
        "/ping/0f6c-secret/1",
        "healthchecks.io's exit-status form"
    );
}

/// Runs `job` with `--debug` and returns its stderr once it exited 0 (a hang fails the test).
fn runs_anyway(fx: &Fixture, job: &std::path::Path) -> String {
    let mut ari = Running::start(fx.ari().arg("run").arg(job).arg("--debug"));
    assert!(
        eventually(|| ari.child.try_wait().expect("poll ari").is_some()),
        "ari is held by its ping: {}",
        ari.stderr_so_far()
    );
    let out = ari.wait();
    assert_exit(&out, 0);
    stderr(&out)
}

fn warned(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        l.contains("[WARN]")
            && l.contains("the ping of http://127.0.0.1:")
            && l.contains("the backup is not affected")
    })
}

#[test]
fn a_server_that_errs_hangs_or_refuses_never_fails_or_holds_the_backup() {
    rdiff_backup();
    let fx = Fixture::new();
    let good = job(&fx, "good", "");

    let erring = Server::start(Answer::Error500);
    fx.write_config(&format!("ping_url: {}\nping_retries: 1\n", erring.url()));
    let err = runs_anyway(&fx, &good);
    assert!(warned(&err), "{err}");
    assert!(!err.contains("0f6c-secret"), "the URL's secret stays out of the log:\n{err}");
    assert_eq!(erring.requests().len(), 4, "start and end, each tried twice: {:?}", erring.requests());

    let hanging = Server::start(Answer::Hang);
    fx.write_config(&format!("ping_url: {}\nping_timeout: 1s\nping_retries: 0\n", hanging.url()));
    let err = runs_anyway(&fx, &good);
    assert!(warned(&err), "{err}");

    let refusing = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = refusing.local_addr().unwrap().port();
    drop(refusing);
    fx.write_config(&format!("ping_url: http://127.0.0.1:{port}/ping/x\nping_retries: 0\n"));
    let err = runs_anyway(&fx, &good);
    assert!(warned(&err), "{err}");
    assert!(fx.path("store/good/rdiff-backup-data").is_dir(), "the backups ran");
}

#[test]
fn a_redirect_is_followed_on_the_ping_urls_host_only() {
    rdiff_backup();
    let fx = Fixture::new();
    let good = job(&fx, "good", "");

    let same = Server::start(Answer::Redirect(String::new()));
    fx.write_config(&format!("ping_url: {}\nping_retries: 0\n", same.url()));
    let err = runs_anyway(&fx, &good);
    assert!(!warned(&err), "{err}");
    let paths: Vec<String> = same.requests().into_iter().map(|(_, path, _)| path).collect();
    assert_eq!(
        paths,
        [
            "/ping/0f6c-secret/start",
            "/moved/ping/0f6c-secret/start",
            "/ping/0f6c-secret",
            "/moved/ping/0f6c-secret"
        ],
        "each ping redirected once on the same host, and followed"
    );

    // Another host: 127.0.0.2 is loopback too, but not the host the ping URL names.
    let other = Server::start_on("127.0.0.2", Answer::Ok);
    let away = Server::start(Answer::Redirect(format!("http://127.0.0.2:{}", other.port)));
    fx.write_config(&format!("ping_url: {}\nping_retries: 0\n", away.url()));
    let err = runs_anyway(&fx, &good);
    assert!(warned(&err) && err.contains("another host"), "{err}");
    assert!(!err.contains("0f6c-secret"), "the URL's secret stays out of the log:\n{err}");
    assert!(other.requests().is_empty(), "nothing reached the other host: {:?}", other.requests());
    assert_eq!(away.requests().len(), 2, "the start and the end ping, not followed: {:?}", away.requests());
}

#[test]
fn no_command_prints_the_ping_urls_secret() {
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a", "1")]);
    fx.write_config("ping_url: https://user:pw@hc-ping.example:8443/ping/0f6c-secret?k=v\n");
    let job = fx.write_job(
        "j.yaml",
        &format!(
            "include: [{}]\nping_url: https://hc-ping.example/ping/0f6c-secret-of-the-job\n",
            src.display()
        ),
    );
    let settings = run(fx.ari().arg("settings"));
    assert_exit(&settings, 0);
    let text = tests::stdout(&settings);
    let line = text.lines().find(|l| l.starts_with("ping_url ")).expect("a ping_url line");
    assert!(line.contains("https://hc-ping.example:8443/…"), "scheme and host: {line}");
    for args in [
        vec!["settings".into(), job.display().to_string()],
        vec!["settings".into()],
        vec!["plan".into(), job.display().to_string()],
        vec!["plan".into(), "--json".into(), job.display().to_string()],
        vec!["check".into(), job.display().to_string()],
        vec!["list".into()],
        vec!["run".into(), "--dry-run".into(), "--debug".into(), job.display().to_string()],
    ] {
        let out = run(fx.ari().args(&args));
        let text = format!("{}{}", tests::stdout(&out), stderr(&out));
        for secret in ["0f6c-secret", "pw@", "k=v"] {
            assert!(!text.contains(secret), "ari {args:?} printed `{secret}`:\n{text}");
        }
    }
    let bad = run(fx.ari().arg("check").arg("--ping-url").arg("ftp://hc-ping.example/0f6c-secret"));
    assert_exit(&bad, 2);
    assert!(stderr(&bad).contains("`ftp://hc-ping.example/…` must start with"), "{}", stderr(&bad));
    assert!(!stderr(&bad).contains("0f6c-secret"), "{}", stderr(&bad));
}
