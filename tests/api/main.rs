//! The integration suite: every test drives the real router and runs on SQLite and Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is the failure report.

mod helpers;
mod process;

mod admin;
mod auth;
mod bulk;
mod csv_import;
mod differential;
mod discovery;
mod email;
mod fault;
mod groups;
mod invitations;
mod migrations;
mod people;
mod queries;
mod replicas;
mod tenancy;
mod users;
