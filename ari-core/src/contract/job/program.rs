//! A command in a job file (a hook's, or a command dump's): a string for a shell, or a list of
//! words run without one, whose first word is a program ari can find.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::contract::kinds::{self, check_no_nul};
use crate::contract::step::Program;

/// A command: a string for a shell, or a list run without one.
pub(crate) struct ProgramSpec(pub(crate) Program);

impl<'de> Deserialize<'de> for ProgramSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ProgramSpec, D::Error> {
        deserializer.deserialize_any(ProgramVisitor)
    }
}

struct ProgramVisitor;

impl<'de> Visitor<'de> for ProgramVisitor {
    type Value = ProgramSpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a command: a string for a shell, or a list of words")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ProgramSpec, E> {
        if v.trim().is_empty() {
            return Err(E::custom("the command is empty"));
        }
        check_no_nul(v).map_err(|why| E::custom(format!("the command {why}")))?;
        Ok(ProgramSpec(Program::Shell(v.to_string())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ProgramSpec, A::Error> {
        let mut words = Vec::new();
        while let Some(word) = seq.next_element::<String>()? {
            check_no_nul(&word).map_err(|why| {
                de::Error::custom(format!("`{}` {why}", crate::contract::kinds::shown(&word)))
            })?;
            words.push(word);
        }
        let Some(program) = words.first().filter(|w| !w.is_empty()) else {
            return Err(de::Error::custom("the command is empty"));
        };
        // Run without a shell, the first word is what is executed: a relative path would be
        // looked for in whatever directory ari (or the remote shell) happens to start in.
        kinds::check_program(program).map_err(|why| {
            de::Error::custom(format!("the program `{}` {why}", crate::contract::kinds::shown(program)))
        })?;
        Ok(ProgramSpec(Program::Argv(words)))
    }
}
