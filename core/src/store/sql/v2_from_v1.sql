-- Version 2: sync bookkeeping.
-- What each sync with a peer achieved, so that a failed sync is never silent,
-- and the peer's position (cursor) for scoped, resumable exchanges.
CREATE TABLE sync_state(peer TEXT PRIMARY KEY, server_id INTEGER, last_attempt INTEGER, last_success INTEGER, last_error TEXT, acked INTEGER NOT NULL DEFAULT 0, cursor INTEGER NOT NULL DEFAULT 0, sent INTEGER NOT NULL DEFAULT 0, received INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
-- Server side: which cases each device holds (sent_at: the cursor of the
-- response that gave it the case's history; in_scope 0 once told it left).
CREATE TABLE peer_cases(peer INTEGER NOT NULL, case_id INTEGER NOT NULL, in_scope INTEGER NOT NULL, changed_at INTEGER NOT NULL, PRIMARY KEY(peer, case_id)) WITHOUT ROWID;
-- Device side: cases that left this device's scope, removed once the
-- device's own edits to them have reached the server.
CREATE TABLE leaving_cases(case_id INTEGER PRIMARY KEY);
