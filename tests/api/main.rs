//! The integration suite: every test drives the real router and runs on SQLite and Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is the failure report.

mod helpers;
mod process;
mod sink;

mod admin;
mod auth;
mod bulk;
mod connections;
mod console;
mod console_admin;
mod console_provider;
mod csv_import;
mod deadline;
mod differential;
mod discovery;
mod edge;
mod email;
mod fault;
mod federation;
mod groups;
mod invitations;
mod layout;
mod limits;
mod migrations;
mod observability;
mod openapi;
mod operator;
mod paging;
mod people;
mod provisioning;
mod queries;
mod replicas;
mod takeover;
mod tenancy;
mod typing;
mod users;
mod writes;
