//! The `blastradius` command line: one module per subcommand group.

pub mod faults;
pub mod llm;
pub mod plot;
pub mod sweep;
pub mod traces;
