//! The Kubernetes operator: one controller per custom resource (DESIGN.md §2), each a pipeline
//! validate (pure) → build (pure) → apply → update status. The pure Job builder all kinds
//! share lives in [`job`].

pub mod job;
