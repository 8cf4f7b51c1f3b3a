//! Pings of a monitoring URL (`ping_url`, healthchecks.io conventions): `URL/start` when a job
//! starts, `URL` when it succeeds, `URL/fail` (or `URL/EXIT_CODE` with `ping_exit_code`) when it
//! fails, with the job's last log lines as the body. A ping never fails or holds up a backup:
//! the start ping runs beside the job, each try is bounded by `ping_timeout` (at most an hour),
//! a failed one is tried `ping_retries` times more, and what still fails is a warning in the log.
//! A redirect is followed only to the ping URL's own host, and logs show the URL by its scheme
//! and host only (the rest is the check's secret).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use ari_core::core_settings::{PING_EXIT_CODE, PING_RETRIES, PING_TIMEOUT, PING_URL};
use ari_core::engine_api::plan::JobPlan;
use ari_core::kinds::{self, shown_url};

/// How many of a job's last log lines a ping carries.
const TAIL_LINES: usize = 50;
/// How long a failed ping waits before it is tried again.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// The last log lines of each job (info and above), for the body of its pings.
static TAILS: Mutex<BTreeMap<String, VecDeque<String>>> = Mutex::new(BTreeMap::new());

/// Keeps a log line of the job the current thread works for (called by the logger).
pub fn remember(record: &log::Record) {
    let Some(label) = ari_core::engine_api::log_context::job_label() else { return };
    if record.level() > log::Level::Info {
        return;
    }
    let mut tails = TAILS.lock().unwrap_or_else(|e| e.into_inner());
    let tail = tails.entry(label).or_default();
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(format!("[{}] {}", record.level(), record.args()));
}

fn tail_of(label: &str) -> String {
    let tails = TAILS.lock().unwrap_or_else(|e| e.into_inner());
    tails
        .get(label)
        .map(|lines| lines.iter().cloned().collect::<Vec<_>>().join("\n") + "\n")
        .unwrap_or_default()
}

/// The pings of one job's run.
pub struct Pings {
    url: String,
    label: String,
    exit_code: bool,
    retries: u32,
    agent: ureq::Agent,
    start: Option<JoinHandle<()>>,
}

impl Pings {
    /// Sends the start ping of `plan`'s job beside the run, when it has a `ping_url` and the
    /// run is real.
    pub fn start(plan: &JobPlan, dry_run: bool) -> Option<Pings> {
        let url = plan.settings.get(&PING_URL).filter(|_| !dry_run)?;
        let timeout = plan.settings.get(&PING_TIMEOUT);
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(true)
            // Redirects are followed by `post`, to the same host only.
            .max_redirects(0)
            .tls_config(
                ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build(),
            )
            .user_agent(format!("ari/{}", env!("CARGO_PKG_VERSION")))
            .build();
        let mut pings = Pings {
            url: url.trim_end_matches('/').to_string(),
            label: plan.label().to_string(),
            exit_code: plan.settings.get(&PING_EXIT_CODE),
            retries: plan.settings.get(&PING_RETRIES),
            agent: config.into(),
            start: None,
        };
        let (agent, url, label, retries) =
            (pings.agent.clone(), pings.url.clone(), pings.label.clone(), pings.retries);
        pings.start = Some(std::thread::spawn(move || {
            ari_core::engine_api::log_context::set_job_label(Some(&label));
            send(&agent, &url, "/start", "", retries);
        }));
        Some(pings)
    }

    /// Sends the end ping for a run that exited with `code`, after the start ping is done.
    pub fn finish(mut self, code: i32) {
        if let Some(start) = self.start.take() {
            let _ = start.join();
        }
        let suffix = match code {
            0 => String::new(),
            code if self.exit_code => format!("/{code}"),
            _ => "/fail".to_string(),
        };
        let body = format!("ari job {} exited {code}\n{}", self.label, tail_of(&self.label));
        send(&self.agent, &self.url, &suffix, &body, self.retries);
    }
}

/// POSTs `body` to `base` + `suffix`, trying `retries` times more; a ping that never got
/// through is a warning.
fn send(agent: &ureq::Agent, base: &str, suffix: &str, body: &str, retries: u32) {
    let url = format!("{base}{suffix}");
    let shown = format!("{}{suffix}", shown_url(base));
    let mut last = String::new();
    for attempt in 0..=retries {
        if attempt > 0 {
            std::thread::sleep(RETRY_PAUSE);
        }
        match post(agent, &url, body) {
            Ok(()) => {
                log::debug!("pinged {shown}");
                return;
            }
            Err(err) => {
                // An HTTP client's error may name the URL it was given: never its secret.
                last = err.replace(&url, &shown).replace(base, &shown_url(base));
                log::debug!("ping {shown} failed (try {} of {}): {last}", attempt + 1, retries + 1);
            }
        }
    }
    log::warn!("the ping of {shown} failed after {} tries: {last}; the backup is not affected", retries + 1);
}

/// How many redirects one ping follows.
const MAX_REDIRECTS: usize = 3;

/// POSTs `body` to `url`, following a redirect only to the same host (and port, or from http
/// to https): the body carries the job's log lines, and the backup server should not be sent
/// to other hosts of a network by a monitoring service's answer.
fn post(agent: &ureq::Agent, url: &str, body: &str) -> Result<(), String> {
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let response = agent
            .post(&url)
            .content_type("text/plain; charset=utf-8")
            .send(body)
            .map_err(|err| err.to_string().replace(&url, &shown_url(&url)))?;
        if !response.status().is_redirection() {
            return Ok(());
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| format!("a redirect ({}) without a Location", response.status()))?;
        let next = redirect_target(&url, location)?;
        url = next;
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

/// Where a redirect from `from` to `location` goes, when it stays on `from`'s host; the
/// error says why it is not followed.
fn redirect_target(from: &str, location: &str) -> Result<String, String> {
    let (scheme, rest) = from.split_once("://").unwrap_or(("http", from));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let origin = &from[..scheme.len() + 3 + authority_end];
    let target = if location.contains("://") {
        location.to_string()
    } else if location.starts_with("//") {
        format!("{scheme}:{location}")
    } else if location.starts_with('/') {
        format!("{origin}{location}")
    } else {
        // Relative to the request's directory.
        let path = &rest[authority_end..];
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let directory = path.rsplit_once('/').map_or("", |(directory, _)| directory);
        format!("{origin}{directory}/{location}")
    };
    kinds::check_url(&target).map_err(|why| format!("a redirect to a URL that {why}"))?;
    if same_origin_or_upgrade(from, &target) {
        Ok(target)
    } else {
        Err(format!(
            "redirected to {}, another host than the ping URL's, which ari does not follow",
            shown_url(&target)
        ))
    }
}

/// Whether `to` is on `from`'s host: the same host name, and the same scheme and port, or
/// http upgraded to https on its default port.
fn same_origin_or_upgrade(from: &str, to: &str) -> bool {
    let parts = |url: &str| -> Option<(String, String, u16)> {
        let (scheme, rest) = url.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        let host_port = authority.rsplit('@').next()?;
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, Some(port.parse::<u16>().ok()?)),
            _ => (host_port, None),
        };
        let scheme = scheme.to_ascii_lowercase();
        let port = port.unwrap_or(if scheme == "https" { 443 } else { 80 });
        Some((scheme, host.to_ascii_lowercase(), port))
    };
    match (parts(from), parts(to)) {
        (Some((from_scheme, from_host, from_port)), Some((to_scheme, to_host, to_port))) => {
            from_host == to_host
                && ((from_scheme == to_scheme && from_port == to_port)
                    || (from_scheme == "http" && to_scheme == "https" && to_port == 443))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_is_followed_on_the_same_host_only() {
        let from = "http://hc.example:8000/ping/secret";
        let ok = |location: &str, expected: &str| {
            assert_eq!(redirect_target(from, location).as_deref(), Ok(expected), "{location}")
        };
        ok("/ping/other", "http://hc.example:8000/ping/other");
        ok("other", "http://hc.example:8000/ping/other");
        ok("http://HC.example:8000/x", "http://HC.example:8000/x");
        ok("//hc.example:8000/x", "http://hc.example:8000/x");
        assert_eq!(
            redirect_target("http://hc.example/p", "https://hc.example/p").as_deref(),
            Ok("https://hc.example/p"),
            "http upgraded to https"
        );
        for elsewhere in [
            "http://other.example:8000/ping/secret",
            "http://hc.example:8001/x",
            "https://hc.example:8000/x",
            "http://hc.example.evil:8000/x",
            "http://hc.example:8000@evil/x",
            "//evil/x",
        ] {
            let err = redirect_target(from, elsewhere).unwrap_err();
            assert!(err.contains("another host"), "{elsewhere}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
        assert!(redirect_target("https://hc.example/p", "http://hc.example/p").is_err(), "no downgrade");
        assert!(redirect_target(from, "file:///etc/passwd").is_err());
        assert!(redirect_target(from, "/a b").unwrap_err().contains("a URL that holds"));
    }
}
