//! The supervisor's figures, computed from case histories and the
//! gateway's USSD session reports. Every figure is defined in the README
//! ("Figures"); the definitions live here and nowhere else.

use chrono::{Datelike, FixedOffset, NaiveDate, TimeZone, Timelike};
use guichet_core::sync::protocol::UssdSessionReport;
use guichet_core::{CaseHistory, EventKind, Status};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// Which cases and sessions the figures are about.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// First day of the period, local date.
    pub from: NaiveDate,
    /// Last day of the period, included.
    pub to: NaiveDate,
    pub unit: Option<String>,
    pub service: Option<String>,
    /// The deployment's local time, for days and hours.
    pub utc_offset: FixedOffset,
}

impl Selection {
    pub fn start_ms(&self) -> u64 {
        self.local_midnight_ms(self.from)
    }

    /// The end of the last day, excluded.
    pub fn end_ms(&self) -> u64 {
        self.local_midnight_ms(self.to.succ_opt().unwrap_or(self.to))
    }

    fn local_midnight_ms(&self, day: NaiveDate) -> u64 {
        let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
        self.utc_offset
            .from_local_datetime(&midnight)
            .single()
            .map_or(0, |t| t.timestamp_millis().max(0) as u64)
    }

    /// The period in ms, computed once per figures (it converts local dates).
    fn period(&self) -> std::ops::Range<u64> {
        self.start_ms()..self.end_ms()
    }

    fn wants(&self, unit: Option<&str>, service: Option<&str>) -> bool {
        let matches = |wanted: &Option<String>, actual: Option<&str>| {
            wanted.as_deref().is_none_or(|w| actual == Some(w))
        };
        matches(&self.unit, unit) && matches(&self.service, service)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figures {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub unit: Option<String>,
    pub service: Option<String>,
    pub received: Received,
    pub processing: Processing,
    pub backlog: Backlog,
    pub first_contact_resolution: Share,
    pub repeat_contacts: RepeatContacts,
    pub complaints: Complaints,
    pub satisfaction: Satisfaction,
    pub ussd: UssdFigures,
    pub busiest: Busiest,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Received {
    pub total: u64,
    pub by_channel: BTreeMap<String, u64>,
    pub by_language: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Processing {
    /// Cases first resolved in the period.
    pub resolved: u64,
    pub median_hours: Option<f64>,
    pub p90_hours: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Backlog {
    pub total: u64,
    pub by_status: BTreeMap<String, u64>,
    /// Counts for ages under 1 day, 1 to 7 days, 7 to 30 days, over 30 days.
    pub by_age: [u64; 4],
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Share {
    pub count: u64,
    pub of: u64,
    pub percent: Option<f64>,
}

impl Share {
    fn new(count: u64, of: u64) -> Share {
        Share {
            count,
            of,
            percent: percent(count, of),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RepeatContacts {
    /// Inquiries made in the period.
    pub inquiries: u64,
    /// Requests received in the period whose requester asked again.
    pub requests_asked_again: Share,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Complaints {
    pub count: u64,
    pub per_100_requests: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Satisfaction {
    pub ratings: u64,
    pub average: Option<f64>,
    /// How many ratings of 1, 2, 3, 4 and 5.
    pub distribution: [u64; 5],
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UssdFigures {
    pub sessions: u64,
    pub completed: u64,
    pub abandoned: u64,
    pub failed: u64,
    pub abandonment_percent: Option<f64>,
    /// Where the abandoned and failed sessions stopped.
    pub abandoned_in_flow: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Busiest {
    /// Requests received per weekday, Monday first.
    pub by_weekday: [u64; 7],
    /// Requests received per hour of the day, local time.
    pub by_hour: [u64; 24],
}

/// Computes the figures of `selection` at time `now_ms` (the backlog is
/// the one at the end of the period, or now if the period is not over).
pub fn compute(
    cases: &[&CaseHistory],
    sessions: &[UssdSessionReport],
    selection: &Selection,
    now_ms: u64,
) -> Figures {
    let cases: Vec<&CaseHistory> = cases
        .iter()
        .copied()
        .filter(|c| selection.wants(Some(&c.unit), Some(&c.service)))
        .collect();
    let period = selection.period();
    let in_period = |ms: u64| period.contains(&ms);
    let backlog_at = period.end.min(now_ms);

    let mut received = Received::default();
    let mut busiest = Busiest::default();
    let mut durations = Vec::new();
    let mut first_contact = 0;
    let mut backlog = Backlog::default();
    let mut inquiries = 0;
    let mut asked_again = 0;
    let mut complaints = 0;
    let mut satisfaction = Satisfaction::default();
    for case in &cases {
        if in_period(case.received_ms) {
            received.total += 1;
            *received
                .by_channel
                .entry(case.channel.as_str().to_string())
                .or_default() += 1;
            *received
                .by_language
                .entry(case.language.clone())
                .or_default() += 1;
            if let Some(local) = selection
                .utc_offset
                .timestamp_millis_opt(case.received_ms as i64)
                .single()
            {
                busiest.by_weekday[local.weekday().num_days_from_monday() as usize] += 1;
                busiest.by_hour[local.hour() as usize] += 1;
            }
            if case.events.iter().any(|(_, k)| *k == EventKind::Inquiry) {
                asked_again += 1;
            }
        }
        if let Some(resolved) = case.first_resolved_ms().filter(|ms| in_period(*ms)) {
            durations.push(resolved.saturating_sub(case.received_ms));
            let asked_before = case
                .events
                .iter()
                .any(|(ms, k)| *k == EventKind::Inquiry && *ms < resolved);
            if !asked_before && !case.reopened() {
                first_contact += 1;
            }
        }
        if case.received_ms < backlog_at {
            if let Some(status) = status_at(case, backlog_at).filter(|s| is_open(*s)) {
                backlog.total += 1;
                *backlog
                    .by_status
                    .entry(status.as_str().to_string())
                    .or_default() += 1;
                let age = backlog_at - case.received_ms;
                let bucket = match age {
                    a if a < DAY_MS => 0,
                    a if a < 7 * DAY_MS => 1,
                    a if a < 30 * DAY_MS => 2,
                    _ => 3,
                };
                backlog.by_age[bucket] += 1;
            }
        }
        for (ms, kind) in &case.events {
            if in_period(*ms) {
                match kind {
                    EventKind::Inquiry => inquiries += 1,
                    EventKind::Complaint => complaints += 1,
                    _ => {}
                }
            }
        }
        if let (Some(rating), Some(at)) = (case.rating, case.rated_ms) {
            if in_period(at) && (1..=5).contains(&rating) {
                satisfaction.ratings += 1;
                satisfaction.distribution[rating as usize - 1] += 1;
            }
        }
    }
    durations.sort_unstable();
    let resolved = durations.len() as u64;
    let total_rating: u64 = (1..=5u64)
        .map(|r| r * satisfaction.distribution[r as usize - 1])
        .sum();
    satisfaction.average = ratio(total_rating, satisfaction.ratings).map(|a| round(a, 2));

    let mut ussd = UssdFigures::default();
    for session in sessions.iter().filter(|s| {
        in_period(s.ended_ms) && selection.wants(s.unit.as_deref(), s.service.as_deref())
    }) {
        ussd.sessions += 1;
        match session.outcome.as_str() {
            "completed" => ussd.completed += 1,
            outcome => {
                if outcome == "failed" {
                    ussd.failed += 1;
                } else {
                    ussd.abandoned += 1;
                }
                *ussd
                    .abandoned_in_flow
                    .entry(session.flow.clone())
                    .or_default() += 1;
            }
        }
    }
    ussd.abandonment_percent = percent(ussd.abandoned + ussd.failed, ussd.sessions);

    Figures {
        from: selection.from,
        to: selection.to,
        unit: selection.unit.clone(),
        service: selection.service.clone(),
        processing: Processing {
            resolved,
            median_hours: quantile(&durations, 50).map(hours),
            p90_hours: quantile(&durations, 90).map(hours),
        },
        first_contact_resolution: Share::new(first_contact, resolved),
        repeat_contacts: RepeatContacts {
            inquiries,
            requests_asked_again: Share::new(asked_again, received.total),
        },
        complaints: Complaints {
            count: complaints,
            per_100_requests: ratio(complaints * 100, received.total).map(|r| round(r, 1)),
        },
        received,
        backlog,
        satisfaction,
        ussd,
        busiest,
    }
}

/// What a supervisor sees: the figures of the selection, a line per unit
/// in scope, and the units and services there are to choose from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dashboard {
    pub figures: Figures,
    pub by_unit: Vec<UnitLine>,
    pub units: Vec<String>,
    pub services: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnitLine {
    pub unit: String,
    pub received: u64,
    pub resolved: u64,
    pub median_hours: Option<f64>,
    pub backlog: u64,
    pub satisfaction: Option<f64>,
    pub complaints: u64,
}

/// The dashboard of `selection`, over the cases and sessions a supervisor
/// may see (filtered by the caller).
pub fn dashboard(
    cases: &[&CaseHistory],
    sessions: &[UssdSessionReport],
    selection: &Selection,
    now_ms: u64,
) -> Dashboard {
    let mut by_unit_cases: BTreeMap<&str, Vec<&CaseHistory>> = BTreeMap::new();
    for case in cases {
        by_unit_cases.entry(&case.unit).or_default().push(case);
    }
    let services: BTreeSet<&str> = cases.iter().map(|c| c.service.as_str()).collect();
    let by_unit = by_unit_cases
        .iter()
        .filter(|(u, _)| selection.unit.as_deref().is_none_or(|wanted| wanted == **u))
        .map(|(unit, unit_cases)| {
            let one = Selection {
                unit: Some(unit.to_string()),
                ..selection.clone()
            };
            let f = compute(unit_cases, &[], &one, now_ms);
            UnitLine {
                unit: unit.to_string(),
                received: f.received.total,
                resolved: f.processing.resolved,
                median_hours: f.processing.median_hours,
                backlog: f.backlog.total,
                satisfaction: f.satisfaction.average,
                complaints: f.complaints.count,
            }
        })
        .collect();
    let units = by_unit_cases.keys().map(|u| u.to_string()).collect();
    let services = services.into_iter().map(str::to_string).collect();
    Dashboard {
        figures: compute(cases, sessions, selection, now_ms),
        by_unit,
        units,
        services,
    }
}

/// The status a case had at `ms`: the last one written by then.
fn status_at(case: &CaseHistory, ms: u64) -> Option<Status> {
    case.status_changes
        .iter()
        .take_while(|(at, _)| *at < ms)
        .last()
        .map(|(_, s)| *s)
}

/// Waiting for the service: neither done nor cancelled.
fn is_open(status: Status) -> bool {
    !status.is_done() && status != Status::Cancelled
}

/// Nearest-rank quantile of sorted values.
fn quantile(sorted: &[u64], percent: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

fn hours(ms: u64) -> f64 {
    round(ms as f64 / HOUR_MS as f64, 1)
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

fn percent(a: u64, b: u64) -> Option<f64> {
    ratio(a * 100, b).map(|p| round(p, 1))
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;
    use guichet_core::{CaseId, Channel};

    const T0: u64 = 1_792_972_800_000; // 2026-10-26 00:00 UTC, a Monday

    fn case(n: u64, received: u64) -> CaseHistory {
        CaseHistory {
            id: CaseId::from_i64((2 << 40) | n as i64).unwrap(),
            unit: "unit-01".into(),
            service: "etat-civil".into(),
            channel: Channel::Ussd,
            language: "wo".into(),
            status: Status::Received,
            rating: None,
            received_ms: received,
            status_changes: vec![(received, Status::Received)],
            rated_ms: None,
            events: vec![],
        }
    }

    fn set_status(c: &mut CaseHistory, ms: u64, s: Status) {
        c.status_changes.push((ms, s));
        c.status = s;
    }

    fn october() -> Selection {
        Selection {
            from: NaiveDate::from_ymd_opt(2026, 10, 26).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            unit: None,
            service: None,
            utc_offset: FixedOffset::east_opt(0).unwrap(),
        }
    }

    #[test]
    fn figures_follow_their_definitions() {
        // Resolved after 10 h, never asked about: first-contact resolution.
        let mut quick = case(1, T0 + 8 * HOUR_MS);
        set_status(&mut quick, T0 + 18 * HOUR_MS, Status::Resolved);
        quick.rating = Some(5);
        quick.rated_ms = Some(T0 + 20 * HOUR_MS);
        // Asked about, then resolved after 2 days, rated 2, a complaint.
        let mut slow = case(2, T0 + DAY_MS + 9 * HOUR_MS);
        slow.channel = Channel::Sms;
        slow.language = "fr".into();
        slow.events = vec![
            (T0 + 2 * DAY_MS, EventKind::Inquiry),
            (T0 + 2 * DAY_MS + 1, EventKind::Inquiry),
            (T0 + 3 * DAY_MS, EventKind::Complaint),
        ];
        set_status(&mut slow, T0 + 3 * DAY_MS + 9 * HOUR_MS, Status::Resolved);
        slow.rating = Some(2);
        slow.rated_ms = Some(T0 + 4 * DAY_MS);
        // Resolved then reopened: not first-contact, in the backlog.
        let mut reopened = case(3, T0 + 9 * HOUR_MS);
        set_status(&mut reopened, T0 + 10 * HOUR_MS, Status::Resolved);
        set_status(&mut reopened, T0 + 11 * HOUR_MS, Status::InProgress);
        // Still waiting, 10 days old at the end of the period.
        let waiting = case(4, T0 - 3 * DAY_MS);
        // Another unit: left out when one unit is asked for.
        let mut elsewhere = case(5, T0 + 9 * HOUR_MS);
        elsewhere.unit = "unit-02".into();
        // Cancelled: never in the backlog.
        let mut cancelled = case(6, T0 + 9 * HOUR_MS);
        set_status(&mut cancelled, T0 + 12 * HOUR_MS, Status::Cancelled);
        let cases = [quick, slow, reopened, waiting, elsewhere, cancelled];
        let session = |outcome: &str, flow: &str, unit: Option<&str>| UssdSessionReport {
            id: 1,
            outcome: outcome.into(),
            flow: flow.into(),
            language: Some("wo".into()),
            service: None,
            unit: unit.map(str::to_string),
            ended_ms: T0 + HOUR_MS,
        };
        let sessions = vec![
            session("completed", "new_request", Some("unit-01")),
            session("abandoned", "new_request", Some("unit-01")),
            session("failed", "track", None),
            session("completed", "track", None),
        ];
        let end = T0 + 7 * DAY_MS;
        let cases: Vec<&CaseHistory> = cases.iter().collect();
        let f = compute(&cases, &sessions, &october(), end + 5 * DAY_MS);

        assert_eq!(f.received.total, 5, "the waiting case came before");
        assert_eq!(f.received.by_channel["ussd"], 4);
        assert_eq!(f.received.by_channel["sms"], 1);
        assert_eq!(f.received.by_language["fr"], 1);
        assert_eq!(f.processing.resolved, 3);
        // 1 h (reopened), 10 h, 48 h: median 10, p90 48.
        assert_eq!(f.processing.median_hours, Some(10.0));
        assert_eq!(f.processing.p90_hours, Some(48.0));
        assert_eq!(f.first_contact_resolution, Share::new(1, 3));
        assert_eq!(f.repeat_contacts.inquiries, 2);
        assert_eq!(f.repeat_contacts.requests_asked_again, Share::new(1, 5));
        assert_eq!(f.complaints.count, 1);
        assert_eq!(f.complaints.per_100_requests, Some(20.0));
        assert_eq!(f.satisfaction.ratings, 2);
        assert_eq!(f.satisfaction.average, Some(3.5));
        assert_eq!(f.satisfaction.distribution, [0, 1, 0, 0, 1]);
        assert_eq!(f.backlog.total, 3);
        assert_eq!(f.backlog.by_status["in_progress"], 1);
        assert_eq!(f.backlog.by_status["received"], 2);
        // At the end of the period: reopened and elsewhere are 6-7 days
        // old, the waiting case 10 days.
        assert_eq!(f.backlog.by_age, [0, 2, 1, 0]);
        assert_eq!(f.ussd.sessions, 4);
        assert_eq!(f.ussd.abandonment_percent, Some(50.0));
        assert_eq!(f.ussd.abandoned_in_flow["track"], 1);
        // Monday 8:00 to 9:59, and Tuesday 9:00.
        assert_eq!(f.busiest.by_weekday[0], 4);
        assert_eq!(f.busiest.by_weekday[1], 1);
        assert_eq!(f.busiest.by_hour[9], 4);
        assert_eq!(f.busiest.by_hour[8], 1);

        let one_unit = Selection {
            unit: Some("unit-01".into()),
            ..october()
        };
        let f = compute(&cases, &sessions, &one_unit, end);
        assert_eq!(f.received.total, 4);
        assert_eq!(f.backlog.total, 2);
        assert_eq!(f.ussd.sessions, 2, "sessions of no known unit are left out");

        // The backlog of a past period is the one at its end.
        let first_day = Selection {
            to: october().from,
            ..october()
        };
        let f = compute(&cases, &sessions, &first_day, end);
        assert_eq!(f.backlog.by_status.get("in_progress"), Some(&1));
        assert_eq!(f.received.total, 4);

        // Local time moves requests to other hours.
        let dakar_plus_3 = Selection {
            utc_offset: FixedOffset::east_opt(3 * 3600).unwrap(),
            ..october()
        };
        let f = compute(&cases, &sessions, &dakar_plus_3, end);
        assert_eq!(f.busiest.by_hour[12], 4);
    }

    #[test]
    fn an_empty_period_has_no_averages() {
        let f = compute(&[], &[], &october(), T0);
        assert_eq!(f.processing.median_hours, None);
        assert_eq!(f.satisfaction.average, None);
        assert_eq!(f.ussd.abandonment_percent, None);
        assert_eq!(f.first_contact_resolution.percent, None);
    }
}
