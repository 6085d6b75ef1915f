//! Units of work with their dependencies passed in: what a CLI command, the standalone
//! scheduler and a Kubernetes Job all run.

pub mod aggregate;
pub mod bundle;
pub mod entrypoint;
pub mod export;
pub mod import;
pub mod progress;
pub mod report;
pub mod snapshot;
pub mod termination;

/// Environment of a snapshot Job's container, set by the operator from the `VCenterTarget`'s
/// Secrets (`secretKeyRef`), so the Job itself needs no right to read Secrets.
pub mod env {
    /// The vCenter account's user name.
    pub const VCENTER_USERNAME: &str = "VCTP_VCENTER_USERNAME";
    /// The vCenter account's password.
    pub const VCENTER_PASSWORD: &str = "VCTP_VCENTER_PASSWORD";
    /// PEM CA certificates to trust for the vCenter (from `spec.tls.caBundle…Ref`).
    pub const VCENTER_CA_BUNDLE: &str = "VCTP_VCENTER_CA_BUNDLE";
}
