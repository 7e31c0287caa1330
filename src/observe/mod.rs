//! Seeing what callbook does: Prometheus metrics ([`metrics`]), each call's
//! booking progress ([`progress`]: the funnel, and where a call stopped),
//! and a ledger wrapper that times every decision ([`ledger`]).
//!
//! Call sites elsewhere are one line each (a counter, a guard); what is
//! counted, under which name and labels, is decided here.

pub mod ledger;
pub mod metrics;
pub mod progress;

pub use ledger::MeteredLedger;
pub use progress::{CallEnd, CallProgress, Ending, Reached};
