//! callbook: meeting booking for phone-call voice agents.
//!
//! A telephony/LLM pipeline opens one WebSocket per live call and streams
//! Twilio Media Streams frames plus the caller's transcribed words. callbook
//! runs the booking conversation (offer, email by voice with a NATO
//! read-back, a free slot in both zones, booking, moving) and books on the
//! owner's calendar.
//!
//! # Layout
//!
//! The shape is a pure conversation core inside an actor shell:
//!
//! - [`domain`]: the vocabulary every layer shares (meeting kind, video
//!   availability, email address, booking status and its reasons), at the
//!   bottom so the dialog, the calendar clients, the stores and the wire
//!   protocol use it without depending on one another.
//! - [`dialog`]: the booking conversation as a pure state machine.
//!   `Dialog::step(input, now)` returns effects as values; it never awaits or
//!   reads a clock. [`dialog::understand`] turns words into meaning (email,
//!   yes/no, time phrases, timezones, intents); [`dialog::speech`] turns
//!   meaning into words.
//! - [`schedule`]: the pure slot engine (booking rules, busy merging, slot
//!   queries) and the `callbook slots` answers.
//! - [`phone`]: E.164 numbers and the zone their area code suggests.
//! - [`call`]: one actor per call; answers each transcript's turn, runs the
//!   dialog's effects (free/busy, bookings, moves, cancels) as tasks and
//!   feeds results back. Booking, moving and cancelling are one saga in one
//!   file (`call::saga`, its invariants in its docs): every calendar write
//!   runs under a live hold, bounded by the hold's lease; a write that
//!   failed is read back before anything is released, and a slot whose
//!   event may exist stays held (marked unknown) for [`call::reconcile`],
//!   which settles such claims against the provider when a call loads
//!   availability and periodically, and removes claims whose event was
//!   deleted. [`call::resume`] keeps a call's state past its socket (in
//!   process or in Redis) so a reconnect with the same call SID takes it
//!   up; bookings are named by call SID and attempt, so a repeated request
//!   is the same booking.
//! - [`ledger`]: cross-call slot claims; the first confirm wins. In process
//!   (`MemoryLedger`) or shared by any number of instances through Redis
//!   (`RedisLedger`: one atomic Lua script per operation and calendar,
//!   holds expiring by the Redis server's clock). A claim is held,
//!   unknown (its event may exist) or committed (with its event's id);
//!   holds can be extended. A Redis that lost its data is detected by a
//!   missing per-calendar mark, and the calendar's claims are rebuilt from
//!   the events callbook tagged before it answers again. Claims are keyed by the
//!   calendar as the provider names it (`provider:canonical id`), not by
//!   its owner, so owners sharing a calendar compete for it.
//! - [`calendar`]: the `CalendarProvider` trait; the Google Calendar and
//!   Microsoft Graph clients; one retry policy for both (`calendar::retry`);
//!   OAuth (consent with PKCE, code exchange, refresh, revoke); which account
//!   may finish a connect ([`calendar::binding`]: the one it was started
//!   for); Windows zone names; invite templates; and (with the `testkit`
//!   feature) local provider emulators with fault injection
//!   (`calendar::emulator`), which can record what crosses their wire
//!   (`calendar::emulator::record`) so the tests can hold every request and
//!   answer to the providers' published contracts (`tests/contracts/`).
//! - [`store`]: users, teams, their connections (one per provider, one
//!   active), consent flows and campaigns behind a trait with typed
//!   methods (the JSON each record is kept as stays inside the store);
//!   loaded from the provisioning file, with changes kept in process
//!   (optionally written through to a sealed state file) or shared in
//!   Redis, where a team's membership changes are compare-and-set so
//!   instances never undo each other's, and a settings link's single use
//!   is one `SET NX`. Tokens
//!   are sealed under keys named by their fingerprints
//!   ([`store::secrets`]); a store refuses keys that do not open what it
//!   holds, and `rekey` moves it to a new key.
//! - [`protocol`]: wire frames, mirroring `protocol/` exactly.
//! - [`server`]: the axum router: `/v1/calls`, the admin API
//!   (`server::admin`: OAuth connect and callback, calendar choice, active
//!   provider, disconnect, campaigns' booking settings, bookings,
//!   diagnostics; described by the OpenAPI document at `/v1/openapi.json`,
//!   generated from the handlers with `utoipa`), the settings pages
//!   (`server::settings`: server-rendered HTML an owner reaches through a
//!   signed single-use link, a session for that user only and a CSRF token
//!   on every change; each change calls the admin API's own functions for
//!   the session's user), `/healthz`, `/readyz`
//!   (draining, or a shared ledger or store not answering) and `/metrics`;
//!   and the accept loop in front of it, which holds every client to
//!   [`server::limits`] (connection caps, header, body, start and idle
//!   timeouts) before a token is seen. `axum::serve` has no header timeout
//!   or caps, so the loop is our own, on hyper-util's builder.
//! - [`outcomes`]: what became of each call's booking (booked, moved,
//!   cancelled, failed, skipped), recorded off the call's path so it
//!   survives a dropped socket; kept in process or in Redis, read through
//!   the admin API and POSTed to a signed webhook with retries.
//! - [`observe`]: Prometheus metrics (rendered by the server's own
//!   `/metrics`), each call's booking progress and where it stopped, the
//!   recent calls per campaign that `GET /v1/campaigns/{id}/diagnostics`
//!   reads, and that checklist printed for a person (`callbook diagnose`).
//! - [`redis_conn`]: how every Redis user (ledger, store, call resumes,
//!   outcomes) connects: one node (`redis://`) or a Redis Cluster
//!   (`redis+cluster://`), chosen by the URL, behind one cloneable type.
//! - [`app`]: wiring, serving and draining; [`clock`]: where "now" comes
//!   from (system or a virtual clock for replays).
//! - Test machinery, behind the `testkit` cargo feature (on by default,
//!   off in production builds: `cargo build --release --no-default-features`):
//!   `harness`, the whole service plus emulators in-process, driven over a
//!   real WebSocket; `replay`, `load` and the demo are built on it
//!   (`load::twilio` instead measures a `serve` process from outside, at
//!   Twilio's frame rate, next to a bare WebSocket server). Without
//!   the feature the binary has no emulator, so it cannot serve a fake
//!   calendar by accident.

pub mod app;
pub mod calendar;
pub mod call;
pub mod clock;
pub mod dialog;
pub mod domain;
#[cfg(feature = "testkit")]
pub mod harness;
pub mod ledger;
#[cfg(feature = "testkit")]
pub mod load;
pub mod observe;
pub mod outcomes;
pub mod phone;
pub mod protocol;
pub mod redis_conn;
#[cfg(feature = "testkit")]
pub mod replay;
pub mod schedule;
pub mod server;
pub mod store;

pub use app::{run, Settings};
