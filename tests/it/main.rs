//! End-to-end tests across the binaries, with real services (Azurite, pyarrow). One test binary
//! keeps linking cheap on 2 cores.

// Test code may panic on failure: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod azure;
mod bad_inputs;
mod concurrency;
mod connect;
mod deploy;
mod drift;
mod events;
mod images;
mod import_local;
mod kube;
mod models;
mod pipelines;
mod platform;
mod plugin;
mod profile;
mod refine;
mod release;
mod templates;
