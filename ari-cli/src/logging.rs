//! Logging: `ari (LABEL) [LEVEL] message` to stderr (errors only; every level with `debug`, then
//! with file:line; info with `dry_run`, so a dry run shows its commands) and to syslog (ident
//! `ari`, facility daemon; info and above, debug with `debug`). A missing `/dev/log` is fine.

use log::LevelFilter;

/// What the logger is set up from: the global config and the command line.
pub struct LogSettings {
    /// `debug`.
    pub debug: bool,
    /// `dry_run`.
    pub dry_run: bool,
    /// `stderr_logging`.
    pub stderr_logging: bool,
}

/// Sets up the logger once for the process.
pub fn init(settings: &LogSettings) {
    let stderr_level = if settings.debug {
        LevelFilter::Debug
    } else if settings.dry_run {
        LevelFilter::Info
    } else if settings.stderr_logging {
        LevelFilter::Error
    } else {
        LevelFilter::Off
    };
    let debug = settings.debug;
    let stderr = fern::Dispatch::new()
        .level(stderr_level)
        .format(move |out, message, record| {
            let label = ari_core::engine_api::log_context::job_label();
            let prefix = match &label {
                Some(label) => format!("ari ({label}) [{}]", record.level()),
                None => format!("ari [{}]", record.level()),
            };
            if debug {
                let file = record.file().unwrap_or("?");
                let file = file.rsplit('/').next().unwrap_or(file);
                out.finish(format_args!("{prefix} {file}:{} {message}", record.line().unwrap_or(0)))
            } else {
                out.finish(format_args!("{prefix} {message}"))
            }
        })
        .chain(std::io::stderr());
    // Each job's last lines, for the body of its pings.
    let tails =
        fern::Dispatch::new().level(LevelFilter::Info).chain(fern::Output::call(crate::ping::remember));
    let mut root = fern::Dispatch::new().level(LevelFilter::Debug).chain(stderr).chain(tails);
    let formatter = syslog::Formatter3164 {
        facility: syslog::Facility::LOG_DAEMON,
        hostname: None,
        process: "ari".into(),
        pid: std::process::id(),
    };
    if let Ok(logger) = syslog::unix(formatter) {
        let syslog = fern::Dispatch::new()
            .level(if debug { LevelFilter::Debug } else { LevelFilter::Info })
            .format(|out, message, record| {
                let label = ari_core::engine_api::log_context::job_label().unwrap_or_else(|| "-".into());
                out.finish(format_args!("({label}) [{}] {message}", record.level()))
            })
            .chain(logger);
        root = root.chain(syslog);
    }
    // Only fails when a logger is already set, which a second call in tests may do.
    let _ = root.apply();
}
