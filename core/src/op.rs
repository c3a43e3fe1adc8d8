//! Operations: every change to a case is one immutable operation, named by
//! its dot, stamped by the author's clock, and stored forever.

use crate::error::BatchError;
use crate::hlc::Stamp;
use crate::ids::{valid_dot, CaseId, Dot};
use crate::model::{check_event_text, Channel, EventKind, Field, Status, Value};
use crate::reference;
use serde::{Deserialize, Serialize};

/// Version of the operation model below. Bumped when a variant or field is
/// added; a replica refuses operations of a schema it does not know.
pub const OP_SCHEMA: u16 = 2;

/// How many prior writes one field write may supersede. Each is a value in
/// conflict someone saw, so a handful is already a lot.
const MAX_SUPERSEDES: usize = 64;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub dot: Dot,
    pub stamp: Stamp,
    pub case: CaseId,
    pub body: OpBody,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OpBody {
    /// Opens a case; `case` is this operation's own dot. Carries the initial
    /// value of every field.
    Create {
        reference: String,
        channel: Channel,
        fields: Vec<(Field, Value)>,
    },
    /// Writes one or more fields, as one save.
    Update(Vec<FieldWrite>),
    /// Adds an event to the case's timeline.
    Event { kind: EventKind, text: String },
}

impl OpBody {
    /// What kind of operation this is, in a word (for lists and logs).
    pub fn kind(&self) -> &'static str {
        match self {
            OpBody::Create { .. } => "create",
            OpBody::Update(_) => "update",
            OpBody::Event { .. } => "event",
        }
    }
}

/// A new value for a field, and the writes of that field its author had on
/// screen when writing it: those it supersedes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldWrite {
    pub field: Field,
    pub value: Value,
    pub supersedes: Vec<Dot>,
}

impl Op {
    /// Structural checks that need nothing but the operation itself.
    pub fn check(&self) -> Result<(), BatchError> {
        let dot = self.dot;
        let invalid = |why: &str| Err(BatchError::invalid(dot, why));
        if !valid_dot(dot) {
            return invalid("dot out of range");
        }
        match &self.body {
            OpBody::Create {
                reference, fields, ..
            } => {
                if CaseId::from_dot(dot) != Some(self.case) {
                    return invalid("a case is named by the dot that creates it");
                }
                match reference::parse(reference) {
                    Ok(r) if r == *reference && reference::issuer(&r) == Some(dot.actor) => {}
                    _ => return invalid("the reference is not one this replica may issue"),
                }
                if fields.len() != Field::ALL.len()
                    || Field::ALL
                        .iter()
                        .any(|f| !fields.iter().any(|(g, _)| g == f))
                {
                    return invalid("a new case sets every field once");
                }
                for (field, value) in fields {
                    field.check(value).or_else(|e| invalid(&e.to_string()))?;
                }
            }
            OpBody::Update(writes) => {
                if self.case.dot().actor == dot.actor && self.case.dot().counter >= dot.counter {
                    return invalid("an update comes after the case's creation");
                }
                if writes.is_empty() {
                    return invalid("an update writes at least one field");
                }
                for (i, write) in writes.iter().enumerate() {
                    if writes[..i].iter().any(|w| w.field == write.field) {
                        return invalid("a field is written twice");
                    }
                    write
                        .field
                        .check(&write.value)
                        .or_else(|e| invalid(&e.to_string()))?;
                    if write.supersedes.is_empty() || write.supersedes.len() > MAX_SUPERSEDES {
                        return invalid("a write supersedes between 1 and 64 writes");
                    }
                    if write.supersedes.iter().any(|d| !valid_dot(*d) || *d == dot) {
                        return invalid("a write supersedes an invalid dot");
                    }
                }
            }
            OpBody::Event { text, .. } => {
                if self.case.dot().actor == dot.actor && self.case.dot().counter >= dot.counter {
                    return invalid("an event comes after the case's creation");
                }
                check_event_text(text).or_else(|e| invalid(&e.to_string()))?;
            }
        }
        Ok(())
    }

    /// The dots this operation cannot be applied without.
    pub fn dependencies(&self) -> impl Iterator<Item = Dot> + '_ {
        let creation = match self.body {
            OpBody::Create { .. } => None,
            _ => Some(self.case.dot()),
        };
        let superseded = match &self.body {
            OpBody::Update(writes) => writes.as_slice(),
            _ => &[],
        };
        creation
            .into_iter()
            .chain(superseded.iter().flat_map(|w| w.supersedes.iter().copied()))
    }

    /// The value this operation gave `field`, if it wrote it.
    pub fn value_of(&self, field: Field) -> Option<&Value> {
        match &self.body {
            OpBody::Create { fields, .. } => {
                fields.iter().find(|(f, _)| *f == field).map(|(_, v)| v)
            }
            OpBody::Update(writes) => writes.iter().find(|w| w.field == field).map(|w| &w.value),
            OpBody::Event { .. } => None,
        }
    }

    pub(crate) fn status_written(&self) -> Option<Status> {
        self.value_of(Field::Status)
            .and_then(Value::as_int)
            .and_then(Status::from_code)
    }
}
