//! # blastradius
//!
//! A deterministic, request-level simulator of microservice systems for research on AI agents
//! that keep them healthy: fault injection, real and synthetic trace replay, an RL environment
//! with shaped rewards, batched LLM policies, ground truth for failure localization and
//! remediation, and seed sweeps.
//!
//! This facade re-exports the workspace's crates:
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`core`] | `sim-core` | the engine: model, request flow, telemetry, fork/snapshot |
//! | [`faults`] | `sim-faults` | fault catalogue, scenarios, ground truth, scoring, RCAEval export |
//! | [`agents`] | `sim-agents` | environment, command grammar, observations, rewards, policies |
//! | [`replay`] | `replay` | trace formats, store, replay, generators, fidelity metrics |
//! | [`llm`] | `gpu-kernels` | transformer forward passes (CPU reference, CUDA) |
//! | [`sweep`] | `sweep` | parallel, resumable, sharded seed sweeps |
//!
//! ```
//! use blastradius::core::prelude::*;
//! let scenario = blastradius::core::topologies::load("online-boutique").unwrap();
//! let mut sim = Simulation::new(&scenario, 1).unwrap();
//! sim.run_until(5 * SECONDS);
//! assert!(sim.last_scrape().unwrap().services.iter().any(|s| s.rps > 0.0));
//! ```

pub use gpu_kernels as llm;
pub use replay;
pub use sim_agents as agents;
pub use sim_core as core;
pub use sim_faults as faults;
pub use sweep;

/// Makes mimalloc the global allocator of the binary that invokes it (with the default feature
/// `mimalloc`; without it, the macro expands to nothing and the system allocator stays).
///
/// The simulator allocates telemetry on every scrape and an observation on every step; with
/// glibc's allocator that took ~10% of a one-thread environment loop and ~17% on two threads
/// (allocations of one thread freed by another). The `blastradius` command line and the
/// examples use it; library code never picks an allocator, so embedding code opts in by
/// invoking this once at the top level of its binary:
///
/// ```
/// blastradius::fast_allocator!();
///
/// fn main() {
///     let v: Vec<u64> = (0..1000).collect();
///     assert_eq!(v.len(), 1000);
/// }
/// ```
#[cfg(feature = "mimalloc")]
#[macro_export]
macro_rules! fast_allocator {
    () => {
        #[global_allocator]
        static BLASTRADIUS_GLOBAL_ALLOCATOR: $crate::MiMalloc = $crate::MiMalloc;
    };
}

/// Makes mimalloc the global allocator of the binary that invokes it: here, without the
/// `mimalloc` feature, it expands to nothing and the system allocator stays.
#[cfg(not(feature = "mimalloc"))]
#[macro_export]
macro_rules! fast_allocator {
    () => {};
}

/// The allocator `fast_allocator!` installs.
#[cfg(feature = "mimalloc")]
#[doc(hidden)]
pub use mimalloc::MiMalloc;
