//! The vSphere SOAP client: sessions, envelopes, streaming property parsing and faults.
//!
//! [`Client::login`] opens a session; [`Client::virtual_machines`] and [`Client::places`]
//! each read one container view page by page, parsing every page as it streams in.

mod client;
mod error;
#[cfg(test)]
mod malformed;
pub mod model;
mod parse;
mod soap;
mod xml;

pub use client::{Client, Endpoint, Tls};
pub use error::{Bounded, Error};
pub use model::{About, ManagedBy, Place, PlaceKind, Places, PowerState, VmPage, VmProperties};
pub use xml::Limits;
/// Server (or file) text quoted in errors, cut short.
pub(crate) use xml::excerpt;
