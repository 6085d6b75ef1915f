//! The operator: controllers for the vctp custom resources.

pub mod schedule;
