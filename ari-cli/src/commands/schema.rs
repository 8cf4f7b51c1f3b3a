//! `ari schema [job|config]`: the JSON Schema of job files (or of the global config), for
//! editors, as `schema.rs` renders it from the registered settings and plugins; printed before
//! any config is read.

use clap::{Arg, ArgMatches, Command};

use super::context::Exec;
use crate::schema::{rendered, Which};

pub fn cli() -> Command {
    Command::new("schema")
        .about("print the JSON Schema of job files (or of the global config), for editors")
        .arg(
            Arg::new("which")
                .value_name("FILE")
                .value_parser(["job", "config"])
                .default_value("job")
                .help("job: a job file of jobs_dir; config: the global config"),
        )
}

pub fn exec(matches: &ArgMatches) -> Result<Exec, String> {
    let which = match matches.get_one::<String>("which").map(String::as_str) {
        Some("config") => Which::Config,
        _ => Which::Job,
    };
    Ok(Exec::generated(move |_| rendered(which)))
}
