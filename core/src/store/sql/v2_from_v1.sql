-- Version 2: what each sync with a peer achieved, so that a failed sync is
-- never silent.
CREATE TABLE sync_state(peer TEXT PRIMARY KEY, last_attempt INTEGER, last_success INTEGER, last_error TEXT, acked INTEGER NOT NULL DEFAULT 0, sent INTEGER NOT NULL DEFAULT 0, received INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
