//! `ari settings [JOB]`: every setting with its effective value, where it came from, its owner
//! and its help.

use ari_core::engine_api::exit;
use ari_core::job::Job;
use ari_core::settings;

use clap::{Arg, ArgMatches, Command};

use super::context::{usage_errors, Context, Exec};
use crate::jobs;

pub fn cli() -> Command {
    Command::new("settings")
        .about("every setting: effective value, where it came from, owner, help")
        .arg(Arg::new("job").value_name("JOB").help("show the values as this job sees them"))
}

pub fn exec(matches: &ArgMatches) -> Result<Exec, String> {
    let job = matches.get_one::<String>("job").cloned();
    Ok(Exec::with_config(move |context| settings(context, job.as_deref())))
}

fn settings(context: &Context, job: Option<&str>) -> i32 {
    let effective = match job {
        None => context.base.clone(),
        Some(name) => {
            let loaded = jobs::resolve(name, &context.jobs_dir())
                .and_then(|path| Job::load(&path).map_err(|err| err.to_string()));
            match loaded {
                Ok(job) => job.settings_under(&context.config.layer, &context.command_line),
                Err(err) => return usage_errors(&[err]),
            }
        }
    };
    if !context.config.found {
        println!("# global config {} not found: defaults apply", context.config.path.display());
    }
    let rows: Vec<[String; 5]> = settings::registry()
        .values()
        .map(|def| {
            // Shown as people may see it: a URL's secret part hidden.
            let value = effective.value(def.name).map(|v| def.shown(v)).unwrap_or_else(|| "(unset)".into());
            let source = effective.source(def.name).map(|s| s.to_string()).unwrap_or_else(|| "-".into());
            [def.name.to_string(), value, source, def.owner.to_string(), def.help.to_string()]
        })
        .collect();
    print!("{}", table(&["NAME", "VALUE", "SOURCE", "OWNER", "HELP"], &rows));
    exit::SUCCESS
}

/// Left-aligned columns, the last one unpadded.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
