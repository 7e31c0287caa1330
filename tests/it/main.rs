//! Integration tests: one binary, real sockets, real HTTP, the emulator.

mod accounts;
mod admin;
mod calls;
mod check_provider;
mod cli;
mod diagnostics;
mod fixtures;
mod google_faults;
mod helpers;
mod keys;
mod limits;
mod metrics;
mod microsoft;
mod microsoft_faults;
mod oauth;
mod openapi;
mod outcomes;
mod pipeline;
mod processes;
mod protocol;
mod redis_ledger;
mod redis_store;
mod saga;
mod understanding;
