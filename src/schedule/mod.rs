//! The slot engine: which meeting starts are really free.
//!
//! Pure: no clock, no I/O. Every query takes `now` and the busy time it should
//! respect. The semantics are the ones the project commits to (see the README,
//! "Booking rules"):
//!
//! - candidate starts lie on multiples of `slot_step_minutes` from local
//!   midnight in the owner's zone;
//! - the meeting `[s, s + length)` lies inside that day's window, read in the
//!   owner's zone; a local time that does not exist moves forward to the first
//!   instant that does, an ambiguous one takes the earlier instant;
//! - the padded interval `[s - buffer_before, s + length + buffer_after)`
//!   overlaps no busy interval (busy is half-open, merged first);
//! - `s >= now + min_notice`;
//! - the local date of `s` is between today and today + `look_ahead_days`,
//!   inclusive, in the owner's zone.

mod rules;

pub use rules::{BookingRules, RulesError, Window};

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A half-open span of time `[start, end)` in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Interval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Interval {
    /// An interval; callers must pass `start <= end`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        debug_assert!(start <= end, "interval ends before it starts");
        Self { start, end }
    }

    /// Whether the two half-open intervals share any instant.
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `t` lies inside.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    pub fn duration(&self) -> Duration {
        self.end - self.start
    }
}

/// Sorts and merges busy intervals so that the result is ordered and no two
/// intervals overlap or touch. Empty and inverted intervals are dropped.
pub fn merge_busy(mut busy: Vec<Interval>) -> Vec<Interval> {
    busy.retain(|b| b.start < b.end);
    busy.sort_unstable_by_key(|b| b.start);
    let mut merged: Vec<Interval> = Vec::with_capacity(busy.len());
    for b in busy {
        match merged.last_mut() {
            Some(last) if b.start <= last.end => last.end = last.end.max(b.end),
            _ => merged.push(b),
        }
    }
    merged
}

/// Removes `hole` from every merged busy interval. Used when moving a meeting:
/// its own busy block must not stop it from moving next to itself.
pub fn subtract(busy: &[Interval], hole: Interval) -> Vec<Interval> {
    let mut out = Vec::with_capacity(busy.len() + 1);
    for b in busy {
        if !b.overlaps(&hole) {
            out.push(*b);
            continue;
        }
        if b.start < hole.start {
            out.push(Interval::new(b.start, hole.start));
        }
        if hole.end < b.end {
            out.push(Interval::new(hole.end, b.end));
        }
    }
    out
}

/// Resolves a local wall-clock time in `tz` to an instant, the way the rules
/// say: a time in a spring-forward gap moves forward to the first instant that
/// exists; a time in a fall-back overlap takes the earlier instant.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    // Real gaps are at most a few hours; a day of probing is a safe bound.
    for _ in 0..(24 * 60) {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(early, _) => return early.with_timezone(&Utc),
            LocalResult::None => probe += Duration::minutes(1),
        }
    }
    // Unreachable for any zone in the tz database; fall back to UTC reading.
    Utc.from_utc_datetime(&local)
}

/// Free-slot queries over one set of rules, one busy list and one `now`.
///
/// Build it once per question; it merges the busy list up front so every
/// query after that walks it in order.
#[derive(Debug, Clone)]
pub struct SlotFinder<'r> {
    rules: &'r BookingRules,
    busy: Vec<Interval>,
    now: DateTime<Utc>,
}

impl<'r> SlotFinder<'r> {
    /// `busy` may be unsorted and overlapping; it holds foreign busy time and
    /// callbook's own claims (already padded) alike.
    pub fn new(rules: &'r BookingRules, busy: Vec<Interval>, now: DateTime<Utc>) -> Self {
        Self {
            rules,
            busy: merge_busy(busy),
            now,
        }
    }

    pub fn rules(&self) -> &BookingRules {
        self.rules
    }

    /// The merged busy time this finder respects.
    pub fn busy(&self) -> &[Interval] {
        &self.busy
    }

    /// The first local date that can hold a slot, and the last (inclusive).
    pub fn bookable_dates(&self) -> (NaiveDate, NaiveDate) {
        let today = self.now.with_timezone(&self.rules.timezone).date_naive();
        let last = today + Duration::days(i64::from(self.rules.look_ahead_days));
        (today, last)
    }

    /// The earliest instant a slot may start at.
    pub fn earliest_start(&self) -> DateTime<Utc> {
        self.now + self.rules.min_notice()
    }

    /// Every candidate start that satisfies the window, notice and look-ahead,
    /// in time order, without looking at busy time.
    pub fn candidates(&self) -> impl Iterator<Item = Interval> + '_ {
        let (first, last) = self.bookable_dates();
        let earliest = self.earliest_start();
        first
            .iter_days()
            .take_while(move |d| *d <= last)
            .flat_map(move |date| self.day_candidates(date))
            .filter(move |slot| slot.start >= earliest)
    }

    /// Candidate meetings on one local date, in time order.
    fn day_candidates(&self, date: NaiveDate) -> Vec<Interval> {
        let rules = self.rules;
        if !rules.window.allows(date) {
            return Vec::new();
        }
        let tz = rules.timezone;
        let open = resolve_local(tz, date.and_time(rules.window.start));
        let close = match rules.window.end {
            Some(end) => resolve_local(tz, date.and_time(end)),
            None => resolve_local(tz, (date + Duration::days(1)).and_time(Default::default())),
        };
        let length = rules.length();
        let step = i64::from(rules.slot_step_minutes);
        let midnight = date.and_time(Default::default());
        let mut out: Vec<Interval> = Vec::new();
        for k in 0..(24 * 60 / step) {
            let start = resolve_local(tz, midnight + Duration::minutes(k * step));
            if start < open || start + length > close {
                continue;
            }
            // Two wall-clock starts inside a spring-forward gap resolve to the
            // same instant; keep one.
            if out.last().is_some_and(|prev| prev.start >= start) {
                continue;
            }
            out.push(Interval::new(start, start + length));
        }
        out
    }

    /// Why a start is or is not offered; `None` means it is a free slot.
    pub fn exclusion(&self, start: DateTime<Utc>) -> Option<Exclusion> {
        let rules = self.rules;
        let local = start.with_timezone(&rules.timezone);
        let (first, last) = self.bookable_dates();
        let date = local.date_naive();
        if date < first || date > last {
            return Some(Exclusion::OutsideLookAhead);
        }
        if start < self.earliest_start() {
            return Some(Exclusion::MinimumNotice);
        }
        if !rules.window.allows(date) {
            return Some(Exclusion::DayNotInWindow);
        }
        let is_candidate = self.day_candidates(date).iter().any(|c| c.start == start);
        if !is_candidate {
            return Some(Exclusion::NotACandidate);
        }
        let padded = rules.padded(Interval::new(start, start + rules.length()));
        self.first_overlap(padded).map(Exclusion::Busy)
    }

    /// Whether a meeting at exactly `slot` may still be booked.
    pub fn is_free(&self, slot: Interval) -> bool {
        slot.duration() == self.rules.length() && self.exclusion(slot.start).is_none()
    }

    fn first_overlap(&self, padded: Interval) -> Option<Interval> {
        // Busy is merged and sorted: the only interval that can overlap and
        // start before `padded.end` without ending before `padded.start` is
        // the last one starting before `padded.end`.
        let idx = self.busy.partition_point(|b| b.start < padded.end);
        idx.checked_sub(1)
            .map(|i| self.busy[i])
            .filter(|b| b.end > padded.start)
    }

    /// Free slots in time order, lazily.
    pub fn free(&self) -> impl Iterator<Item = Interval> + '_ {
        let mut cursor = 0usize;
        self.candidates().filter(move |slot| {
            let padded = self.rules.padded(*slot);
            while cursor < self.busy.len() && self.busy[cursor].end <= padded.start {
                cursor += 1;
            }
            self.busy.get(cursor).is_none_or(|b| b.start >= padded.end)
        })
    }

    /// The first `n` free slots starting at or after `from`.
    pub fn first_free(&self, from: DateTime<Utc>, n: usize) -> Vec<Interval> {
        self.free().filter(|s| s.start >= from).take(n).collect()
    }

    /// Up to `n` free slots nearest `target`, nearest first (an earlier one
    /// wins a tie), never one of `exclude`.
    pub fn nearest(&self, target: DateTime<Utc>, n: usize, exclude: &[Interval]) -> Vec<Interval> {
        let mut all: Vec<Interval> = self.free().filter(|s| !exclude.contains(s)).collect();
        all.sort_by_key(|s| ((s.start - target).num_seconds().abs(), s.start));
        all.truncate(n);
        all
    }

    /// Free slots whose start falls inside `within`, nicest first: on the hour
    /// (in the owner's zone), then on the half hour, then the rest; earlier
    /// first inside each group.
    pub fn free_within(&self, within: Interval, exclude: &[Interval]) -> Vec<Interval> {
        let tz = self.rules.timezone;
        let mut found: Vec<Interval> = self
            .free()
            .skip_while(|s| s.start < within.start)
            .take_while(|s| s.start < within.end)
            .filter(|s| !exclude.contains(s))
            .collect();
        found.sort_by_key(|s| (niceness(s.start.with_timezone(&tz).time()), s.start));
        found
    }
}

/// 0 on the hour, 1 on the half hour, 2 otherwise.
fn niceness(t: chrono::NaiveTime) -> u8 {
    use chrono::Timelike;
    match t.minute() {
        0 => 0,
        30 => 1,
        _ => 2,
    }
}

/// The rule that keeps a start from being offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exclusion {
    OutsideLookAhead,
    MinimumNotice,
    DayNotInWindow,
    /// Not on the step grid, or outside the day's window.
    NotACandidate,
    /// The padded meeting overlaps this (merged) busy interval.
    Busy(Interval),
}

#[cfg(test)]
mod tests;
