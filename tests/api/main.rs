//! The integration suite: every test drives the real router and runs on SQLite and Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is the failure report.

mod helpers;

mod admin;
mod auth;
mod bulk;
mod csv_import;
mod deadline;
mod differential;
mod discovery;
mod email;
mod groups;
mod invitations;
mod migrations;
mod observability;
mod paging;
mod people;
mod queries;
mod tenancy;
mod users;
mod writes;
