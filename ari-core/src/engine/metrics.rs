//! Prometheus metrics of every job, for node_exporter's textfile collector (`metrics_file`):
//! rendered from the jobs' histories in `state_dir`, so that `ari run JOB` and `ari run-all`
//! write the same file, with every job in it, whichever ran last. Written atomically after
//! every real run through `files::write_outside_file` (never over a device, a FIFO, a symlink
//! or another user's file); a failure to write it is a warning, never the run's failure.

use std::fmt::Write as _;
use std::path::Path;

use crate::engine::files::{Area, StateDir};
use crate::engine::history::History;

/// The metrics of every job with a history under `state_dir`, at `now` (seconds since the epoch).
/// A history that cannot be read (corrupt, or refused) is a warning, and its job shows only
/// `ari_job_history_readable 0` until its next run starts a new one.
pub(crate) fn render(state_dir: &Path, now: f64) -> String {
    let files = StateDir::new(state_dir).list(Area::History, ".json").unwrap_or_default();
    let labels = files.iter().filter_map(|name| name.strip_suffix(".json")).map(String::from);
    let read: Vec<(String, Option<History>)> = labels
        .into_iter()
        .map(|label| match History::read(state_dir, &label) {
            Ok(history) => (label, Some(history)),
            Err(err) => {
                log::warn!("the metrics leave out job {label}: {}", crate::contract::error::chain(&err));
                (label, None)
            }
        })
        .collect();
    let jobs: Vec<(String, History)> =
        read.iter().filter_map(|(label, history)| Some((label.clone(), history.clone()?))).collect();
    let mut out = String::new();
    family(&mut out, "ari_build_info", "The version of ari that wrote these metrics.", |out| {
        let _ = writeln!(out, "ari_build_info{{version=\"{}\"}} 1", escape(env!("CARGO_PKG_VERSION")));
    });
    family(&mut out, "ari_metrics_written_timestamp_seconds", "When ari wrote this file.", |out| {
        let _ = writeln!(out, "ari_metrics_written_timestamp_seconds {now}");
    });
    if !read.is_empty() {
        family(
            &mut out,
            "ari_job_history_readable",
            "1 when the job's history could be read, 0 when it is corrupt or refused (its next run moves a corrupt one aside).",
            |out| {
                for (label, history) in &read {
                    let _ = writeln!(out, "ari_job_history_readable{{job=\"{}\"}} {}", escape(label), u8::from(history.is_some()));
                }
            },
        );
    }
    type Value = fn(&History) -> Option<f64>;
    let per_job: [(&str, &str, Value); 13] = [
        ("ari_job_last_run_start_timestamp_seconds", "When the job's last run started.", |h| {
            h.last().map(|r| r.started as f64)
        }),
        ("ari_job_last_run_duration_seconds", "How long the job's last run took.", |h| {
            h.last().map(|r| r.duration_seconds)
        }),
        (
            "ari_job_last_run_exit_code",
            "The exit code of the job's last run (0 success, 1 failed, 3 cleanup failed).",
            |h| h.last().map(|r| f64::from(r.exit)),
        ),
        ("ari_job_last_run_success", "1 when the job's last run succeeded, else 0.", |h| {
            h.last().map(|r| if r.exit == 0 { 1.0 } else { 0.0 })
        }),
        ("ari_job_last_success_timestamp_seconds", "When the job's last successful run ended.", |h| {
            h.last_success().map(|r| r.end())
        }),
        (
            "ari_job_last_run_changed_files",
            "Files the job's last run changed (new, changed, deleted), as its tool reported.",
            |h| h.last().and_then(|r| r.files).map(|n| n as f64),
        ),
        (
            "ari_job_last_run_transferred_bytes",
            "Bytes of files the job's last run sent, as its tool reported.",
            |h| h.last().and_then(|r| r.bytes).map(|n| n as f64),
        ),
        (
            "ari_job_last_verify_timestamp_seconds",
            "When the run whose spot check (verify_sample) last gave a verdict ended.",
            |h| h.last_verified().map(|(r, _)| r.end()),
        ),
        (
            "ari_job_last_verify_success",
            "1 when the last spot check found the backup as the host held it, else 0.",
            |h| h.last_verified().map(|(_, v)| if v.passed { 1.0 } else { 0.0 }),
        ),
        ("ari_job_last_verify_files", "Files the last spot check compared.", |h| {
            h.last_verified().map(|(_, v)| v.files as f64)
        }),
        ("ari_job_last_verify_bytes", "Bytes the last spot check compared by content.", |h| {
            h.last_verified().map(|(_, v)| v.bytes as f64)
        }),
        (
            "ari_job_last_verify_mismatches",
            "Files the last spot check found missing, extra, differing or unreadable.",
            |h| h.last_verified().map(|(_, v)| v.failed as f64),
        ),
        (
            "ari_job_verify_interval_seconds",
            "The job's verify_every: a spot check older than twice this is overdue.",
            |h| h.last_verified().and_then(|(_, v)| v.every_seconds).map(|s| s as f64),
        ),
    ];
    for (name, help, value) in per_job {
        let samples: Vec<(String, f64)> =
            jobs.iter().filter_map(|(label, history)| value(history).map(|v| (label.clone(), v))).collect();
        if samples.is_empty() {
            continue;
        }
        family(&mut out, name, help, |out| {
            for (label, value) in &samples {
                let _ = writeln!(out, "{name}{{job=\"{}\"}} {value}", escape(label));
            }
        });
    }
    // What retention kept and destroyed in the job's last run that judged.
    type Count = fn(&crate::engine::step_run::Retained) -> usize;
    let retention: [(&str, &str, Count); 2] = [
        (
            "ari_job_retention_kept",
            "Backups the job's retention kept, by its rules, in its last run that judged them.",
            |r| r.kept,
        ),
        (
            "ari_job_retention_destroyed",
            "Backups the job's retention destroyed in its last run that judged them.",
            |r| r.destroyed,
        ),
    ];
    for (name, help, value) in retention {
        let samples: Vec<(String, usize)> = jobs
            .iter()
            .filter_map(|(label, history)| {
                let retained = history.runs.iter().rev().find_map(|run| run.retention)?;
                Some((label.clone(), value(&retained)))
            })
            .collect();
        if !samples.is_empty() {
            family(&mut out, name, help, |out| {
                for (label, value) in &samples {
                    let _ = writeln!(out, "{name}{{job=\"{}\"}} {value}", escape(label));
                }
            });
        }
    }
    // The newest backup the store held after the job's last run that judged it: for a zfs-send
    // job, the newest snapshot replicated (AriBackupBehind).
    let newest: Vec<(String, i64)> = jobs
        .iter()
        .filter_map(|(label, history)| {
            let retained = history.runs.iter().rev().find_map(|run| run.retention)?;
            Some((label.clone(), retained.newest?))
        })
        .collect();
    if !newest.is_empty() {
        let name = "ari_job_newest_backup_timestamp_seconds";
        let help = "When the newest backup the job's store held after its last run that judged them was made (its time as retention judged it), in seconds since the epoch.";
        family(&mut out, name, help, |out| {
            for (label, value) in &newest {
                let _ = writeln!(out, "{name}{{job=\"{}\"}} {value}", escape(label));
            }
        });
    }
    // Each dump of the job's last run that had dumps, by its label.
    type DumpValue = fn(&crate::engine::history::DumpRecord) -> f64;
    let per_dump: [(&str, &str, DumpValue); 3] = [
        ("ari_job_dump_success", "1 when the dump streamed whole and passed its format's check in the job's last run with dumps, else 0.", |d| {
            if d.ok { 1.0 } else { 0.0 }
        }),
        ("ari_job_dump_bytes", "Bytes the dump tool wrote (before compression) in the job's last run with dumps.", |d| d.bytes as f64),
        ("ari_job_dump_duration_seconds", "How long the dump took in the job's last run with dumps.", |d| d.seconds),
    ];
    for (name, help, value) in per_dump {
        let samples: Vec<(String, String, f64)> = jobs
            .iter()
            .filter_map(|(label, history)| {
                Some((label, history.runs.iter().rev().find(|r| !r.dumps.is_empty())?))
            })
            .flat_map(|(label, run)| run.dumps.iter().map(move |d| (label.clone(), d.name.clone(), value(d))))
            .collect();
        if samples.is_empty() {
            continue;
        }
        family(&mut out, name, help, |out| {
            for (label, dump, value) in &samples {
                let _ =
                    writeln!(out, "{name}{{job=\"{}\",dump=\"{}\"}} {value}", escape(label), escape(dump));
            }
        });
    }
    store_families(&mut out, &jobs);
    out
}

/// The store and pool figures of each job's last run whose capacity check read them: the
/// store's size and free bytes, the pool's health (1 when ONLINE) with its state as a label,
/// and its last scrub's end.
fn store_families(out: &mut String, jobs: &[(String, History)]) {
    let readings: Vec<(&str, &crate::engine::capacity::CapacityRecord)> = jobs
        .iter()
        .filter_map(|(label, history)| {
            Some((label.as_str(), history.runs.iter().rev().find_map(|run| run.capacity.as_ref())?))
        })
        .collect();
    if readings.is_empty() {
        return;
    }
    type StoreValue = fn(&crate::engine::capacity::CapacityRecord) -> Option<u64>;
    let per_store: [(&str, &str, StoreValue); 2] = [
        ("ari_job_store_size_bytes", "The size of the job's store (a filesystem's; a dataset's used and available), as its last capacity check read it.", |c| c.total_bytes),
        ("ari_job_store_available_bytes", "The bytes free for new data in the job's store, as its last capacity check read it.", |c| c.available_bytes),
    ];
    for (name, help, value) in per_store {
        let samples: Vec<(&str, &str, u64)> = readings
            .iter()
            .filter_map(|(label, reading)| Some((*label, reading.store.as_str(), value(reading)?)))
            .collect();
        if samples.is_empty() {
            continue;
        }
        family(out, name, help, |out| {
            for (label, store, value) in &samples {
                let _ =
                    writeln!(out, "{name}{{job=\"{}\",store=\"{}\"}} {value}", escape(label), escape(store));
            }
        });
    }
    let pools: Vec<(&str, &crate::engine::capacity::PoolRecord)> =
        readings.iter().filter_map(|(label, reading)| Some((*label, reading.pool.as_ref()?))).collect();
    if pools.is_empty() {
        return;
    }
    family(out, "ari_job_pool_healthy", "1 when the pool under the job's store was ONLINE at its last capacity check, else 0; `state` is the pool's state.", |out| {
        for (label, pool) in &pools {
            let _ = writeln!(
                out,
                "ari_job_pool_healthy{{job=\"{}\",pool=\"{}\",state=\"{}\"}} {}",
                escape(label),
                escape(&pool.name),
                escape(&pool.state),
                u8::from(pool.state == "ONLINE")
            );
        }
    });
    let scrubbed: Vec<(&str, &str, i64)> = pools
        .iter()
        .filter_map(|(label, pool)| Some((*label, pool.name.as_str(), pool.last_scrub?)))
        .collect();
    if scrubbed.is_empty() {
        return;
    }
    family(
        out,
        "ari_job_pool_last_scrub_timestamp_seconds",
        "When the last scrub of the pool under the job's store ended, as its last capacity check read it.",
        |out| {
            for (label, pool, at) in &scrubbed {
                let _ = writeln!(
                    out,
                    "ari_job_pool_last_scrub_timestamp_seconds{{job=\"{}\",pool=\"{}\"}} {at}",
                    escape(label),
                    escape(pool)
                );
            }
        },
    );
}

fn family(out: &mut String, name: &str, help: &str, samples: impl FnOnce(&mut String)) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    samples(out);
}

/// A label value as the text format writes it.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Writes the metrics of every job under `state_dir` to `path`; the error says why not.
pub fn write(state_dir: &Path, path: &Path) -> Result<(), String> {
    let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    crate::engine::files::write_outside_file(path, render(state_dir, now).as_bytes(), 0o644).map_err(|err| {
        format!("the metrics file could not be written: {}", crate::contract::error::chain(&err))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::history::RunRecord;

    #[test]
    fn every_job_with_a_history_gets_its_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let record = |exit, started, files| RunRecord {
            started,
            duration_seconds: 12.5,
            exit,
            ended: Some(started as f64 + 12.5),
            files,
            bytes: files.map(|f| f * 100),
            verify: None,
            dumps: Vec::new(),
            // A run that judged its backups: as many kept as it changed files, one destroyed.
            retention: files.map(|kept| crate::engine::step_run::Retained {
                kept: kept as usize,
                destroyed: 1,
                newest: Some(1_700_000_000 + kept as i64),
            }),
            capacity: None,
        };
        History::record(dir.path(), "db", record(0, 1_800_000_000, Some(3))).unwrap();
        History::record(dir.path(), "db", record(1, 1_800_086_400, None)).unwrap();
        History::record(dir.path(), "web", record(0, 1_800_000_100, Some(0))).unwrap();
        let text = render(dir.path(), 1_800_100_000.0);
        for line in [
            "ari_job_last_run_success{job=\"db\"} 0",
            // The last run that judged, not the last run.
            "ari_job_retention_kept{job=\"db\"} 3",
            "ari_job_retention_destroyed{job=\"db\"} 1",
            "ari_job_retention_kept{job=\"web\"} 0",
            "ari_job_newest_backup_timestamp_seconds{job=\"db\"} 1700000003",
            "ari_job_last_run_success{job=\"web\"} 1",
            "ari_job_last_run_exit_code{job=\"db\"} 1",
            "ari_job_last_success_timestamp_seconds{job=\"db\"} 1800000012.5",
            "ari_job_last_run_start_timestamp_seconds{job=\"db\"} 1800086400",
            "ari_job_last_run_changed_files{job=\"web\"} 0",
            "ari_job_last_run_transferred_bytes{job=\"web\"} 0",
            "# TYPE ari_job_last_run_duration_seconds gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        assert!(
            !text.contains("ari_job_last_run_changed_files{job=\"db\"}"),
            "db's last run reported no files"
        );
        assert!(text.lines().any(|l| l == "ari_job_history_readable{job=\"db\"} 1"), "{text}");
        // A corrupt history: its job is left out but for the sign that it cannot be read.
        std::fs::write(History::path(dir.path(), "web"), b"{\"runs\": [").unwrap();
        let text = render(dir.path(), 1_800_100_000.0);
        assert!(text.lines().any(|l| l == "ari_job_history_readable{job=\"web\"} 0"), "{text}");
        assert!(text.lines().any(|l| l == "ari_job_last_run_success{job=\"db\"} 0"), "{text}");
        assert!(!text.contains("ari_job_last_run_success{job=\"web\"}"), "{text}");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn the_last_capacity_reading_of_each_job_gives_its_store_and_pool_figures() {
        use crate::engine::capacity::{CapacityRecord, PoolRecord};
        let dir = tempfile::tempdir().unwrap();
        let record = |started: i64, capacity: Option<CapacityRecord>| RunRecord {
            started,
            duration_seconds: 1.0,
            exit: 0,
            ended: None,
            files: None,
            bytes: None,
            verify: None,
            dumps: Vec::new(),
            retention: None,
            capacity,
        };
        let reading = |available: u64, pool: Option<PoolRecord>| CapacityRecord {
            store: "pool/backups/web".into(),
            total_bytes: Some(1000),
            available_bytes: Some(available),
            pool,
        };
        let degraded =
            PoolRecord { name: "pool".into(), state: "DEGRADED".into(), last_scrub: Some(1_800_000_000) };
        History::record(dir.path(), "web", record(1, Some(reading(900, None)))).unwrap();
        History::record(dir.path(), "web", record(2, Some(reading(50, Some(degraded))))).unwrap();
        // A run that read nothing (a dry run's, an older ari's) leaves the last reading standing.
        History::record(dir.path(), "web", record(3, None)).unwrap();
        History::record(dir.path(), "db", record(1, None)).unwrap();
        let text = render(dir.path(), 1_800_100_000.0);
        for line in [
            "ari_job_store_size_bytes{job=\"web\",store=\"pool/backups/web\"} 1000",
            "ari_job_store_available_bytes{job=\"web\",store=\"pool/backups/web\"} 50",
            "ari_job_pool_healthy{job=\"web\",pool=\"pool\",state=\"DEGRADED\"} 0",
            "ari_job_pool_last_scrub_timestamp_seconds{job=\"web\",pool=\"pool\"} 1800000000",
            "# TYPE ari_job_pool_healthy gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        assert!(!text.contains("job=\"db\",store"), "{text}");
    }
}
