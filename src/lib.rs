//! scimd: a multi-tenant SCIM 2.0 (RFC 7643, RFC 7644) provisioning server.
//!
//! Layers point one way: `http` → `service` → `scim` (pure protocol logic) and `store`.

pub mod cli;
pub mod clock;
pub mod deadline;
pub mod domain;
pub mod email;
pub mod error;
pub mod http;
pub mod metrics;
pub mod scim;
pub mod service;
pub mod store;
pub mod token;

pub use http::{router, AppState, Config};
