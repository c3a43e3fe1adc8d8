//! Records and enums as the apps see them, and their conversions from and
//! to the core's types. Ids are strings such as `"12-345"`; times are
//! milliseconds since the Unix epoch.

use crate::error::{GuichetError, Result};
use guichet_core as core;
use guichet_core::{CaseId, Field, Stamp, Value};

/// Both directions between a mirrored enum and the core's, as exhaustive
/// matches: a variant added to the core does not compile until mirrored.
macro_rules! mirror {
    ($ours:ident <-> $theirs:path { $($variant:ident),* $(,)? }) => {
        impl From<$theirs> for $ours {
            fn from(v: $theirs) -> Self {
                use $theirs as T;
                match v { $(T::$variant => $ours::$variant,)* }
            }
        }
        impl From<$ours> for $theirs {
            fn from(v: $ours) -> Self {
                use $theirs as T;
                match v { $($ours::$variant => T::$variant,)* }
            }
        }
    };
}

/// Where a case stands in the workflow (see `nextStatuses`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum CaseStatus {
    Received,
    Assigned,
    InProgress,
    WaitingForCitizen,
    Resolved,
    Closed,
    Cancelled,
}
mirror!(CaseStatus <-> core::Status {
    Received, Assigned, InProgress, WaitingForCitizen, Resolved, Closed, Cancelled
});

/// How the request reached the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum Channel {
    /// At the mobile unit, with an agent.
    Field,
    Ussd,
    Sms,
    /// Through a mediator (named in `NewCase.mediator`).
    Mediator,
}
mirror!(Channel <-> core::Channel { Field, Ussd, Sms, Mediator });

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum Priority {
    Low,
    Normal,
    Urgent,
}
mirror!(Priority <-> core::Priority { Low, Normal, Urgent });

/// What a timeline event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum EventKind {
    Note,
    /// The citizen contacted the service, or was contacted, about the case.
    Contact,
    Visit,
    /// A complaint about the service, counted by supervisors.
    Complaint,
    /// The requester or their mediator asked about the case by USSD or SMS.
    Inquiry,
}
mirror!(EventKind <-> core::EventKind { Note, Contact, Visit, Complaint, Inquiry });

/// The fields of a case that can change after creation; each merges on its
/// own, and each can be in conflict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum CaseField {
    Service,
    RequesterPhone,
    RequesterName,
    RequesterLanguage,
    Locality,
    Mediator,
    Unit,
    Assignee,
    Priority,
    Description,
    Status,
    Rating,
}
mirror!(CaseField <-> core::Field {
    Service, RequesterPhone, RequesterName, RequesterLanguage, Locality, Mediator, Unit,
    Assignee, Priority, Description, Status, Rating
});

/// A value of one field: what `updateCase` writes, what a conflict shows,
/// what `resolveConflict` keeps, what the timeline says was changed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum FieldValue {
    Service {
        value: String,
    },
    /// E.164, such as `+221771234567`.
    RequesterPhone {
        value: String,
    },
    RequesterName {
        value: String,
    },
    /// A 2 or 3 letter code such as `wo` or `fr`.
    RequesterLanguage {
        value: String,
    },
    Locality {
        value: String,
    },
    Mediator {
        value: Option<String>,
    },
    Unit {
        value: String,
    },
    Assignee {
        value: Option<String>,
    },
    Priority {
        value: Priority,
    },
    Description {
        value: String,
    },
    /// Checked against the workflow, like `changeStatus`.
    Status {
        value: CaseStatus,
    },
    /// 1 to 5, once the case is resolved or closed.
    Rating {
        value: Option<u8>,
    },
}

impl FieldValue {
    pub(crate) fn field(&self) -> Field {
        match self {
            FieldValue::Service { .. } => Field::Service,
            FieldValue::RequesterPhone { .. } => Field::RequesterPhone,
            FieldValue::RequesterName { .. } => Field::RequesterName,
            FieldValue::RequesterLanguage { .. } => Field::RequesterLanguage,
            FieldValue::Locality { .. } => Field::Locality,
            FieldValue::Mediator { .. } => Field::Mediator,
            FieldValue::Unit { .. } => Field::Unit,
            FieldValue::Assignee { .. } => Field::Assignee,
            FieldValue::Priority { .. } => Field::Priority,
            FieldValue::Description { .. } => Field::Description,
            FieldValue::Status { .. } => Field::Status,
            FieldValue::Rating { .. } => Field::Rating,
        }
    }

    pub(crate) fn to_core(&self) -> (Field, Value) {
        let value = match self {
            FieldValue::Service { value }
            | FieldValue::RequesterPhone { value }
            | FieldValue::RequesterName { value }
            | FieldValue::RequesterLanguage { value }
            | FieldValue::Locality { value }
            | FieldValue::Unit { value }
            | FieldValue::Description { value } => Value::text(value),
            FieldValue::Mediator { value } | FieldValue::Assignee { value } => {
                Value::opt_text(value.as_ref())
            }
            FieldValue::Priority { value } => {
                Value::Int(core::Priority::from(*value).code().into())
            }
            FieldValue::Status { value } => Value::Int(core::Status::from(*value).code().into()),
            FieldValue::Rating { value } => value.map_or(Value::Null, |r| Value::Int(r.into())),
        };
        (self.field(), value)
    }

    pub(crate) fn from_core(field: Field, value: &Value) -> Result<FieldValue> {
        let damaged =
            || GuichetError::Storage(format!("the store holds an unreadable value for {field}"));
        let text = || value.as_text().map(str::to_string).ok_or_else(damaged);
        let opt_text = || match value {
            Value::Null => Ok(None),
            Value::Text(t) => Ok(Some(t.clone())),
            Value::Int(_) => Err(damaged()),
        };
        let int = || value.as_int().ok_or_else(damaged);
        Ok(match field {
            Field::Service => FieldValue::Service { value: text()? },
            Field::RequesterPhone => FieldValue::RequesterPhone { value: text()? },
            Field::RequesterName => FieldValue::RequesterName { value: text()? },
            Field::RequesterLanguage => FieldValue::RequesterLanguage { value: text()? },
            Field::Locality => FieldValue::Locality { value: text()? },
            Field::Mediator => FieldValue::Mediator { value: opt_text()? },
            Field::Unit => FieldValue::Unit { value: text()? },
            Field::Assignee => FieldValue::Assignee { value: opt_text()? },
            Field::Priority => FieldValue::Priority {
                value: core::Priority::from_code(int()?)
                    .ok_or_else(damaged)?
                    .into(),
            },
            Field::Description => FieldValue::Description { value: text()? },
            Field::Status => FieldValue::Status {
                value: core::Status::from_code(int()?).ok_or_else(damaged)?.into(),
            },
            Field::Rating => FieldValue::Rating {
                value: match value {
                    Value::Null => None,
                    _ => Some(u8::try_from(int()?).map_err(|_| damaged())?),
                },
            },
        })
    }
}

/// What an agent fills in to open a case.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewCase {
    pub service: String,
    /// E.164, such as `+221771234567`.
    pub requester_phone: String,
    pub requester_name: String,
    /// A 2 or 3 letter code such as `wo` or `fr`.
    pub requester_language: String,
    pub locality: String,
    pub channel: Channel,
    /// The unit the case belongs to: one of a tablet's units (others are
    /// refused with `InvalidInput`); any unit for the intake role.
    pub unit: String,
    pub priority: Priority,
    /// Received, Assigned or InProgress.
    pub status: CaseStatus,
    #[uniffi(default = "")]
    pub description: String,
    /// Set exactly when the channel is `Mediator`.
    #[uniffi(default = None)]
    pub mediator: Option<String>,
    #[uniffi(default = None)]
    pub assignee: Option<String>,
}

impl From<NewCase> for core::NewCase {
    fn from(n: NewCase) -> Self {
        core::NewCase {
            service: n.service,
            requester_phone: n.requester_phone,
            requester_name: n.requester_name,
            requester_language: n.requester_language,
            locality: n.locality,
            channel: n.channel.into(),
            mediator: n.mediator,
            unit: n.unit,
            assignee: n.assignee,
            priority: n.priority.into(),
            description: n.description,
            status: n.status.into(),
        }
    }
}

/// A case as it stands now: for every field, the value shown.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Case {
    /// Such as `"12-345"`: the id every method takes.
    pub id: String,
    /// The keypad reference the citizen is given (check digit included).
    pub reference: String,
    pub service: String,
    pub requester_phone: String,
    pub requester_name: String,
    pub requester_language: String,
    pub locality: String,
    pub channel: Channel,
    pub mediator: Option<String>,
    pub unit: String,
    pub assignee: Option<String>,
    pub priority: Priority,
    pub description: String,
    pub status: CaseStatus,
    pub rating: Option<u8>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// A field is in conflict or the status took a transition the workflow
    /// does not allow: someone should look (see `CaseDetail`).
    pub needs_attention: bool,
}

impl From<core::Case> for Case {
    fn from(c: core::Case) -> Self {
        Case {
            id: c.id.to_string(),
            reference: c.reference,
            service: c.service,
            requester_phone: c.requester_phone,
            requester_name: c.requester_name,
            requester_language: c.requester_language,
            locality: c.locality,
            channel: c.channel.into(),
            mediator: c.mediator,
            unit: c.unit,
            assignee: c.assignee,
            priority: c.priority.into(),
            description: c.description,
            status: c.status.into(),
            rating: c.rating,
            created_at_ms: c.created_at.millis(),
            updated_at_ms: c.updated_at.millis(),
            needs_attention: c.needs_attention,
        }
    }
}

/// One of the concurrent values of a field in conflict.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ConflictValue {
    pub value: FieldValue,
    /// The replica (device) that wrote it.
    pub author: u32,
    pub written_at_ms: u64,
}

/// A field whose concurrent writes have not been reconciled. The first
/// value is the one shown; `resolveConflict` with any value settles it.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FieldConflict {
    pub field: CaseField,
    pub values: Vec<ConflictValue>,
}

/// A status transition the workflow forbids, which appeared by merging
/// concurrent changes. Shown until the status moves on.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct StatusAnomaly {
    /// The status(es) the change was made from.
    pub previous: Vec<CaseStatus>,
    /// The status it set.
    pub status: CaseStatus,
    pub author: u32,
}

/// What one timeline entry records.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum TimelineWhat {
    Created,
    /// Fields written (status changes included).
    Changed {
        changes: Vec<FieldValue>,
    },
    Event {
        kind: EventKind,
        text: String,
    },
}

/// One immutable entry of a case's history.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct TimelineEntry {
    /// The replica (device) that wrote it.
    pub author: u32,
    /// The author's operation counter: `author` and `counter` name the entry.
    pub counter: u64,
    pub at_ms: u64,
    pub what: TimelineWhat,
}

/// Everything a case's page shows.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct CaseDetail {
    pub case: Case,
    pub conflicts: Vec<FieldConflict>,
    pub status_anomalies: Vec<StatusAnomaly>,
    /// Oldest first.
    pub timeline: Vec<TimelineEntry>,
}

impl TryFrom<core::CaseDetail> for CaseDetail {
    type Error = GuichetError;
    fn try_from(d: core::CaseDetail) -> Result<Self> {
        let mut conflicts = Vec::with_capacity(d.conflicts.len());
        for c in d.conflicts {
            let mut values = Vec::with_capacity(c.values.len());
            for v in c.values {
                values.push(ConflictValue {
                    value: FieldValue::from_core(c.field, &v.value)?,
                    author: v.author,
                    written_at_ms: v.stamp.millis(),
                });
            }
            conflicts.push(FieldConflict {
                field: c.field.into(),
                values,
            });
        }
        let mut timeline = Vec::with_capacity(d.timeline.len());
        for e in d.timeline {
            let what = match e.what {
                core::TimelineWhat::Created => TimelineWhat::Created,
                core::TimelineWhat::Changed(writes) => TimelineWhat::Changed {
                    changes: writes
                        .iter()
                        .map(|(f, v)| FieldValue::from_core(*f, v))
                        .collect::<Result<_>>()?,
                },
                core::TimelineWhat::Event { kind, text } => TimelineWhat::Event {
                    kind: kind.into(),
                    text,
                },
            };
            timeline.push(TimelineEntry {
                author: e.author,
                counter: e.counter,
                at_ms: e.stamp.millis(),
                what,
            });
        }
        Ok(CaseDetail {
            case: d.case.into(),
            conflicts,
            status_anomalies: d
                .status_anomalies
                .into_iter()
                .map(|a| StatusAnomaly {
                    previous: a.from.into_iter().map(Into::into).collect(),
                    status: a.to.into(),
                    author: a.author,
                })
                .collect(),
            timeline,
        })
    }
}

/// A filter over the cases of the store; every criterion set must hold.
/// Results come most recently changed first, `limit` at a time.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct CaseQuery {
    #[uniffi(default = None)]
    pub unit: Option<String>,
    #[uniffi(default = None)]
    pub status: Option<CaseStatus>,
    #[uniffi(default = None)]
    pub assignee: Option<String>,
    #[uniffi(default = None)]
    pub locality: Option<String>,
    /// E.164, exact.
    #[uniffi(default = None)]
    pub phone: Option<String>,
    /// Words to find in the requester's name, the locality or the
    /// description, ignoring case and accents; each word may be a prefix.
    #[uniffi(default = None)]
    pub text: Option<String>,
    /// Only cases whose latest change is in a later millisecond.
    #[uniffi(default = None)]
    pub changed_after_ms: Option<u64>,
    /// Only cases with a conflict or a status anomaly.
    #[uniffi(default = false)]
    pub needs_attention: bool,
    /// Page size, 1 to 1000 (0 means 50).
    #[uniffi(default = 50)]
    pub limit: u32,
    #[uniffi(default = 0)]
    pub offset: u32,
}

impl From<CaseQuery> for core::CaseQuery {
    fn from(q: CaseQuery) -> Self {
        const MAX_MS: u64 = (1 << 48) - 1;
        core::CaseQuery {
            unit: q.unit,
            status: q.status.map(Into::into),
            assignee: q.assignee,
            locality: q.locality,
            requester_phone: q.phone,
            text: q.text,
            // Past every stamp of that millisecond.
            changed_after: q
                .changed_after_ms
                .map(|ms| Stamp::new(ms.min(MAX_MS), u16::MAX)),
            needs_attention: q.needs_attention,
            limit: q.limit,
            offset: q.offset,
        }
    }
}

/// What the administrator's `guichet-sync-server enrol` returned for this
/// device, and the server it syncs with.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record, serde::Serialize, serde::Deserialize)]
pub struct Enrolment {
    /// The device's replica number: its identity in every write.
    pub replica: u32,
    pub agent: String,
    /// `tablet` (the cases of its units) or `intake`.
    pub role: String,
    pub units: Vec<String>,
    /// Such as `https://sync.example`.
    pub server_url: String,
}

/// Where a running sync stands; reported after every exchange.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct SyncProgress {
    /// Own operations the server took.
    pub ops_sent: u64,
    /// Operations received and applied.
    pub ops_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub round_trips: u32,
    /// Cases that left this device's units (and were dropped from the store).
    pub removed_cases: Vec<String>,
}

impl From<&core::sync::client::SyncProgress> for SyncProgress {
    fn from(p: &core::sync::client::SyncProgress) -> Self {
        SyncProgress {
            ops_sent: p.ops_sent,
            ops_received: p.ops_received,
            bytes_sent: p.bytes_sent,
            bytes_received: p.bytes_received,
            round_trips: p.round_trips,
            removed_cases: p.removed.iter().map(CaseId::to_string).collect(),
        }
    }
}

/// The sync history with the server, readable at any time (also while a
/// sync runs).
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct SyncStatus {
    pub server_url: String,
    /// A sync is running now.
    pub syncing: bool,
    pub last_attempt_ms: Option<u64>,
    pub last_success_ms: Option<u64>,
    /// Why the last attempt failed; None once a sync succeeds.
    pub last_error: Option<String>,
    /// Own operations the server has not confirmed yet.
    pub pending_ops: u64,
    /// Totals over every sync with this server.
    pub ops_sent: u64,
    pub ops_received: u64,
    /// Own operations the server keeps in quarantine without applying
    /// them (a case opened in a unit this device does not serve, say); a
    /// supervisor releases or acknowledges them. Not pending: syncing goes on.
    pub quarantined_ops: u64,
    /// The most recent of them, and why.
    pub quarantined: Vec<QuarantinedOp>,
}

/// One of this device's operations the server keeps in quarantine.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct QuarantinedOp {
    /// The case it belongs to.
    pub case_id: String,
    pub reason: String,
}

/// How hard a sync tries before reporting a failure.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SyncSettings {
    /// Attempts per exchange (network failures and server errors).
    #[uniffi(default = 6)]
    pub max_attempts: u32,
    /// First wait between attempts, doubled after each.
    #[uniffi(default = 500)]
    pub first_backoff_ms: u64,
    #[uniffi(default = 30000)]
    pub max_backoff_ms: u64,
    /// One request, from sending to the last byte of the answer.
    #[uniffi(default = 60000)]
    pub timeout_ms: u64,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            max_attempts: 6,
            first_backoff_ms: 500,
            max_backoff_ms: 30_000,
            timeout_ms: 60_000,
        }
    }
}

impl From<&SyncSettings> for core::sync::client::ClientOptions {
    fn from(s: &SyncSettings) -> Self {
        use std::time::Duration;
        // Bounded so that no setting can overflow the client's arithmetic.
        const HOUR_MS: u64 = 3_600_000;
        let first = s.first_backoff_ms.min(HOUR_MS);
        core::sync::client::ClientOptions {
            max_attempts: s.max_attempts.max(1),
            first_backoff: Duration::from_millis(first),
            max_backoff: Duration::from_millis(s.max_backoff_ms.clamp(first, HOUR_MS)),
            timeout: Duration::from_millis(s.timeout_ms.clamp(1, HOUR_MS)),
            ..Default::default()
        }
    }
}

/// Parses a case id as the app shows it (`"12-345"`).
pub(crate) fn case_id(id: &str) -> Result<CaseId> {
    id.trim()
        .parse()
        .map_err(|why| GuichetError::InvalidInput(format!("'{id}' is not a case id: {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_value_round_trips_through_the_core() {
        let values = [
            FieldValue::Service {
                value: "etat-civil".into(),
            },
            FieldValue::RequesterPhone {
                value: "+221771234567".into(),
            },
            FieldValue::RequesterName {
                value: "Ndèye".into(),
            },
            FieldValue::RequesterLanguage { value: "wo".into() },
            FieldValue::Locality {
                value: "Touba".into(),
            },
            FieldValue::Mediator { value: None },
            FieldValue::Mediator {
                value: Some("imam".into()),
            },
            FieldValue::Unit { value: "u1".into() },
            FieldValue::Assignee {
                value: Some("a7".into()),
            },
            FieldValue::Priority {
                value: Priority::Urgent,
            },
            FieldValue::Description {
                value: String::new(),
            },
            FieldValue::Status {
                value: CaseStatus::WaitingForCitizen,
            },
            FieldValue::Rating { value: Some(4) },
            FieldValue::Rating { value: None },
        ];
        for value in values {
            let (field, core_value) = value.to_core();
            assert_eq!(FieldValue::from_core(field, &core_value).unwrap(), value);
        }
        for field in Field::ALL {
            assert_eq!(Field::from(CaseField::from(*field)), *field);
        }
        assert!(FieldValue::from_core(Field::Status, &Value::Int(99)).is_err());
        assert!(FieldValue::from_core(Field::Rating, &Value::Int(1000)).is_err());
        assert!(FieldValue::from_core(Field::Locality, &Value::Null).is_err());
    }

    #[test]
    fn case_ids_and_queries_convert_without_panicking() {
        assert!(case_id("12-345").is_ok());
        for bad in [
            "",
            "12",
            "a-b",
            "0-1",
            "-1-2",
            "99999999999-1",
            "1-99999999999999",
        ] {
            assert!(
                matches!(case_id(bad), Err(GuichetError::InvalidInput(_))),
                "{bad}"
            );
        }
        let query: core::CaseQuery = CaseQuery {
            changed_after_ms: Some(u64::MAX),
            ..CaseQuery::default()
        }
        .into();
        assert!(query.changed_after.is_some());
        let options = core::sync::client::ClientOptions::from(&SyncSettings {
            max_attempts: 0,
            first_backoff_ms: u64::MAX,
            max_backoff_ms: 0,
            timeout_ms: u64::MAX,
        });
        assert_eq!(options.max_attempts, 1);
        assert!(options.max_backoff >= options.first_backoff);
    }
}
