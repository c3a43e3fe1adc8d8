-- Version 3: quarantine, and scope changes that never stall a device.
-- Server side: operations a device sent that the server keeps but did not
-- apply (outside the device's scope, or impossible to apply). Counted as
-- received so that the device moves past them; never deleted. A supervisor
-- releases one (it is then applied) or acknowledges it (it stays unapplied).
CREATE TABLE quarantine(id INTEGER PRIMARY KEY, device INTEGER NOT NULL, replica INTEGER NOT NULL, counter INTEGER NOT NULL, case_id INTEGER NOT NULL, stamp INTEGER NOT NULL, body BLOB NOT NULL, reason TEXT NOT NULL, received_at INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'held', resolved_by TEXT, resolved_at INTEGER, UNIQUE(replica, counter));
CREATE INDEX quarantine_held ON quarantine(device) WHERE state = 'held';
-- Server side: the device's own counter when it first showed (by its
-- cursor) that it had been told a case left its scope; its later writes to
-- that case are outside its scope.
ALTER TABLE peer_cases ADD COLUMN sealed INTEGER;
-- Server side: the case came back to the device after it was told to drop
-- it: the device's own operations on it are sent back too (it may have
-- dropped them with the case).
ALTER TABLE peer_cases ADD COLUMN returned INTEGER NOT NULL DEFAULT 0;
-- Device side: its operations the server holds in quarantine, how many
-- and the last ones listed, as the server last said.
ALTER TABLE sync_state ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;
-- Device side: the scope token of the last answer applied (see
-- protocol::ScopeToken): the scope's hash, and the last case handed over
-- (NULL once complete).
ALTER TABLE sync_state ADD COLUMN scope_hash INTEGER;
ALTER TABLE sync_state ADD COLUMN scope_after INTEGER;
CREATE TABLE refused_ops(peer TEXT NOT NULL, replica INTEGER NOT NULL, counter INTEGER NOT NULL, case_id INTEGER NOT NULL, reason TEXT NOT NULL, PRIMARY KEY(peer, replica, counter)) WITHOUT ROWID;
-- Server side: the units each device is known to hold every case of. When
-- the device's units change, the server hands over and withdraws cases
-- until the device confirms (it echoes a complete scope token); meanwhile
-- `scope` is the units it kept all along and `taking` the scope it is
-- taking.
CREATE TABLE peer_scopes(peer INTEGER PRIMARY KEY, scope TEXT NOT NULL, taking TEXT);
