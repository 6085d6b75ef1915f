//! Units of work with their dependencies passed in: what a CLI command, the standalone
//! scheduler and a Kubernetes Job all run.

pub mod aggregate;
pub mod report;
