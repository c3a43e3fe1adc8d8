//! What a tablet asks of its store: cases by unit and status, assignee,
//! locality, recent changes, reference, phone, and text search.

use super::writer::{load_op, op_value, value_from_sql, CaseRow, FIELD_COLUMNS};
use super::Store;
use crate::error::{Error, Result};
use crate::hlc::Stamp;
use crate::ids::CaseId;
use crate::merge::Head;
use crate::model::{
    Case, CaseDetail, Channel, ConflictValue, Field, FieldConflict, Priority, Status,
    StatusAnomaly, TimelineEntry, TimelineWhat, Value,
};
use crate::op::OpBody;
use crate::reference;
use rusqlite::types::ToSql;
use rusqlite::{params, OptionalExtension, Row};

/// A case that operations touched, as `Store::cases_touched_since` lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Touched {
    pub id: CaseId,
    /// The store's position of the latest operation on the case.
    pub position: u64,
    /// Its status now; None if the case is not materialised (purged).
    pub status: Option<Status>,
}

/// A filter over the cases of a store; every set criterion must hold.
/// Results come most recently changed first.
#[derive(Clone, Debug, Default)]
pub struct CaseQuery {
    pub unit: Option<String>,
    pub status: Option<Status>,
    pub assignee: Option<String>,
    pub locality: Option<String>,
    pub requester_phone: Option<String>,
    /// Words to find in the requester's name, the locality or the
    /// description, ignoring case and accents; a word may be a prefix.
    pub text: Option<String>,
    /// Only cases changed after this stamp.
    pub changed_after: Option<Stamp>,
    /// Only cases with a conflict or a status anomaly.
    pub needs_attention: bool,
    pub limit: u32,
    pub offset: u32,
}

const CASE_COLUMNS: &str = "case_id, reference, channel, created_at, updated_at, needs_attention";

impl Store {
    /// One case with its conflicts, status anomalies and timeline.
    pub fn get_case(&self, id: CaseId) -> Result<CaseDetail> {
        let row =
            CaseRow::load(self.conn(), id)?.ok_or_else(|| Error::NotFound(format!("case {id}")))?;
        let case = self.case_by_id(id)?;
        let mut conflicts = Vec::new();
        for (field, heads) in row.heads.conflicts() {
            let mut values = Vec::with_capacity(heads.len());
            for head in heads {
                values.push(self.conflict_value(field, head)?);
            }
            conflicts.push(FieldConflict { field, values });
        }
        let mut status_anomalies = Vec::new();
        for dot in row.heads.anomalies() {
            let Some(op) = load_op(self.conn(), *dot)? else {
                continue;
            };
            let (Some(to), OpBody::Update(writes)) = (op.status_written(), &op.body) else {
                continue;
            };
            let mut from = Vec::new();
            for write in writes.iter().filter(|w| w.field == Field::Status) {
                for superseded in &write.supersedes {
                    if let Value::Int(code) = op_value(self.conn(), *superseded, Field::Status)? {
                        from.extend(Status::from_code(code));
                    }
                }
            }
            status_anomalies.push(StatusAnomaly {
                from,
                to,
                author: dot.actor,
            });
        }
        Ok(CaseDetail {
            case,
            conflicts,
            status_anomalies,
            timeline: self.timeline(id)?,
        })
    }

    /// The case a citizen's typed reference names. A typo is refused by the
    /// check digit before anything is looked up.
    pub fn find_by_reference(&self, typed: &str) -> Result<Case> {
        let reference = reference::parse(typed)?;
        let id: Option<i64> = self
            .conn()
            .prepare_cached("SELECT case_id FROM cases WHERE reference = ?1")?
            .query_row([&reference], |r| r.get(0))
            .optional()?;
        let id = id
            .and_then(CaseId::from_i64)
            .ok_or_else(|| Error::NotFound(format!("reference {reference}")))?;
        self.case_by_id(id)
    }

    /// Cases matching `query`, most recently changed first.
    pub fn list_cases(&self, query: &CaseQuery) -> Result<Vec<Case>> {
        let mut sql = format!("SELECT {CASE_COLUMNS}, {FIELD_COLUMNS} FROM cases WHERE 1");
        let mut args: Vec<Box<dyn ToSql>> = Vec::new();
        let mut filter = |sql: &mut String, clause: &str, arg: Box<dyn ToSql>| {
            args.push(arg);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(unit) = &query.unit {
            filter(&mut sql, " AND unit = ?", Box::new(unit.clone()));
        }
        if let Some(status) = query.status {
            filter(&mut sql, " AND status = ?", Box::new(status.code()));
        }
        if let Some(assignee) = &query.assignee {
            filter(&mut sql, " AND assignee = ?", Box::new(assignee.clone()));
        }
        if let Some(locality) = &query.locality {
            filter(&mut sql, " AND locality = ?", Box::new(locality.clone()));
        }
        if let Some(phone) = &query.requester_phone {
            filter(
                &mut sql,
                " AND requester_phone = ?",
                Box::new(phone.clone()),
            );
        }
        if let Some(after) = query.changed_after {
            filter(&mut sql, " AND updated_at > ?", Box::new(after.0 as i64));
        }
        if let Some(text) = query.text.as_deref() {
            if !self.state.text_index {
                return Err(Error::InvalidInput(
                    "this replica keeps no text index to search".into(),
                ));
            }
            let Some(fts) = fts_query(text) else {
                return Ok(Vec::new());
            };
            filter(
                &mut sql,
                " AND case_id IN (SELECT rowid FROM cases_fts WHERE cases_fts MATCH ?)",
                Box::new(fts),
            );
        }
        if query.needs_attention {
            sql.push_str(" AND needs_attention");
        }
        let limit = if query.limit == 0 {
            50
        } else {
            query.limit.min(1_000)
        };
        sql.push_str(&format!(
            " ORDER BY updated_at DESC, case_id DESC LIMIT {limit} OFFSET {}",
            query.offset
        ));
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
        let rows = stmt.query_map(params.as_slice(), case_from_row)?;
        rows.map(|r| r?).collect()
    }

    /// One case as it stands (without conflicts or timeline).
    pub fn case(&self, id: CaseId) -> Result<Case> {
        self.case_by_id(id)
    }

    /// The cases touched by operations that arrived in this store after
    /// `position` (its own arrival order, not the authors' clocks: an edit
    /// made offline long ago still counts when it arrives), each with the
    /// position of its latest operation, in that order: pass the last one
    /// next time.
    pub fn cases_touched_since(&self, position: u64) -> Result<Vec<Touched>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT t.case_id, t.latest, c.status
             FROM (SELECT case_id, max(seq) AS latest FROM ops WHERE seq > ?1 GROUP BY case_id) t
             LEFT JOIN cases c ON c.case_id = t.case_id
             ORDER BY t.latest",
        )?;
        let rows = stmt.query_map([position as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })?;
        let mut touched = Vec::new();
        for row in rows {
            let (id, seq, status) = row?;
            if let Some(id) = CaseId::from_i64(id) {
                touched.push(Touched {
                    id,
                    position: seq as u64,
                    status: status.and_then(Status::from_code),
                });
            }
        }
        Ok(touched)
    }

    /// The id of every case the store holds, in id order.
    pub fn case_ids(&self) -> Result<Vec<CaseId>> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT case_id FROM cases ORDER BY case_id")?;
        let ids = stmt.query_map([], |r| r.get::<_, i64>(0))?;
        let mut out = Vec::new();
        for id in ids {
            let raw = id?;
            out.push(
                CaseId::from_i64(raw).ok_or_else(|| Error::Damaged(format!("case id {raw}")))?,
            );
        }
        Ok(out)
    }

    /// How many cases the store holds.
    pub fn count_cases(&self) -> Result<u64> {
        Ok(self
            .conn()
            .query_row("SELECT count(*) FROM cases", [], |r| r.get::<_, i64>(0))? as u64)
    }

    fn case_by_id(&self, id: CaseId) -> Result<Case> {
        let sql = format!("SELECT {CASE_COLUMNS}, {FIELD_COLUMNS} FROM cases WHERE case_id = ?1");
        self.conn()
            .prepare_cached(&sql)?
            .query_row([id.as_i64()], case_from_row)
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("case {id}")))?
    }

    fn conflict_value(&self, field: Field, head: &Head) -> Result<ConflictValue> {
        Ok(ConflictValue {
            value: op_value(self.conn(), head.dot, field)?,
            author: head.dot.actor,
            stamp: head.stamp,
        })
    }

    /// Every operation on the case, in stamp order.
    fn timeline(&self, id: CaseId) -> Result<Vec<TimelineEntry>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT replica, counter, case_id, stamp, body FROM ops WHERE case_id = ?1
             ORDER BY stamp, replica, counter",
        )?;
        let mut rows = stmt.query(params![id.as_i64()])?;
        let mut timeline = Vec::new();
        while let Some(r) = rows.next()? {
            let body: Vec<u8> = r.get(4)?;
            let op = super::writer::op_from_row(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, &body)?;
            let what = match op.body {
                OpBody::Create { .. } => TimelineWhat::Created,
                OpBody::Update(writes) => {
                    TimelineWhat::Changed(writes.into_iter().map(|w| (w.field, w.value)).collect())
                }
                OpBody::Event { kind, text } => TimelineWhat::Event { kind, text },
            };
            timeline.push(TimelineEntry {
                author: op.dot.actor,
                counter: op.dot.counter,
                stamp: op.stamp,
                what,
            });
        }
        Ok(timeline)
    }
}

/// Builds a safe FTS5 query from what a user typed: every word must match,
/// as a prefix. Quoting each word keeps FTS syntax out of user input.
fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

fn case_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Case>> {
    let id: i64 = r.get(0)?;
    let mut values = Vec::with_capacity(Field::ALL.len());
    for i in 0..Field::ALL.len() {
        values.push(value_from_sql(r.get_ref(6 + i)?));
    }
    let channel: i64 = r.get(2)?;
    let (reference, created, updated, attention): (String, i64, i64, bool) =
        (r.get(1)?, r.get(3)?, r.get(4)?, r.get(5)?);
    Ok(build_case(
        id, reference, channel, created, updated, attention, values,
    ))
}

fn build_case(
    id: i64,
    reference: String,
    channel: i64,
    created: i64,
    updated: i64,
    needs_attention: bool,
    values: Vec<Value>,
) -> Result<Case> {
    let damaged = |why: &str| Error::Damaged(format!("case row {id}: {why}"));
    let id = CaseId::from_i64(id).ok_or_else(|| damaged("bad id"))?;
    let text = |f: Field| {
        values[f.code() as usize]
            .as_text()
            .unwrap_or_default()
            .to_string()
    };
    let opt_text = |f: Field| values[f.code() as usize].as_text().map(str::to_string);
    let int = |f: Field| values[f.code() as usize].as_int();
    Ok(Case {
        id,
        reference,
        service: text(Field::Service),
        requester_phone: text(Field::RequesterPhone),
        requester_name: text(Field::RequesterName),
        requester_language: text(Field::RequesterLanguage),
        locality: text(Field::Locality),
        channel: Channel::from_code(channel).ok_or_else(|| damaged("unknown channel"))?,
        mediator: opt_text(Field::Mediator),
        unit: text(Field::Unit),
        assignee: opt_text(Field::Assignee),
        priority: int(Field::Priority)
            .and_then(Priority::from_code)
            .ok_or_else(|| damaged("unknown priority"))?,
        description: text(Field::Description),
        status: int(Field::Status)
            .and_then(Status::from_code)
            .ok_or_else(|| damaged("unknown status"))?,
        rating: int(Field::Rating).map(|r| r as u8),
        created_at: Stamp(created as u64),
        updated_at: Stamp(updated as u64),
        needs_attention,
    })
}
