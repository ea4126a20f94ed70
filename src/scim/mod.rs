//! Pure SCIM protocol logic: schemas, filters, paths, PATCH, normalisation and projection.
//! Nothing here knows about HTTP or SQL, so it is unit-testable on its own.

pub mod eval;
pub mod filter;
pub mod patch;
pub mod resource;
pub mod schema;
pub mod search;
