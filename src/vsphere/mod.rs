//! The vSphere SOAP client: sessions, envelopes, streaming property parsing and faults.

pub mod model;

pub use model::{ManagedBy, Place, PlaceKind, Places, PowerState, VmProperties};
