"""Two tablets through a real sync server, through the generated Python
bindings (run by mobile-bindings/tests/foreign.rs, which provides):

  PYTHONPATH           the generated guichet_mobile.py, beside the library
  GUICHET_SERVER_URL   the running guichet-sync-server
  GUICHET_SERVER_BIN   its binary, for the administrator's `enrol`/`revoke`
  GUICHET_SERVER_DATA  its data directory
  GUICHET_TEST_DIR     an empty directory for the tablets' files
"""

import asyncio
import json
import os
import stat
import subprocess
import sys
import threading
import time

from guichet_mobile import (
    CaseDetail,
    CaseField,
    CaseQuery,
    CaseStatus,
    CaseStore,
    Channel,
    DeviceIdentity,
    EventKind,
    FieldValue,
    GuichetError,
    NewCase,
    Priority,
    SyncListener,
    SyncSettings,
    TimelineWhat,
    is_valid_reference,
    next_statuses,
)

URL = os.environ["GUICHET_SERVER_URL"]
SERVER_BIN = os.environ["GUICHET_SERVER_BIN"]
SERVER_DATA = os.environ["GUICHET_SERVER_DATA"]
WORK = os.environ["GUICHET_TEST_DIR"]
UNIT = f"unit-py-{os.getpid()}"
# Connection refused at once: nothing listens on port 1.
DEAD_URL = "http://127.0.0.1:1"


def step(message):
    print(f"ok - {message}", flush=True)


def admin(*args):
    out = subprocess.run(
        [SERVER_BIN, args[0], "--data-dir", SERVER_DATA, *args[1:]],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def enrol(identity, agent):
    """What the administrator does with the public key the tablet shows."""
    printed = admin(
        "enrol",
        "--public-key", identity.public_key(),
        "--agent", agent,
        "--role", "tablet",
        "--unit", UNIT,
    )
    return identity.enrol(printed, URL)


def raises(kind, call):
    try:
        call()
    except kind as e:
        return e
    except Exception as e:  # noqa: BLE001 - report what came instead
        raise AssertionError(f"expected {kind.__name__}, got {e!r}") from e
    raise AssertionError(f"expected {kind.__name__}, nothing was raised")


class Progress(SyncListener):
    def __init__(self):
        self.reports = []

    def on_progress(self, progress):
        self.reports.append(progress)


class Failing(SyncListener):
    def on_progress(self, progress):
        raise RuntimeError("a listener bug must not stop the sync")


class Meddling(SyncListener):
    """Reads and writes the store from inside the sync's callback, once."""

    def __init__(self, store, case_id):
        self.store, self.case_id, self.seen = store, case_id, []

    def on_progress(self, progress):
        if self.seen:
            return
        self.seen.append(self.store.get_case(self.case_id).case.id)
        self.store.add_event(self.case_id, EventKind.NOTE, "from the listener")
        self.seen.append("written")


def sync(store, listener=None):
    return asyncio.run(store.sync(listener))


def new_case(name, phone, description):
    return NewCase(
        service="etat-civil",
        requester_phone=phone,
        requester_name=name,
        requester_language="wo",
        locality="Diourbel",
        channel=Channel.FIELD,
        unit=UNIT,
        priority=Priority.NORMAL,
        status=CaseStatus.RECEIVED,
        description=description,
    )


def same_case(a: CaseDetail, b: CaseDetail):
    assert a.case == b.case, (a.case, b.case)
    assert a.conflicts == b.conflicts, (a.conflicts, b.conflicts)
    assert a.timeline == b.timeline


def main():
    started = time.time()

    # --- device identity and enrolment -----------------------------------
    dir_a, dir_b = os.path.join(WORK, "tablet-a"), os.path.join(WORK, "tablet-b")
    ida = DeviceIdentity.load_or_create(dir_a)
    idb = DeviceIdentity.load_or_create(dir_b)
    assert ida.public_key() != idb.public_key()
    key_file = os.path.join(dir_a, "device-key.pk8")
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600, oct(os.stat(key_file).st_mode)
    assert DeviceIdentity.load_or_create(dir_a).public_key() == ida.public_key()
    assert ida.enrolment() is None
    e = raises(GuichetError.InvalidInput, lambda: CaseStore.open(os.path.join(dir_a, "cases.db"), ida))
    assert "not enrolled" in str(e), e
    step("device keys made once, 0600, stable; an unenrolled device cannot open a store")

    ea, eb = enrol(ida, "agent-py-a"), enrol(idb, "agent-py-b")
    assert ea.replica != eb.replica and ea.units == [UNIT] and ea.role == "tablet"
    assert ea.server_url == URL
    assert DeviceIdentity.load_or_create(dir_a).enrolment() == ea
    raises(GuichetError.InvalidInput, lambda: ida.enrol("{not json", URL))
    raises(GuichetError.InvalidInput, lambda: ida.enrol(json.dumps({"replica": 9, "agent": "x", "role": "tablet"}), "ftp://x"))
    # The app keeping the key itself (Keystore / Keychain): same identity.
    kept = DeviceIdentity.from_private_key(ida.private_key(), ea)
    assert kept.public_key() == ida.public_key() and kept.enrolment() == ea
    raises(GuichetError.InvalidInput, lambda: DeviceIdentity.from_private_key(b"junk"))
    step(f"enrolled through the server's CLI: replicas {ea.replica} and {eb.replica}")

    a = CaseStore.open(os.path.join(dir_a, "cases.db"), ida)
    b = CaseStore.open(os.path.join(dir_b, "cases.db"), idb)
    assert a.replica() == ea.replica and a.server_url() == URL

    # --- offline work on A, sync, read back on B --------------------------
    c1 = a.create_case(new_case("Ndèye Fall", "+221771234501", "Extrait de naissance pour sa fille"))
    assert c1.id.startswith(f"{ea.replica}-"), c1.id
    assert is_valid_reference(c1.reference) and c1.status == CaseStatus.RECEIVED
    a.add_event(c1.id, EventKind.VISIT, "Visite au domicile")
    c1 = a.change_status(c1.id, CaseStatus.IN_PROGRESS)
    assert c1.status == CaseStatus.IN_PROGRESS
    assert a.find_by_reference(c1.reference).id == c1.id
    assert a.sync_status().pending_ops == 3 and a.sync_status().last_success_ms is None

    progress = Progress()
    done = sync(a, progress)
    assert done.ops_sent == 3, done
    assert progress.reports and progress.reports[-1].ops_sent == 3, progress.reports
    status = a.sync_status()
    assert status.last_success_ms and status.last_error is None and status.pending_ops == 0, status
    assert not status.syncing and status.server_url == URL
    got = sync(b)
    assert got.ops_received == 3, got
    same_case(a.get_case(c1.id), b.get_case(c1.id))
    kinds = [t.what for t in b.get_case(c1.id).timeline]
    assert isinstance(kinds[0], TimelineWhat.CREATED), kinds
    assert any(isinstance(k, TimelineWhat.EVENT) and k.kind == EventKind.VISIT for k in kinds), kinds
    step("a case made offline on A reaches B through the server, with its timeline")

    # --- concurrent offline edits, the same field on both -----------------
    a.update_case(c1.id, [FieldValue.LOCALITY("Touba"), FieldValue.ASSIGNEE("agent-py-a")])
    b.update_case(c1.id, [FieldValue.LOCALITY("Mbacké"), FieldValue.PRIORITY(Priority.URGENT)])
    b.add_event(c1.id, EventKind.NOTE, "La citoyenne rappellera")
    c2 = b.create_case(new_case("Moussa Diop", "+221771234502", "Certificat de résidence"))
    sync(a), sync(b), sync(a)
    da, db = a.get_case(c1.id), b.get_case(c1.id)
    same_case(da, db)
    assert da.case.assignee == "agent-py-a" and da.case.priority == Priority.URGENT
    assert da.case.needs_attention
    assert [c.field for c in da.conflicts] == [CaseField.LOCALITY], da.conflicts
    shown = {v.value.value for v in da.conflicts[0].values}
    assert shown == {"Touba", "Mbacké"}, shown
    assert da.case.locality == da.conflicts[0].values[0].value.value
    assert {v.author for v in da.conflicts[0].values} == {ea.replica, eb.replica}
    assert a.get_case(c2.id).case.requester_name == "Moussa Diop"
    for store in (a, b):
        flagged = store.list_cases(CaseQuery(needs_attention=True))
        assert [c.id for c in flagged] == [c1.id], flagged
    step("concurrent edits of one field converge on both tablets and show as a conflict")

    # --- resolve on B, gone everywhere ------------------------------------
    chosen = next(v.value for v in db.conflicts[0].values if v.value.value == "Mbacké")
    resolved = b.resolve_conflict(c1.id, chosen)
    assert resolved.conflicts == [] and resolved.case.locality == "Mbacké"
    assert not resolved.case.needs_attention
    sync(b), sync(a)
    for store in (a, b):
        d = store.get_case(c1.id)
        assert d.conflicts == [] and d.case.locality == "Mbacké" and not d.case.needs_attention, d
        assert store.list_cases(CaseQuery(needs_attention=True)) == []
    same_case(a.get_case(c1.id), b.get_case(c1.id))
    # Rewriting instead of choosing: a fresh value settles it too.
    a.update_case(c2.id, [FieldValue.DESCRIPTION("Certificat de résidence (Touba)")])
    b.update_case(c2.id, [FieldValue.DESCRIPTION("Certificat de résidence, urgent")])
    sync(a), sync(b), sync(a)
    assert [c.field for c in a.get_case(c2.id).conflicts] == [CaseField.DESCRIPTION]
    a.resolve_conflict(c2.id, FieldValue.DESCRIPTION("Certificat de résidence, Touba, urgent"))
    sync(a), sync(b)
    assert b.get_case(c2.id).conflicts == [] and b.get_case(c2.id).case.description.endswith("Touba, urgent")
    step("a conflict resolved on one tablet (chosen or rewritten) is gone on both after sync")

    # --- queries ----------------------------------------------------------
    for store in (a, b):
        assert store.count_cases() == 2
        assert [c.id for c in store.list_cases(CaseQuery(text="ndeye"))] == [c1.id]
        assert [c.id for c in store.list_cases(CaseQuery(text="RESID"))] == [c2.id]
        assert [c.id for c in store.list_cases(CaseQuery(phone="+221771234502"))] == [c2.id]
        assert [c.id for c in store.list_cases(CaseQuery(unit=UNIT, status=CaseStatus.IN_PROGRESS))] == [c1.id]
        assert [c.id for c in store.list_cases(CaseQuery(assignee="agent-py-a"))] == [c1.id]
        assert [c.id for c in store.list_cases(CaseQuery(locality="Mbacké"))] == [c1.id]
        assert store.list_cases(CaseQuery(unit="another-unit")) == []
        pages = [store.list_cases(CaseQuery(unit=UNIT, limit=1, offset=o)) for o in (0, 1, 2)]
        assert [len(p) for p in pages] == [1, 1, 0], pages
        assert {pages[0][0].id, pages[1][0].id} == {c1.id, c2.id}
        newest = pages[0][0]
        assert store.list_cases(CaseQuery(changed_after_ms=newest.updated_at_ms)) == []
        assert len(store.list_cases(CaseQuery(changed_after_ms=newest.updated_at_ms - 1))) >= 1
    assert CaseStatus.RESOLVED in next_statuses(CaseStatus.IN_PROGRESS)
    assert CaseStatus.RECEIVED not in next_statuses(CaseStatus.IN_PROGRESS)
    step("indexed queries: text (accents ignored), phone, unit+status, assignee, locality, pages, changed_after")

    # --- typed errors -----------------------------------------------------
    e = raises(GuichetError.InvalidTransition, lambda: a.change_status(c1.id, CaseStatus.RECEIVED))
    assert "in_progress" in str(e) and "received" in str(e), e
    raises(GuichetError.InvalidTransition, lambda: a.change_status(c1.id, CaseStatus.IN_PROGRESS))
    raises(GuichetError.InvalidInput, lambda: a.get_case("not-an-id"))
    raises(GuichetError.InvalidInput, lambda: a.get_case(""))
    raises(GuichetError.NotFound, lambda: a.get_case("99-99"))
    raises(GuichetError.NotFound, lambda: a.add_event("99-99", EventKind.NOTE, "x"))
    raises(GuichetError.InvalidInput, lambda: a.create_case(new_case("X", "77123", "bad phone")))
    raises(GuichetError.InvalidInput, lambda: a.update_case(c1.id, [FieldValue.LOCALITY("  ")]))
    raises(GuichetError.InvalidInput, lambda: a.rate_case(c1.id, 4))  # not resolved yet
    wrong = c1.reference[:-1] + str((int(c1.reference[-1]) + 1) % 10)
    raises(GuichetError.InvalidInput, lambda: a.find_by_reference(wrong))
    raises(GuichetError.InvalidInput, lambda: a.set_server_url("sync.example"))
    a.change_status(c1.id, CaseStatus.RESOLVED)
    assert a.rate_case(c1.id, 5).rating == 5
    raises(GuichetError.InvalidInput, lambda: a.rate_case(c1.id, 6))
    step("typed errors: InvalidTransition, InvalidInput, NotFound")

    # --- files that cannot be opened are kept -----------------------------
    junk = os.path.join(dir_a, "junk.db")
    with open(junk, "wb") as f:
        f.write(b"this is not a database, but it may be somebody's only copy" * 100)
    before = open(junk, "rb").read()
    e = raises(GuichetError.Storage, lambda: CaseStore.open(junk, ida))
    assert "untouched" in str(e), e
    assert open(junk, "rb").read() == before
    e = raises(GuichetError.InvalidInput, lambda: CaseStore.open(os.path.join(dir_a, "cases.db"), ida))
    assert "already open" in str(e), e
    other = os.path.join(dir_a, "other.db")
    extra = CaseStore.open(other, ida)
    del extra  # closed: the file may be opened again
    e = raises(GuichetError.InvalidInput, lambda: CaseStore.open(other, idb))
    assert "replica" in str(e), e
    step("a damaged file, a file already open and another device's store are refused, files kept")

    # --- sync failures ----------------------------------------------------
    a.set_sync_settings(SyncSettings(max_attempts=2, first_backoff_ms=20))
    a.set_server_url(DEAD_URL)
    e = raises(GuichetError.Network, lambda: sync(a))
    status = a.sync_status()
    assert status.server_url == DEAD_URL and status.last_error and status.last_success_ms is None, status
    assert status.pending_ops > 0
    step(f"sync against a dead URL raises Network; sync_status says: {status.last_error}")

    # Cancelling: reads, writes and sync_status go on while the sync waits.
    a.set_sync_settings(SyncSettings(max_attempts=1000, first_backoff_ms=100, max_backoff_ms=100))
    result = {}

    def background():
        try:
            sync(a, Failing())
            result["outcome"] = "finished"
        except Exception as e:  # noqa: BLE001
            result["outcome"] = e

    worker = threading.Thread(target=background)
    worker.start()
    deadline = time.time() + 10
    while not a.sync_status().syncing:
        assert time.time() < deadline, "the sync never started"
        time.sleep(0.02)
    assert a.get_case(c1.id).case.id == c1.id
    assert a.count_cases() == 2
    a.add_event(c1.id, EventKind.NOTE, "written while the sync waits")
    assert a.sync_status().syncing, "the write waited for the sync to end"
    a.cancel_sync()
    worker.join(10)
    assert not worker.is_alive(), "cancel_sync did not stop the sync"
    assert isinstance(result.get("outcome"), GuichetError.Cancelled), result
    status = a.sync_status()
    assert not status.syncing and status.last_error == "cancelled", status
    step("a running sync lets reads, writes and status go on, and stops on cancel_sync with Cancelled")

    a.set_server_url(URL)
    a.set_sync_settings(SyncSettings())
    done = sync(a, Failing())  # a failing listener does not stop the sync
    assert a.sync_status().last_error is None and a.sync_status().pending_ops == 0
    sync(b)
    same_case(a.get_case(c1.id), b.get_case(c1.id))
    assert b.get_case(c1.id).case.rating == 5
    b.add_event(c2.id, EventKind.CONTACT, "Appel")
    meddling = Meddling(b, c2.id)
    sync(b, meddling)
    assert meddling.seen == [c2.id, "written"], meddling.seen
    assert b.sync_status().pending_ops == 0, "the listener's write was not sent by the same sync"
    step("a listener reads and writes during the sync; its write goes in the same sync")

    # A revoked device is refused.
    admin("revoke", "--device", str(eb.replica))
    b.update_case(c2.id, [FieldValue.ASSIGNEE("agent-py-b")])
    e = raises(GuichetError.Unauthorized, lambda: sync(b))
    assert b.sync_status().last_error, b.sync_status()
    step("the server's refusal of a revoked device raises Unauthorized")

    print(f"python: all passed in {time.time() - started:.1f} s", flush=True)


if __name__ == "__main__":
    # Leave with os._exit, skipping interpreter finalization: uniffi calls
    # Python back (async continuations, listeners) on the library's own
    # threads, and CPython ends with pthread_exit any such thread that wants
    # the GIL back while finalizing, which aborts through the Rust frames
    # below it. Apps (Kotlin, Swift) have no such shutdown.
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code or 0
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
