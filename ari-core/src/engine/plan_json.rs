//! `ari plan --json`: a plan as data, in the shape DESIGN.md gives it (the snapshot tests pin
//! it). Each type borrows from the plan it shows; field order is the order of the output.

use serde::Serialize;

use crate::contract::step::{Action, Command, Program, Step};
use crate::engine::plan::JobPlan;
use crate::engine::remote::{ConnectionsJson, PLAN_NONCE};

/// A job's plan.
#[derive(Debug, Serialize)]
struct PlanJson<'a> {
    job: &'a str,
    backend: &'a str,
    steps: Vec<StepJson<'a>>,
    connections: ConnectionsJson,
}

/// `plan` as `ari plan --json` prints it.
pub fn plan_json(plan: &JobPlan) -> serde_json::Value {
    serde_json::to_value(PlanJson::of(plan)).unwrap_or_default()
}

impl<'a> PlanJson<'a> {
    fn of(plan: &'a JobPlan) -> PlanJson<'a> {
        PlanJson {
            job: &plan.job.label,
            backend: plan.backend,
            steps: plan.steps().into_iter().map(|step| StepJson::of(step, plan)).collect(),
            connections: plan.connections.to_json(),
        }
    }
}

/// A command's program: an argv, or a text for the shell.
#[derive(Debug, Serialize)]
struct ProgramJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    argv: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shell: Option<&'a str>,
}

impl<'a> ProgramJson<'a> {
    fn of(program: &'a Program) -> ProgramJson<'a> {
        match program {
            Program::Argv(argv) => ProgramJson { argv: Some(argv), shell: None },
            Program::Shell(script) => ProgramJson { argv: None, shell: Some(script) },
        }
    }
}

/// A command and its host.
#[derive(Debug, Serialize)]
struct CommandJson<'a> {
    host: String,
    #[serde(flatten)]
    program: ProgramJson<'a>,
}

impl<'a> CommandJson<'a> {
    fn of(command: &'a Command) -> CommandJson<'a> {
        CommandJson { host: command.host.to_string(), program: ProgramJson::of(&command.program) }
    }
}

/// One step.
#[derive(Debug, Serialize)]
struct StepJson<'a> {
    phase: &'static str,
    name: &'a str,
    when: &'static str,
    #[serde(flatten)]
    command: CommandJson<'a>,
    /// The argv ari executes on the backup server (with a plan's nonce).
    local_argv: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refuse_if_success: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dynamic: Option<bool>,
    /// A gathering step's queries after the first (`command`), each on its host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    more_queries: Vec<CommandJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    then: Option<&'a str>,
    /// A destructive step's proof, which runs before it: part of what `run` executes.
    #[serde(skip_serializing_if = "Option::is_none")]
    proof: Option<ProofJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_interval_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    repairs: Vec<RepairJson<'a>>,
    /// A spot check's store side (its host side is `argv`), each ending in the run's seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    verify_store: Option<CommandJson<'a>>,
    /// A dump's compressor, on the backup server (the dump tool is `argv`).
    #[serde(skip_serializing_if = "Option::is_none")]
    dump_compress: Option<CommandJson<'a>>,
    /// What writes a dump's stream into the store, under a temporary name.
    #[serde(skip_serializing_if = "Option::is_none")]
    dump_writer: Option<CommandJson<'a>>,
}

impl<'a> StepJson<'a> {
    fn of(step: &'a Step, plan: &JobPlan) -> StepJson<'a> {
        let command = step.action.command();
        let dynamic =
            matches!(step.action, Action::Dynamic { .. } | Action::Gather { .. } | Action::Retention(_));
        StepJson {
            phase: step.phase.as_str(),
            name: &step.name,
            when: step.when.as_str(),
            command: CommandJson::of(command),
            local_argv: plan.connections.argv(command, PLAN_NONCE),
            refuse_if_success: match &step.action {
                Action::RefuseIf { reason, .. } => Some(reason),
                _ => None,
            },
            dynamic: dynamic.then_some(true),
            more_queries: match &step.action {
                Action::Gather { queries, .. } => queries[1..].iter().map(CommandJson::of).collect(),
                _ => Vec::new(),
            },
            then: step.shows.as_deref().filter(|_| dynamic),
            proof: step.present.as_ref().and_then(|probe| {
                let expect = probe.expect.as_deref()?;
                Some(ProofJson { program: ProgramJson::of(&probe.query.program), expect })
            }),
            retries: (step.retry.max_retries > 0).then_some(step.retry.max_retries),
            retry_interval_seconds: (step.retry.max_retries > 0).then_some(step.retry.interval.as_secs()),
            repairs: step.repairs.iter().map(RepairJson::of).collect(),
            verify_store: match &step.action {
                Action::Verify(sides) => Some(CommandJson::of(&sides.store)),
                _ => None,
            },
            dump_compress: match &step.action {
                Action::Dump(stream) => stream.compress.as_ref().map(CommandJson::of),
                _ => None,
            },
            dump_writer: match &step.action {
                Action::Dump(stream) => Some(CommandJson::of(&stream.writer)),
                _ => None,
            },
        }
    }
}

/// What proves a destructive step's target.
#[derive(Debug, Serialize)]
struct ProofJson<'a> {
    #[serde(flatten)]
    program: ProgramJson<'a>,
    expect: &'a [String],
}

/// A repair of a step: what puts right the state it leaves when it does not end normally.
#[derive(Debug, Serialize)]
struct RepairJson<'a> {
    name: &'a str,
    #[serde(flatten)]
    command: CommandJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    only_while: Option<CommandJson<'a>>,
}

impl<'a> RepairJson<'a> {
    fn of(repair: &'a Step) -> RepairJson<'a> {
        RepairJson {
            name: &repair.name,
            command: CommandJson::of(repair.action.command()),
            only_while: repair.present.as_ref().map(|probe| CommandJson::of(&probe.query)),
        }
    }
}
