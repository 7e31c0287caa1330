//! Seeing what callbook does: Prometheus metrics ([`metrics`]), each call's
//! booking progress ([`progress`]: the funnel, and where a call stopped),
//! the recent calls of each campaign ([`trail`]) that the diagnostics
//! read, a ledger wrapper that times every decision ([`ledger`]), and the
//! diagnostics checklist as a person reads it ([`diagnose`]).
//!
//! Call sites elsewhere are one line each (a counter, a guard); what is
//! counted, under which name and labels, is decided here.

pub mod diagnose;
pub mod ledger;
pub mod metrics;
pub mod progress;
pub mod trail;

pub use ledger::MeteredLedger;
pub use progress::{CallEnd, CallProgress, Ending, Reached};
pub use trail::CallTrail;
