//! Batched environments: N environments stepped in parallel (rayon), with auto-reset.
//!
//! Results are identical whatever the thread count: each environment's episodes use seeds
//! derived from (base seed, environment index, episode number) only, environments never share
//! state, and results come back in environment order.
//!
//! ```no_run
//! use sim_agents::{VecEnv, policy::{OraclePolicy, Policy}};
//! use sim_faults::FaultScenario;
//! let sc = FaultScenario::builtin("retry-storm").unwrap();
//! let mut venv = VecEnv::new(&[sc], 4, 7, 2).unwrap();
//! let mut obs = venv.reset();
//! let mut pol = OraclePolicy;
//! for _ in 0..10 {
//!     let steps = venv.step(pol.act(&obs));
//!     obs = steps.into_iter().map(|s| s.observation).collect();
//! }
//! ```

use crate::action::Action;
use crate::env::{Env, EnvOptions, Step};
use crate::error::AgentError;
use crate::observation::Observation;
use sim_core::rng::mix64;
use sim_faults::FaultScenario;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// N environments stepped in parallel.
pub struct VecEnv {
    envs: Vec<Env>,
    /// Each environment's current episode number (its seed's `k`).
    episodes: Vec<u64>,
    /// True once `reset` ran: a later `reset` starts every environment's next episode.
    started: bool,
    /// Wall-clock nanoseconds of each environment's last step (used only to hand out the
    /// costliest environments first; results never depend on it).
    last_cost_ns: Vec<u64>,
    base_seed: u64,
    /// The helper threads (`threads - 1`; the calling thread steps environments too), or
    /// `None` for one thread.
    pool: Option<rayon::ThreadPool>,
    /// Episodes finished so far (all environments).
    pub episodes_done: u64,
    /// Steps taken so far (all environments).
    pub steps_done: u64,
}

impl VecEnv {
    /// `n` environments over `scenarios` (environment i runs scenario i mod len), episode
    /// seeds derived from `base_seed`, stepped on `threads` threads (0: all cores).
    pub fn new(
        scenarios: &[FaultScenario],
        n: usize,
        base_seed: u64,
        threads: usize,
    ) -> Result<VecEnv, AgentError> {
        Self::with_options(scenarios, n, base_seed, threads, EnvOptions::default())
    }

    /// [`VecEnv::new`] with environment options.
    pub fn with_options(
        scenarios: &[FaultScenario],
        n: usize,
        base_seed: u64,
        threads: usize,
        options: EnvOptions,
    ) -> Result<VecEnv, AgentError> {
        if scenarios.is_empty() || n == 0 {
            return Err(AgentError::Invalid {
                what: "VecEnv",
                why: "need at least one scenario and one environment".into(),
            });
        }
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let pool = if threads > 1 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads - 1)
                .build()
                .map_err(|e| AgentError::Invalid {
                    what: "threads",
                    why: e.to_string(),
                })?;
            Some(pool)
        } else {
            None
        };
        let protos: Vec<Env> = scenarios
            .iter()
            .map(|s| Env::try_new(s.clone(), options.clone()))
            .collect::<Result<_, _>>()?;
        let envs = (0..n).map(|i| protos[i % protos.len()].fork()).collect();
        Ok(VecEnv {
            envs,
            episodes: vec![0; n],
            started: false,
            last_cost_ns: vec![0; n],
            base_seed,
            pool,
            episodes_done: 0,
            steps_done: 0,
        })
    }

    /// Number of environments.
    pub fn len(&self) -> usize {
        self.envs.len()
    }

    /// Always false (a VecEnv has at least one environment).
    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    /// The environments.
    pub fn envs(&self) -> &[Env] {
        &self.envs
    }

    /// The seed of environment `i`'s episode `k`.
    pub fn episode_seed(&self, i: usize, k: u64) -> u64 {
        episode_seed(self.base_seed, i, k)
    }

    /// Resets every environment: the first call starts each one's episode 0, a later one
    /// abandons the running episodes and starts each one's next (never replays a seed).
    pub fn reset(&mut self) -> Vec<Observation> {
        if self.started {
            for k in &mut self.episodes {
                *k += 1;
            }
        }
        self.started = true;
        let seeds: Vec<u64> = (0..self.envs.len())
            .map(|i| self.episode_seed(i, self.episodes[i]))
            .collect();
        let jobs = self.envs.iter_mut().zip(seeds).collect();
        run_all(self.pool.as_ref(), jobs, &[], |(e, s)| e.reset(s))
    }

    /// Threads that step environments (the calling thread included).
    pub fn threads(&self) -> usize {
        self.pool
            .as_ref()
            .map_or(1, |p| p.current_num_threads() + 1)
    }

    /// Steps every environment with its action. An environment whose episode ends is reset
    /// at once: its step's `observation` is the new episode's first, and the last one is in
    /// `info.final_observation`.
    pub fn step(&mut self, actions: Vec<Action>) -> Vec<Step> {
        let n = self.envs.len();
        let mut actions = actions;
        actions.resize(n, Action::NoOp);
        let base = self.base_seed;
        let eps = &self.episodes;
        let step_one = |(i, e, a): (usize, &mut Env, Action)| {
            let t0 = std::time::Instant::now();
            let mut st = e.step(a);
            let done = st.terminated || st.truncated;
            if done {
                let first = e.reset(episode_seed(base, i, eps[i] + 1));
                let last = std::mem::replace(&mut st.observation, first);
                st.info.final_observation = Some(Box::new(last));
            }
            let cost = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
            (st, done, cost)
        };
        let jobs = self
            .envs
            .iter_mut()
            .zip(actions)
            .enumerate()
            .map(|(i, (e, a))| (i, e, a))
            .collect();
        let out = run_all(self.pool.as_ref(), jobs, &self.last_cost_ns, step_one);
        let mut steps = Vec::with_capacity(n);
        for (i, (st, done, cost)) in out.into_iter().enumerate() {
            self.last_cost_ns[i] = cost;
            if done {
                self.episodes[i] += 1;
                self.episodes_done += 1;
            }
            self.steps_done += 1;
            steps.push(st);
        }
        steps
    }
}

/// Applies `f` to every job and returns the results in job order.
///
/// Without a pool the jobs run in index order on the calling thread. With one, the jobs are
/// split into one contiguous block per thread (the calling thread is thread 0); a thread runs
/// its own block first, so an environment keeps to the same core (and its caches) from step
/// to step, then takes what is left of the other blocks (environments differ in cost, so a
/// static split alone would leave a thread idle). Within a block the costliest jobs (by
/// `cost`) go first. Results never depend on which thread ran which job.
fn run_all<T: Send, R: Send>(
    pool: Option<&rayon::ThreadPool>,
    jobs: Vec<T>,
    cost: &[u64],
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let Some(pool) = pool else {
        return jobs.into_iter().map(f).collect();
    };
    let n = jobs.len();
    let threads = pool.current_num_threads() + 1;
    let blocks: Vec<Vec<usize>> = (0..threads)
        .map(|b| {
            let mut block: Vec<usize> = (b * n / threads..(b + 1) * n / threads).collect();
            block.sort_by_key(|&i| std::cmp::Reverse(cost.get(i).copied().unwrap_or(0)));
            block
        })
        .collect();
    let taken: Vec<AtomicUsize> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
    let jobs: Vec<Mutex<Option<T>>> = jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
    let results: Vec<Mutex<Option<R>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let work = |me: usize| {
        for b in (0..threads).map(|k| (me + k) % threads) {
            loop {
                let k = taken[b].fetch_add(1, Ordering::Relaxed);
                let Some(&i) = blocks[b].get(k) else {
                    break;
                };
                let job = jobs[i].lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(job) = job {
                    let r = f(job);
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                }
            }
        }
    };
    pool.in_place_scope(|s| {
        s.spawn_broadcast(|_, ctx| work(ctx.index() + 1));
        work(0);
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .expect("every job ran: the scope waits for all of them")
        })
        .collect()
}

/// The seed of episode `k` of environment `i` of a [`VecEnv`] with base seed `base`.
fn episode_seed(base: u64, i: usize, k: u64) -> u64 {
    mix64(base ^ mix64((i as u64) << 32 ^ k))
}
