//! The order and admission rules of `ari run-all`, and the one loop that applies them
//! ([`run`]): `ari run-all` drives it with threads that run real jobs, the tests with a clock that
//! runs jobs of known durations, so that the policy is tested as it runs.
//!
//! Order: jobs without history first (so that they get measured), then the longest expected
//! duration first (longest-processing-time-first keeps the makespan close to its lower bound),
//! ties by label. Admission: whenever a slot is free, the first job in that order whose hosts
//! all have fewer than `max_jobs_per_host` running jobs starts; a host is never snapshotted twice
//! at once.

use std::collections::BTreeMap;

/// A job as the scheduler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The job's label.
    pub label: String,
    /// Every host the job touches.
    pub hosts: Vec<String>,
    /// The median duration of its recent successes, in seconds; `None` without history.
    pub expected: Option<f64>,
}

/// Indexes of `candidates` in the order they should start.
pub(crate) fn order(candidates: &[Candidate]) -> Vec<usize> {
    let mut indexes: Vec<usize> = (0..candidates.len()).collect();
    indexes.sort_by(|&a, &b| {
        let (a, b) = (&candidates[a], &candidates[b]);
        match (a.expected, b.expected) {
            (None, None) => a.label.cmp(&b.label),
            (None, Some(_)) => std::cmp::Ordering::Less,
            (Some(_), None) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => y.total_cmp(&x).then_with(|| a.label.cmp(&b.label)),
        }
    });
    indexes
}

/// Jobs running per host.
#[derive(Debug, Default, Clone)]
pub(crate) struct HostLoad {
    running: BTreeMap<String, u32>,
}

impl HostLoad {
    /// Whether `candidate` may start under `per_host`.
    pub(crate) fn admits(&self, candidate: &Candidate, per_host: u32) -> bool {
        candidate.hosts.iter().all(|h| self.running.get(h).copied().unwrap_or(0) < per_host)
    }

    /// Counts `candidate`'s hosts as busy.
    pub(crate) fn start(&mut self, candidate: &Candidate) {
        for host in &candidate.hosts {
            *self.running.entry(host.clone()).or_default() += 1;
        }
    }

    /// Frees `candidate`'s hosts.
    pub(crate) fn finish(&mut self, candidate: &Candidate) {
        for host in &candidate.hosts {
            if let Some(count) = self.running.get_mut(host) {
                *count = count.saturating_sub(1);
            }
        }
    }
}

/// The position in `queue` of the first job that may start now.
pub(crate) fn pick(
    queue: &[usize],
    candidates: &[Candidate],
    load: &HostLoad,
    per_host: u32,
) -> Option<usize> {
    queue.iter().position(|&i| load.admits(&candidates[i], per_host))
}

/// What runs the jobs that [`run`] admits.
pub trait Executor {
    /// Starts the job at `index` of the candidates.
    fn start(&mut self, index: usize);
    /// Waits until a started job ends, and returns its index.
    fn wait(&mut self) -> usize;
    /// Whether to start no more jobs (ari was interrupted); the running ones are waited for.
    fn stopping(&self) -> bool {
        false
    }
}

/// Runs the candidates through `executor`, at most `slots` at once and `per_host` on a host, in
/// `order`, each admitted by `pick` as soon as a slot is free. Returns the indexes of the
/// jobs it never started (the executor was stopping).
pub fn run(candidates: &[Candidate], slots: usize, per_host: u32, executor: &mut dyn Executor) -> Vec<usize> {
    let mut queue = order(candidates);
    let mut load = HostLoad::default();
    let mut running = 0;
    loop {
        while running < slots.max(1) && !executor.stopping() {
            let Some(position) = pick(&queue, candidates, &load, per_host) else { break };
            let index = queue.remove(position);
            load.start(&candidates[index]);
            running += 1;
            executor.start(index);
        }
        if running == 0 {
            return queue;
        }
        let index = executor.wait();
        running -= 1;
        load.finish(&candidates[index]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs jobs of known durations on a clock: when each starts and ends.
    struct Clock<'a> {
        durations: &'a [f64],
        now: f64,
        running: Vec<(f64, usize)>,
        times: Vec<(f64, f64)>,
    }

    impl Executor for Clock<'_> {
        fn start(&mut self, index: usize) {
            self.running.push((self.now + self.durations[index], index));
            self.times[index].0 = self.now;
        }

        fn wait(&mut self) -> usize {
            self.running.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let (end, index) = self.running.remove(0);
            self.now = end;
            self.times[index].1 = end;
            index
        }
    }

    /// Each job's start and end time when the loop runs jobs of these durations.
    fn simulate(candidates: &[Candidate], durations: &[f64], slots: u32, per_host: u32) -> Vec<(f64, f64)> {
        let mut clock =
            Clock { durations, now: 0.0, running: Vec::new(), times: vec![(0.0, 0.0); candidates.len()] };
        let never_started = run(candidates, slots as usize, per_host, &mut clock);
        assert!(never_started.is_empty(), "jobs never started: {never_started:?}");
        clock.times
    }

    fn job(label: &str, hosts: &[&str], expected: Option<f64>) -> Candidate {
        Candidate { label: label.into(), hosts: hosts.iter().map(|h| h.to_string()).collect(), expected }
    }

    #[test]
    fn new_jobs_first_then_longest_then_by_name() {
        let jobs = [
            job("b", &[], Some(5.0)),
            job("z-new", &[], None),
            job("a", &[], Some(5.0)),
            job("long", &[], Some(50.0)),
            job("a-new", &[], None),
        ];
        let labels: Vec<&str> = order(&jobs).into_iter().map(|i| jobs[i].label.as_str()).collect();
        assert_eq!(labels, ["a-new", "z-new", "long", "a", "b"]);
    }

    #[test]
    fn a_host_is_never_used_beyond_its_cap() {
        let jobs = [
            job("a", &["db"], Some(3.0)),
            job("b", &["db", "zfs"], Some(2.0)),
            job("c", &["web"], Some(1.0)),
        ];
        let times = simulate(&jobs, &[3.0, 2.0, 1.0], 3, 1);
        // a and b share db: b waits for a; c runs at once.
        assert_eq!(times, vec![(0.0, 3.0), (3.0, 5.0), (0.0, 1.0)]);
        let times = simulate(&jobs, &[3.0, 2.0, 1.0], 3, 2);
        assert_eq!(times, vec![(0.0, 3.0), (0.0, 2.0), (0.0, 1.0)]);
    }

    #[test]
    fn longest_first_keeps_the_makespan_near_its_lower_bound() {
        // Heavy-tailed durations, the longest named last: name order would start it last.
        let durations = [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 5.0, 8.0, 13.0];
        let jobs: Vec<Candidate> = durations
            .iter()
            .enumerate()
            .map(|(i, d)| job(&format!("job{i:02}"), &[&format!("h{i}")], Some(*d)))
            .collect();
        let makespan = simulate(&jobs, &durations, 3, 1).iter().map(|t| t.1).fold(0.0, f64::max);
        let bound = (durations.iter().sum::<f64>() / 3.0).max(13.0);
        assert!(makespan <= bound * 1.05, "makespan {makespan} vs lower bound {bound}");
    }

    /// Stops after the first `limit` starts, as an interrupt does.
    struct Interrupted {
        running: Vec<usize>,
        starts: usize,
        limit: usize,
    }

    impl Executor for Interrupted {
        fn start(&mut self, index: usize) {
            self.running.push(index);
            self.starts += 1;
        }
        fn wait(&mut self) -> usize {
            self.running.pop().expect("a started job to wait for")
        }
        fn stopping(&self) -> bool {
            self.starts >= self.limit
        }
    }

    #[test]
    fn a_stopping_executor_starts_nothing_more_and_the_rest_is_returned() {
        let jobs = [job("a", &[], Some(3.0)), job("b", &[], Some(2.0)), job("c", &[], Some(1.0))];
        let mut executor = Interrupted { running: Vec::new(), starts: 0, limit: 1 };
        let never = run(&jobs, 1, 1, &mut executor);
        assert_eq!(never, [1, 2], "b and c never started");
    }
}
