-- The current schema, created at once on a new store. Must equal v1.sql plus every upgrade (tested).
CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE replicas(replica INTEGER PRIMARY KEY, counter INTEGER NOT NULL);
CREATE TABLE ops(seq INTEGER PRIMARY KEY, replica INTEGER NOT NULL, counter INTEGER NOT NULL, case_id INTEGER NOT NULL, stamp INTEGER NOT NULL, body BLOB NOT NULL);
CREATE UNIQUE INDEX ops_dot ON ops(replica, counter);
CREATE INDEX ops_case ON ops(case_id);
CREATE TABLE cases(case_id INTEGER PRIMARY KEY, reference TEXT NOT NULL UNIQUE, service TEXT NOT NULL, requester_phone TEXT NOT NULL, requester_name TEXT NOT NULL, requester_language TEXT NOT NULL, locality TEXT NOT NULL, channel INTEGER NOT NULL, mediator TEXT, unit TEXT NOT NULL, assignee TEXT, priority INTEGER NOT NULL, description TEXT NOT NULL, status INTEGER NOT NULL, rating INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, heads BLOB, needs_attention INTEGER NOT NULL DEFAULT 0);
CREATE INDEX cases_unit_status ON cases(unit, status);
CREATE INDEX cases_unit_assignee ON cases(unit, assignee);
CREATE INDEX cases_unit_locality ON cases(unit, locality);
CREATE INDEX cases_unit_updated ON cases(unit, updated_at);
CREATE INDEX cases_phone ON cases(requester_phone);
CREATE INDEX cases_attention ON cases(unit) WHERE needs_attention;
CREATE VIRTUAL TABLE cases_fts USING fts5(requester_name, locality, description, content='cases', content_rowid='case_id', tokenize='unicode61 remove_diacritics 2');
-- cases_fts is kept up to date by the writer, once per transaction: FTS5
-- flushes on every statement savepoint, so per-row triggers cost 30% of a sync.
CREATE TABLE sync_state(peer TEXT PRIMARY KEY, server_id INTEGER, last_attempt INTEGER, last_success INTEGER, last_error TEXT, acked INTEGER NOT NULL DEFAULT 0, cursor INTEGER NOT NULL DEFAULT 0, sent INTEGER NOT NULL DEFAULT 0, received INTEGER NOT NULL DEFAULT 0, quarantined INTEGER NOT NULL DEFAULT 0, scope_hash INTEGER, scope_after INTEGER) WITHOUT ROWID;
CREATE TABLE peer_cases(peer INTEGER NOT NULL, case_id INTEGER NOT NULL, in_scope INTEGER NOT NULL, changed_at INTEGER NOT NULL, sealed INTEGER, PRIMARY KEY(peer, case_id)) WITHOUT ROWID;
CREATE TABLE leaving_cases(case_id INTEGER PRIMARY KEY);
CREATE TABLE quarantine(id INTEGER PRIMARY KEY, device INTEGER NOT NULL, replica INTEGER NOT NULL, counter INTEGER NOT NULL, case_id INTEGER NOT NULL, stamp INTEGER NOT NULL, body BLOB NOT NULL, reason TEXT NOT NULL, received_at INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'held', resolved_by TEXT, resolved_at INTEGER, UNIQUE(replica, counter));
CREATE INDEX quarantine_held ON quarantine(device) WHERE state = 'held';
CREATE TABLE refused_ops(peer TEXT NOT NULL, replica INTEGER NOT NULL, counter INTEGER NOT NULL, case_id INTEGER NOT NULL, reason TEXT NOT NULL, PRIMARY KEY(peer, replica, counter)) WITHOUT ROWID;
CREATE TABLE peer_scopes(peer INTEGER PRIMARY KEY, scope TEXT NOT NULL, taking TEXT);
