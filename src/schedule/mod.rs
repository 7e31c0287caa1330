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

pub mod cli;
mod rules;

pub use rules::{BookingRules, RulesError, Window};

use rules::minutes_of;

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

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
    busy: Cow<'r, [Interval]>,
    now: DateTime<Utc>,
}

impl<'r> SlotFinder<'r> {
    /// `busy` may be unsorted and overlapping; it holds foreign busy time and
    /// callbook's own claims (already padded) alike.
    pub fn new(rules: &'r BookingRules, busy: Vec<Interval>, now: DateTime<Utc>) -> Self {
        Self {
            rules,
            busy: Cow::Owned(merge_busy(busy)),
            now,
        }
    }

    /// A finder over busy time already passed through [`merge_busy`], borrowed
    /// as is: a call merges its busy time once and asks many questions.
    pub fn from_merged(
        rules: &'r BookingRules,
        merged: &'r [Interval],
        now: DateTime<Utc>,
    ) -> Self {
        debug_assert!(
            merged.windows(2).all(|w| w[0].end < w[1].start),
            "busy time is not merged"
        );
        Self {
            rules,
            busy: Cow::Borrowed(merged),
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
        self.candidates_from(self.earliest_start())
    }

    /// Candidates starting at or after `from` (and after the notice), in order.
    fn candidates_from(&self, from: DateTime<Utc>) -> impl Iterator<Item = Interval> + '_ {
        let (first, last) = self.bookable_dates();
        let from = from.max(self.earliest_start());
        let from_date = from
            .with_timezone(&self.rules.timezone)
            .date_naive()
            .max(first);
        from_date
            .iter_days()
            .take_while(move |d| *d <= last)
            .flat_map(move |date| self.day_candidates(date))
            .filter(move |slot| slot.start >= from)
    }

    /// Candidate meetings on one local date, in time order.
    ///
    /// On a day without a clock change every local time is midnight plus its
    /// minutes, so the grid is computed from one offset lookup. A day with a
    /// change resolves each grid point on its own.
    fn day_candidates(&self, date: NaiveDate) -> Vec<Interval> {
        let rules = self.rules;
        if !rules.window.allows(date) {
            return Vec::new();
        }
        let tz = rules.timezone;
        let day_start = resolve_local(tz, date.and_time(NaiveTime::MIN));
        let day_end = resolve_local(tz, (date + Duration::days(1)).and_time(NaiveTime::MIN));
        let step = i64::from(rules.slot_step_minutes);
        let length = rules.length();
        let open_min = i64::from(minutes_of(rules.window.start));
        let close_min = rules
            .window
            .end
            .map_or(24 * 60, |e| i64::from(minutes_of(e)));
        if day_end - day_start == Duration::days(1) {
            let first_k = (open_min + step - 1) / step;
            let last_k = (close_min - i64::from(rules.length_minutes)).div_euclid(step);
            return (first_k..=last_k)
                .map(|k| {
                    let s = day_start + Duration::minutes(k * step);
                    Interval::new(s, s + length)
                })
                .collect();
        }
        let open = resolve_local(tz, date.and_time(rules.window.start));
        let close = match rules.window.end {
            Some(end) => resolve_local(tz, date.and_time(end)),
            None => day_end,
        };
        let mut out: Vec<Interval> = Vec::new();
        for start in self.day_grid(date) {
            if start < open || start + length > close {
                continue;
            }
            out.push(Interval::new(start, start + length));
        }
        out
    }

    /// Every grid point of a local date as an instant, in order, with the
    /// points that fall into a spring-forward gap merged into one.
    fn day_grid(&self, date: NaiveDate) -> Vec<DateTime<Utc>> {
        let tz = self.rules.timezone;
        let step = i64::from(self.rules.slot_step_minutes);
        let midnight = date.and_time(NaiveTime::MIN);
        let mut out: Vec<DateTime<Utc>> = Vec::new();
        for k in 0..(24 * 60 / step) {
            let start = resolve_local(tz, midnight + Duration::minutes(k * step));
            if out.last().is_none_or(|prev| *prev < start) {
                out.push(start);
            }
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
        if !self.day_grid(date).contains(&start) {
            return Some(Exclusion::NotOnStepGrid);
        }
        if !self.day_candidates(date).iter().any(|c| c.start == start) {
            return Some(Exclusion::OutsideWindow);
        }
        let padded = rules.padded(Interval::new(start, start + rules.length()));
        self.first_overlap(padded).map(|b| Exclusion::Busy {
            start: b.start,
            end: b.end,
        })
    }

    /// Whether a meeting at exactly `slot` may still be booked.
    pub fn is_free(&self, slot: Interval) -> bool {
        slot.duration() == self.rules.length() && self.exclusion(slot.start).is_none()
    }

    fn first_overlap(&self, padded: Interval) -> Option<Interval> {
        // Busy is merged and sorted: the only interval that can overlap is
        // the last one starting before `padded.end`.
        let idx = self.busy.partition_point(|b| b.start < padded.end);
        idx.checked_sub(1)
            .map(|i| self.busy[i])
            .filter(|b| b.end > padded.start)
    }

    fn is_clear(&self, slot: Interval) -> bool {
        self.first_overlap(self.rules.padded(slot)).is_none()
    }

    /// Free slots in time order, lazily.
    pub fn free(&self) -> impl Iterator<Item = Interval> + '_ {
        self.free_from(self.earliest_start())
    }

    /// Free slots starting at or after `from`, in time order, lazily. Busy
    /// time is walked with a cursor, so a full listing is linear in days
    /// plus busy intervals.
    pub fn free_from(&self, from: DateTime<Utc>) -> impl Iterator<Item = Interval> + '_ {
        let mut cursor = None;
        self.candidates_from(from).filter(move |slot| {
            let padded = self.rules.padded(*slot);
            let c =
                cursor.get_or_insert_with(|| self.busy.partition_point(|b| b.end <= padded.start));
            while *c < self.busy.len() && self.busy[*c].end <= padded.start {
                *c += 1;
            }
            self.busy.get(*c).is_none_or(|b| b.start >= padded.end)
        })
    }

    /// Free slots starting strictly before `before`, latest first, lazily.
    pub fn free_before(&self, before: DateTime<Utc>) -> impl Iterator<Item = Interval> + '_ {
        let (first, last) = self.bookable_dates();
        let earliest = self.earliest_start();
        let from_date = before
            .with_timezone(&self.rules.timezone)
            .date_naive()
            .min(last);
        let days = (from_date - first).num_days().max(-1) + 1;
        (0..days)
            .map(move |i| from_date - Duration::days(i))
            .flat_map(move |date| self.day_candidates(date).into_iter().rev())
            .filter(move |s| s.start < before && s.start >= earliest && self.is_clear(*s))
    }

    /// The first `n` free slots starting at or after `from`.
    pub fn first_free(&self, from: DateTime<Utc>, n: usize) -> Vec<Interval> {
        self.free_from(from).take(n).collect()
    }

    /// Up to `n` free slots nearest `target`, nearest first (an earlier one
    /// wins a tie), never one of `exclude`. Searches outward from the target,
    /// so its cost depends on how far the nearest free slots are, not on the
    /// look-ahead.
    pub fn nearest(&self, target: DateTime<Utc>, n: usize, exclude: &[Interval]) -> Vec<Interval> {
        let keep = |s: &Interval| !exclude.contains(s);
        let mut near: Vec<Interval> = self.free_from(target).filter(keep).take(n).collect();
        near.extend(self.free_before(target).filter(keep).take(n));
        near.sort_by_key(|s| ((s.start - target).num_seconds().abs(), s.start));
        near.truncate(n);
        near
    }

    /// Up to `n` free slots before the one on offer, latest first.
    pub fn earlier(&self, offered: Interval, n: usize, exclude: &[Interval]) -> Vec<Interval> {
        self.free_before(offered.start)
            .filter(|s| !exclude.contains(s))
            .take(n)
            .collect()
    }

    /// Up to `n` free slots after the one on offer, earliest first.
    pub fn later(&self, offered: Interval, n: usize, exclude: &[Interval]) -> Vec<Interval> {
        self.free_from(offered.start + Duration::seconds(1))
            .filter(|s| !exclude.contains(s))
            .take(n)
            .collect()
    }

    /// Up to `n` free slots to offer instead of `target`, which is not
    /// available: the nearest on the target's own day (local to `tz`) and
    /// one well apart from it there, then one a day on the days after, then
    /// on the days before, each the closest to the target's time of day.
    /// Never on `avoid` (the day a meeting is moving away from) unless
    /// nothing else is free, and never one of `exclude`.
    pub fn alternatives(
        &self,
        target: DateTime<Utc>,
        tz: Tz,
        avoid: Option<NaiveDate>,
        exclude: &[Interval],
        n: usize,
    ) -> Vec<Interval> {
        let free: Vec<Interval> = self.free().filter(|s| !exclude.contains(s)).collect();
        let pick = |allow_avoided: bool| {
            let day = |s: &Interval| s.start.with_timezone(&tz).date_naive();
            let usable: Vec<Interval> = free
                .iter()
                .copied()
                .filter(|s| allow_avoided || Some(day(s)) != avoid)
                .collect();
            let target_day = target.with_timezone(&tz).date_naive();
            let time_of = |t: DateTime<Utc>| {
                use chrono::Timelike;
                i64::from(t.with_timezone(&tz).time().num_seconds_from_midnight())
            };
            let distance = |s: &Interval| (s.start - target).num_seconds().abs();
            let mut out: Vec<Interval> = Vec::new();
            let mut same: Vec<Interval> = usable
                .iter()
                .copied()
                .filter(|s| day(s) == target_day)
                .collect();
            same.sort_by_key(|s| (distance(s), s.start));
            if let Some(first) = same.first().copied() {
                out.push(first);
                // Well apart from the first: later that day if it can be
                // (a window asked for runs on from its start), else earlier.
                let apart = |later: bool| {
                    same.iter().copied().find(|s| {
                        let gap = s.start - first.start;
                        if later {
                            gap >= ALTERNATIVES_APART
                        } else {
                            -gap >= ALTERNATIVES_APART
                        }
                    })
                };
                if let Some(s) = apart(true).or_else(|| apart(false)) {
                    out.push(s);
                }
                // Said in the order of the day.
                out.sort_by_key(|s| s.start);
            }
            let mut days: Vec<NaiveDate> = usable
                .iter()
                .map(day)
                .filter(|d| *d != target_day)
                .collect();
            days.dedup();
            let (after, before): (Vec<NaiveDate>, Vec<NaiveDate>) =
                days.into_iter().partition(|d| *d > target_day);
            for d in after.into_iter().chain(before.into_iter().rev()) {
                if out.len() >= n {
                    break;
                }
                let best = usable
                    .iter()
                    .filter(|s| day(s) == d)
                    .min_by_key(|s| ((time_of(s.start) - time_of(target)).abs(), s.start));
                if let Some(s) = best {
                    out.push(*s);
                }
            }
            out.truncate(n);
            out
        };
        let found = pick(false);
        if found.is_empty() {
            pick(true)
        } else {
            found
        }
    }

    /// Free slots whose start falls inside `within` (a caller's window such
    /// as "tomorrow afternoon"), nicest first in the caller's zone `tz`: on
    /// the hour, then on the half hour, then the rest; earlier first inside
    /// each group.
    pub fn free_within(&self, within: Interval, tz: Tz, exclude: &[Interval]) -> Vec<Interval> {
        let mut found: Vec<Interval> = self
            .free_from(within.start)
            .take_while(|s| s.start < within.end)
            .filter(|s| !exclude.contains(s))
            .collect();
        found.sort_by_key(|s| (niceness(s.start.with_timezone(&tz).time()), s.start));
        found
    }
}

/// How far apart two alternatives on the same day are, at the least, so
/// the second is a real choice rather than the next half hour.
const ALTERNATIVES_APART: Duration = Duration::minutes(120);

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Exclusion {
    /// The start's local date is before today or past the look-ahead.
    OutsideLookAhead,
    /// The start is sooner than `now + min_notice_minutes`.
    MinimumNotice,
    /// The window does not include this weekday.
    DayNotInWindow,
    /// Not a multiple of the step from local midnight.
    NotOnStepGrid,
    /// The meeting would start before the window opens or end after it closes.
    OutsideWindow,
    /// The padded meeting overlaps this merged busy interval.
    Busy {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod calcom_cases;
#[cfg(test)]
mod dst_tests;
#[cfg(test)]
mod props;
