//! Pings of a monitoring URL (`ping_url`, healthchecks.io conventions): `URL/start` when a job
//! starts, `URL` when it succeeds, `URL/fail` (or `URL/EXIT_CODE` with `ping_exit_code`) when it
//! fails, with the job's last log lines as the body. A ping never fails or holds up a backup:
//! the start ping runs beside the job, each try is bounded by `ping_timeout`, a failed one is
//! tried `ping_retries` times more, and what still fails is a warning in the log.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use ari_core::core_settings::{PING_EXIT_CODE, PING_RETRIES, PING_TIMEOUT, PING_URL};
use ari_core::pipeline::JobPlan;

/// How many of a job's last log lines a ping carries.
const TAIL_LINES: usize = 50;
/// How long a failed ping waits before it is tried again.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// The last log lines of each job (info and above), for the body of its pings.
static TAILS: Mutex<BTreeMap<String, VecDeque<String>>> = Mutex::new(BTreeMap::new());

/// Keeps a log line of the job the current thread works for (called by the logger).
pub fn remember(record: &log::Record) {
    let Some(label) = ari_core::log_context::job_label() else { return };
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
            .max_redirects(3)
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
            ari_core::log_context::set_job_label(Some(&label));
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
    let shown = format!("{}{suffix}", redacted(base));
    let mut last = String::new();
    for attempt in 0..=retries {
        if attempt > 0 {
            std::thread::sleep(RETRY_PAUSE);
        }
        match agent.post(&url).content_type("text/plain; charset=utf-8").send(body) {
            Ok(_) => {
                log::debug!("pinged {shown}");
                return;
            }
            Err(err) => {
                last = err.to_string();
                log::debug!("ping {shown} failed (try {} of {}): {last}", attempt + 1, retries + 1);
            }
        }
    }
    log::warn!("the ping of {shown} failed after {} tries: {last}; the backup is not affected", retries + 1);
}

/// A ping URL as logs show it: its scheme and host, the rest (healthchecks.io's secret) hidden.
fn redacted(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{host}/…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_hide_the_secret_of_a_ping_url() {
        assert_eq!(redacted("https://hc-ping.com/abc-uuid"), "https://hc-ping.com/…");
        assert_eq!(redacted("https://user:pw@hc.example:8000/ping/abc?x=1"), "https://hc.example:8000/…");
    }
}
