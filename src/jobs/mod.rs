//! Units of work with their dependencies passed in: the one place each is composed. The CLI,
//! the standalone scheduler, the demo, the admin API and a Kubernetes Job (`entrypoint`) only
//! parse their input, call one of these, and present the outcome:
//! - [`snapshot::round`]: capture every vCenter at one time (and the hour's report);
//! - [`aggregate::run`]: aggregate a day or month, then write its reports;
//! - [`report::generate`]: one period's report;
//! - [`costs::report`]: what a day or month costs, by VM, tenant, pool, vCenter or cluster;
//! - [`retention::run`]: delete what is past its age;
//! - [`export::run`] / [`import::run`]: a metrics export into a bundle, and back.

pub mod aggregate;
pub mod bundle;
pub mod costs;
pub mod export;
pub mod import;
pub mod report;
pub mod retention;
pub mod snapshot;
pub mod termination;

use crate::cost::Pricing;
use crate::objstore::Objects;
use crate::report::PivotSpec;
use crate::store::Store;

/// Where the units of work read and write: the database, the object store that reports go
/// to, and the pivots and prices the reports carry.
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    pub store: &'a Store,
    pub objects: &'a Objects,
    pub pivots: &'a [PivotSpec],
    /// Rate cards and tenant rules: with a card, daily and monthly reports get their costs
    /// and a monthly report its FOCUS file.
    pub pricing: &'a Pricing,
}

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
