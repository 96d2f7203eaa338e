//! turnpike: a self-hosted API management appliance in one binary.
//!
//! # Layout
//!
//! Layers import downward only:
//!
//! 0. [`error`], [`config`], [`telemetry`], [`shutdown`], [`durable`]: codes,
//!    settings, logging, the shutdown signal, crash-safe files.
//! 1. [`model`] (resource types, the [`model::Catalog`]), [`store`] (sled),
//!    [`expr`] (the C# expression language; no HTTP, no sled), [`openapi`]
//!    (OpenAPI / Swagger documents → API and operations; no HTTP, no sled),
//!    [`redis`] (the optional Redis connection: shared counters, cache).
//! 2. [`policy`] (policy documents), [`analytics`] (per-minute traffic
//!    aggregates in sled and the reports built from them), [`snapshot`] (catalog → the immutable
//!    runtime view), [`writer`] (the one write path: store write + compile
//!    + publish).
//! 3. [`gateway`] (data plane), [`mgmt`] (management REST API and the
//!    primary's cluster endpoints), [`portal`] (the developer portal),
//!    [`cluster`] (the secondary: sync, backup, heartbeats).
//! 4. [`app`] (wiring, lifecycle, demo), [`cli`].
//!
//! Tests start the whole appliance in-process with [`app::run`] on
//! `127.0.0.1:0`; see `ARCHITECTURE.md` for the request lifecycle and the
//! invariants.

pub mod analytics;
pub mod app;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod durable;
pub mod error;
pub mod expr;
pub mod gateway;
pub mod mgmt;
pub mod model;
pub mod openapi;
pub mod policy;
pub mod portal;
pub mod redis;
pub mod shutdown;
pub mod snapshot;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod writer;

pub use app::{run, Options, Running};
pub use config::Settings;
