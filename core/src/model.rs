//! The case model: what a citizen's request is made of, and the workflow
//! its status follows.

use crate::hlc::Stamp;
use crate::ids::{CaseId, ReplicaId};
use crate::Error;
use serde::{Deserialize, Serialize};

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:literal, $text:literal;)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $variant = $code,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The small integer stored in SQLite and on the wire.
            pub fn code(self) -> u8 { self as u8 }

            pub fn from_code(code: i64) -> Option<$name> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }

            /// The stable name used in APIs and configuration.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                match s {
                    $($text => Ok($name::$variant),)*
                    _ => Err(Error::InvalidInput(format!(
                        "unknown {} '{}'", stringify!($name), s))),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u8(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let code = u8::deserialize(d)?;
                $name::from_code(code as i64).ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown {} {}", stringify!($name), code))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

code_enum!(
    /// Where a case stands in the workflow.
    Status {
        Received = 0, "received";
        Assigned = 1, "assigned";
        InProgress = 2, "in_progress";
        WaitingForCitizen = 3, "waiting_for_citizen";
        Resolved = 4, "resolved";
        Closed = 5, "closed";
        Cancelled = 6, "cancelled";
    }
);

impl Status {
    /// The workflow. Reopening goes back to work (resolved or closed) or
    /// back to the queue (cancelled).
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (
                Received,
                Assigned | InProgress | WaitingForCitizen | Resolved | Cancelled
            ) | (
                Assigned,
                Received | InProgress | WaitingForCitizen | Resolved | Cancelled
            ) | (
                InProgress,
                Assigned | WaitingForCitizen | Resolved | Cancelled
            ) | (WaitingForCitizen, InProgress | Resolved | Cancelled)
                | (Resolved, Closed | InProgress)
                | (Closed, InProgress)
                | (Cancelled, Received)
        )
    }

    /// Statuses in which the citizen may rate the service.
    pub fn is_done(self) -> bool {
        matches!(self, Status::Resolved | Status::Closed)
    }

    /// Statuses a new case may start in.
    pub fn can_start_in(self) -> bool {
        matches!(
            self,
            Status::Received | Status::Assigned | Status::InProgress
        )
    }
}

code_enum!(
    /// How the request reached the service.
    Channel {
        Field = 0, "field";
        Ussd = 1, "ussd";
        Sms = 2, "sms";
        Mediator = 3, "mediator";
    }
);

code_enum!(
    Priority {
        Low = 0, "low";
        Normal = 1, "normal";
        Urgent = 2, "urgent";
    }
);

code_enum!(
    /// What a timeline event records.
    EventKind {
        Note = 0, "note";
        /// The citizen contacted the service (or was contacted) about the case.
        Contact = 1, "contact";
        Visit = 2, "visit";
        /// A complaint about the service, counted by supervisors.
        Complaint = 3, "complaint";
        /// The requester, or their mediator, asked about the case (tracked it
        /// by USSD or SMS): a repeat contact, counted by supervisors.
        Inquiry = 4, "inquiry";
    }
);

code_enum!(
    /// The fields of a case that can change after creation; each merges on
    /// its own (see `merge`).
    Field {
        Service = 0, "service";
        RequesterPhone = 1, "requester_phone";
        RequesterName = 2, "requester_name";
        RequesterLanguage = 3, "requester_language";
        Locality = 4, "locality";
        Mediator = 5, "mediator";
        Unit = 6, "unit";
        Assignee = 7, "assignee";
        Priority = 8, "priority";
        Description = 9, "description";
        Status = 10, "status";
        Rating = 11, "rating";
    }
);

/// A field's value. Enumerations travel as their code.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Value {
    Null,
    Text(String),
    Int(i64),
}

impl Value {
    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }

    pub fn opt_text(s: Option<impl Into<String>>) -> Value {
        s.map_or(Value::Null, |s| Value::Text(s.into()))
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// Longest accepted text per field, in bytes.
const MAX_SHORT_TEXT: usize = 200;
const MAX_LONG_TEXT: usize = 8_000;

impl Field {
    /// Whether `value` is acceptable for this field. Applies to local writes
    /// and to every operation received from a peer.
    pub fn check(self, value: &Value) -> Result<(), Error> {
        let bad = |why: &str| Err(Error::InvalidInput(format!("{self}: {why}")));
        match (self, value) {
            (Field::Mediator | Field::Assignee | Field::Rating, Value::Null) => Ok(()),
            (Field::RequesterPhone, Value::Text(p)) => check_phone(p),
            (Field::RequesterLanguage, Value::Text(l)) => {
                if (2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_lowercase()) {
                    Ok(())
                } else {
                    bad("a language is a 2 or 3 letter code such as wo or fr")
                }
            }
            (Field::Description, Value::Text(t)) if t.len() > MAX_LONG_TEXT => bad("too long"),
            (Field::Description, Value::Text(_)) => Ok(()),
            (Field::RequesterName, Value::Text(_)) => check_short(self, value),
            (
                Field::Service | Field::Locality | Field::Unit | Field::Mediator | Field::Assignee,
                Value::Text(t),
            ) => {
                if t.trim().is_empty() {
                    bad("must not be empty")
                } else {
                    check_short(self, value)
                }
            }
            (Field::Priority, Value::Int(p)) if Priority::from_code(*p).is_some() => Ok(()),
            (Field::Status, Value::Int(s)) if Status::from_code(*s).is_some() => Ok(()),
            (Field::Rating, Value::Int(r)) if (1..=5).contains(r) => Ok(()),
            (Field::Rating, Value::Int(_)) => bad("a rating is 1 to 5"),
            _ => bad("wrong kind of value"),
        }
    }
}

fn check_short(field: Field, value: &Value) -> Result<(), Error> {
    match value {
        Value::Text(t) if t.len() > MAX_SHORT_TEXT => {
            Err(Error::InvalidInput(format!("{field}: too long")))
        }
        _ => Ok(()),
    }
}

/// E.164: a plus sign and 8 to 15 digits.
pub fn check_phone(phone: &str) -> Result<(), Error> {
    let digits = phone.strip_prefix('+').unwrap_or("");
    if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::InvalidInput(
            "a phone number is in E.164 form, such as +221771234567".into(),
        ))
    }
}

/// Checks the text of a timeline event.
pub fn check_event_text(text: &str) -> Result<(), Error> {
    if text.len() > MAX_LONG_TEXT {
        Err(Error::InvalidInput("event text too long".into()))
    } else {
        Ok(())
    }
}

/// What an agent, the gateway or a mediator fills in to open a case.
#[derive(Clone, Debug, PartialEq)]
pub struct NewCase {
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
    pub status: Status,
}

impl NewCase {
    /// The initial value of every mergeable field.
    pub(crate) fn fields(&self) -> Vec<(Field, Value)> {
        vec![
            (Field::Service, Value::text(&self.service)),
            (Field::RequesterPhone, Value::text(&self.requester_phone)),
            (Field::RequesterName, Value::text(&self.requester_name)),
            (
                Field::RequesterLanguage,
                Value::text(&self.requester_language),
            ),
            (Field::Locality, Value::text(&self.locality)),
            (Field::Mediator, Value::opt_text(self.mediator.as_ref())),
            (Field::Unit, Value::text(&self.unit)),
            (Field::Assignee, Value::opt_text(self.assignee.as_ref())),
            (Field::Priority, Value::Int(self.priority.code() as i64)),
            (Field::Description, Value::text(&self.description)),
            (Field::Status, Value::Int(self.status.code() as i64)),
            (Field::Rating, Value::Null),
        ]
    }
}

/// A case as it stands now: for every field, the winning value.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub id: CaseId,
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
    pub status: Status,
    pub rating: Option<u8>,
    /// Stamp of the creating operation.
    pub created_at: Stamp,
    /// Stamp of the latest operation on the case.
    pub updated_at: Stamp,
    /// Some field has concurrent values, or the status took a transition
    /// the workflow does not allow: someone should look.
    pub needs_attention: bool,
}

/// One value of a field in conflict.
#[derive(Clone, Debug, PartialEq)]
pub struct ConflictValue {
    pub value: Value,
    pub author: ReplicaId,
    pub stamp: Stamp,
}

/// A field whose concurrent writes have not been reconciled yet. The first
/// value is the one shown (the winner).
#[derive(Clone, Debug, PartialEq)]
pub struct FieldConflict {
    pub field: Field,
    pub values: Vec<ConflictValue>,
}

/// One immutable entry of a case's history.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineEntry {
    pub author: ReplicaId,
    pub counter: u64,
    pub stamp: Stamp,
    pub what: TimelineWhat,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TimelineWhat {
    Created,
    Changed(Vec<(Field, Value)>),
    Event { kind: EventKind, text: String },
}

/// A status transition the workflow forbids, which appeared by merging
/// concurrent writes (or came from a faulty peer). Shown, never hidden.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusAnomaly {
    pub from: Vec<Status>,
    pub to: Status,
    pub author: ReplicaId,
}

/// Everything a tablet shows on a case's page.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseDetail {
    pub case: Case,
    pub conflicts: Vec<FieldConflict>,
    pub status_anomalies: Vec<StatusAnomaly>,
    pub timeline: Vec<TimelineEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_allows_the_usual_path_and_reopening_only() {
        use Status::*;
        let path = [
            Received,
            Assigned,
            InProgress,
            WaitingForCitizen,
            Resolved,
            Closed,
        ];
        for pair in path.windows(2) {
            assert!(pair[0].can_become(pair[1]), "{:?}", pair);
        }
        assert!(Closed.can_become(InProgress));
        assert!(Cancelled.can_become(Received));
        assert!(!Received.can_become(Closed));
        assert!(!Closed.can_become(Cancelled));
        for s in Status::ALL {
            assert!(!s.can_become(*s));
        }
    }

    #[test]
    fn field_values_are_checked() {
        assert!(Field::RequesterPhone
            .check(&Value::text("+221771234567"))
            .is_ok());
        assert!(Field::RequesterPhone
            .check(&Value::text("771234567"))
            .is_err());
        assert!(Field::Rating.check(&Value::Int(6)).is_err());
        assert!(Field::Status.check(&Value::Int(9)).is_err());
        assert!(Field::Unit.check(&Value::Null).is_err());
        assert!(Field::Assignee.check(&Value::Null).is_ok());
        assert!(Field::Description
            .check(&Value::text("x".repeat(9000)))
            .is_err());
    }
}
