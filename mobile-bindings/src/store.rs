//! The case store as the apps see it: one SQLite file per device, every
//! write merged, and the sync with the server.

use crate::error::{poisoned, GuichetError, Result};
use crate::identity::{check_url, DeviceIdentity};
use crate::types::{
    case_id, Case, CaseDetail, CaseQuery, CaseStatus, EventKind, FieldValue, NewCase,
    QuarantinedOp, SyncProgress, SyncSettings, SyncStatus,
};
use guichet_core::sync::client::{ClientOptions, SyncClient};
use guichet_core::{Field, ReplicaId, Store, SyncOutcome};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};

/// Told where a running sync stands, after every exchange with the server.
/// Called on a background thread.
#[uniffi::export(foreign)]
pub trait SyncListener: Send + Sync {
    fn on_progress(&self, progress: SyncProgress) -> Result<()>;
}

/// A device's case store. Every method may be called from any thread.
/// A running sync holds the store only to prepare a request and to apply
/// an answer, never while it waits on the network: reads and writes go on
/// meanwhile.
#[derive(uniffi::Object)]
pub struct CaseStore {
    store: Mutex<Store>,
    /// A second connection for reads while `store` is busy (a write, or a
    /// sync applying an answer).
    reader: Mutex<Option<Store>>,
    /// Held by the running sync: one at a time, the next waits its turn.
    sync_turn: tokio::sync::Mutex<()>,
    path: PathBuf,
    replica: ReplicaId,
    identity: Arc<DeviceIdentity>,
    server_url: Mutex<String>,
    settings: Mutex<SyncSettings>,
    live: Mutex<Live>,
}

/// The running sync, as `syncStatus()` and `cancelSync()` see it.
#[derive(Default)]
struct Live {
    /// The status when the running sync started; None when none runs.
    running: Option<guichet_core::SyncStatus>,
    progress: SyncProgress,
    cancels: Vec<Arc<CancelFlag>>,
}

/// The enrolment role that may write to every unit (the server's `intake`).
const INTAKE_ROLE: &str = "intake";

/// The store files open in this process (see `CaseStore::open`).
static OPEN_FILES: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// The set changes only by a whole insert or remove, so a panic elsewhere
/// while it was locked cannot have left it half-changed: a poisoned lock is
/// taken over, and one failed open never stops every later one.
fn open_files() -> MutexGuard<'static, BTreeSet<PathBuf>> {
    OPEN_FILES.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens the store file; a panic in the core while it reads a file from
/// the field becomes a `Storage` error. Nothing was written by then: the
/// open's transaction rolls back as the panic unwinds.
fn open_store(path: &Path, replica: ReplicaId) -> Result<Store> {
    match std::panic::catch_unwind(|| Store::open(path, replica)) {
        Ok(opened) => Ok(opened?),
        Err(_) => Err(GuichetError::Storage(format!(
            "cannot open {}: the file could not be read (an internal failure); \
             it was left as it was",
            path.display()
        ))),
    }
}

impl Drop for CaseStore {
    fn drop(&mut self) {
        open_files().remove(&self.path);
    }
}

impl std::fmt::Debug for CaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseStore")
            .field("path", &self.path)
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

#[uniffi::export]
impl CaseStore {
    /// Opens (or creates) the store file at `path` for an enrolled device.
    /// A file that cannot be used (damaged, not a Guichet store, written by
    /// a newer version, another device's) fails with `Storage` or
    /// `InvalidInput` and is left exactly as it was.
    #[uniffi::constructor]
    pub fn open(path: String, identity: Arc<DeviceIdentity>) -> Result<Arc<CaseStore>> {
        let enrolment = identity.enrolment().ok_or_else(|| {
            GuichetError::InvalidInput(
                "this device is not enrolled yet: show DeviceIdentity.publicKey() to the \
                 administrator, then call DeviceIdentity.enrol() with the answer"
                    .into(),
            )
        })?;
        let path = absolute(PathBuf::from(path));
        // Two stores on one file would each believe they hold its state.
        let mut open = open_files();
        if open.contains(&path) {
            return Err(GuichetError::InvalidInput(format!(
                "the store at {} is already open in this app: share that CaseStore",
                path.display()
            )));
        }
        let store = open_store(&path, enrolment.replica)?;
        open.insert(path.clone());
        Ok(Arc::new(CaseStore {
            store: Mutex::new(store),
            reader: Mutex::new(None),
            sync_turn: tokio::sync::Mutex::new(()),
            path,
            replica: enrolment.replica,
            identity,
            server_url: Mutex::new(enrolment.server_url),
            settings: Mutex::new(SyncSettings::default()),
            live: Mutex::new(Live::default()),
        }))
    }

    /// This device's replica number.
    pub fn replica(&self) -> u32 {
        self.replica
    }

    pub fn path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    // ----- cases -----

    /// Opens a case; its id and keypad reference are made on the device.
    pub fn create_case(&self, new_case: NewCase) -> Result<Case> {
        self.check_unit(&new_case.unit)?;
        let new = new_case.into();
        let mut store = self.lock()?;
        let id = store.write(|w| w.create_case(&new))?;
        Ok(store.get_case(id)?.case.into())
    }

    /// Writes fields of a case (one value per field). Writing a field in
    /// conflict settles the conflict.
    pub fn update_case(&self, id: String, changes: Vec<FieldValue>) -> Result<Case> {
        let id = case_id(&id)?;
        let changes: Vec<_> = changes.iter().map(FieldValue::to_core).collect();
        let mut store = self.lock()?;
        store.write(|w| w.update(id, &changes))?;
        Ok(store.get_case(id)?.case.into())
    }

    /// Moves a case along the workflow; `InvalidTransition` if it may not.
    pub fn change_status(&self, id: String, status: CaseStatus) -> Result<Case> {
        let id = case_id(&id)?;
        let mut store = self.lock()?;
        store.write(|w| w.change_status(id, status.into()))?;
        Ok(store.get_case(id)?.case.into())
    }

    /// The citizen's rating, 1 to 5, once the case is resolved or closed.
    pub fn rate_case(&self, id: String, rating: u8) -> Result<Case> {
        let id = case_id(&id)?;
        let mut store = self.lock()?;
        store.write(|w| w.rate(id, rating))?;
        Ok(store.get_case(id)?.case.into())
    }

    /// Adds a note, contact, visit or complaint to the case's timeline.
    pub fn add_event(&self, id: String, kind: EventKind, text: String) -> Result<()> {
        let id = case_id(&id)?;
        self.lock()?
            .write(|w| w.add_event(id, kind.into(), &text))?;
        Ok(())
    }

    /// Settles the conflict on the value's field by writing the value to
    /// keep: one of `FieldConflict.values` (chosen) or a new one
    /// (rewritten). Returns the case as it now stands.
    pub fn resolve_conflict(&self, id: String, value: FieldValue) -> Result<CaseDetail> {
        let id = case_id(&id)?;
        let (field, value) = value.to_core();
        let mut store = self.lock()?;
        store.write(|w| w.resolve_conflict(id, field, value))?;
        store.get_case(id)?.try_into()
    }

    /// One case with its conflicts, status anomalies and timeline.
    pub fn get_case(&self, id: String) -> Result<CaseDetail> {
        let id = case_id(&id)?;
        self.read(|s| s.get_case(id))?.try_into()
    }

    /// The case a citizen's reference names; a mistyped reference is
    /// refused (`InvalidInput`) by its check digit.
    pub fn find_by_reference(&self, reference: String) -> Result<Case> {
        Ok(self.read(|s| s.find_by_reference(&reference))?.into())
    }

    /// Cases matching the query, most recently changed first, one page.
    pub fn list_cases(&self, query: CaseQuery) -> Result<Vec<Case>> {
        let query = query.into();
        let cases = self.read(|s| s.list_cases(&query))?;
        Ok(cases.into_iter().map(Into::into).collect())
    }

    pub fn count_cases(&self) -> Result<u64> {
        self.read(|s| s.count_cases())
    }

    // ----- sync -----

    /// The sync server's URL (from the enrolment, or `setServerUrl`).
    pub fn server_url(&self) -> Result<String> {
        Ok(self.server_url.lock().map_err(poisoned)?.clone())
    }

    /// Syncs with another URL from now on (for this store object; the
    /// enrolment keeps its own). The sync history is kept per URL.
    pub fn set_server_url(&self, url: String) -> Result<()> {
        *self.server_url.lock().map_err(poisoned)? = check_url(&url)?;
        Ok(())
    }

    pub fn set_sync_settings(&self, settings: SyncSettings) -> Result<()> {
        *self.settings.lock().map_err(poisoned)? = settings;
        Ok(())
    }

    /// Sends this device's changes and receives its units' cases until both
    /// sides hold everything. Retries network failures with backoff (see
    /// `SyncSettings`); the outcome is recorded either way (`syncStatus()`).
    /// Runs on the library's own threads: a Kotlin `suspend` function, a
    /// Swift `async` one. Cancelling the caller (or `cancelSync()`) stops
    /// it with `Cancelled`; what was exchanged before is kept.
    #[uniffi::method(default(listener = None))]
    pub async fn sync(
        self: Arc<Self>,
        listener: Option<Arc<dyn SyncListener>>,
    ) -> Result<SyncProgress> {
        let cancel = Arc::new(CancelFlag::default());
        self.live
            .lock()
            .map_err(poisoned)?
            .cancels
            .push(cancel.clone());
        let mut guard = CancelOnDrop {
            store: self.clone(),
            flag: cancel.clone(),
            armed: true,
        };
        let this = self.clone();
        let task = runtime()?.spawn_blocking(move || this.run_sync(&cancel, listener));
        let outcome = task.await;
        guard.armed = false;
        match outcome {
            Ok(result) => result,
            Err(e) => Err(GuichetError::Storage(format!(
                "the sync stopped on an internal failure: {e}"
            ))),
        }
    }

    /// Stops the running sync (and any waiting to start): they fail with
    /// `Cancelled`. Does nothing when no sync runs.
    pub fn cancel_sync(&self) {
        let live = match self.live.lock() {
            Ok(live) => live,
            Err(p) => p.into_inner(),
        };
        for flag in &live.cancels {
            flag.cancel();
        }
    }

    /// The sync history with the current server: last success, last error,
    /// operations not yet sent. Never waits on the network.
    pub fn sync_status(&self) -> Result<SyncStatus> {
        let url = self.server_url()?;
        let now = self.lock()?.sync_status(&url)?;
        let live = self.live.lock().map_err(poisoned)?;
        let Some(base) = &live.running else {
            return Ok(status_record(url, false, now));
        };
        // The history as it was when the sync started (its outcome is
        // recorded when it ends), with its progress; what is left to send
        // as it is now.
        let p = &live.progress;
        let (sent, received) = (
            base.ops_sent.saturating_add(p.ops_sent),
            base.ops_received.saturating_add(p.ops_received),
        );
        let mut status = status_record(url, true, now);
        status.last_attempt_ms = base.last_attempt_ms;
        status.last_success_ms = base.last_success_ms;
        status.last_error = base.last_error.clone();
        status.ops_sent = sent;
        status.ops_received = received;
        Ok(status)
    }
}

/// The file's path with its directory resolved (the file may not exist yet).
fn absolute(path: PathBuf) -> PathBuf {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return path;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    match std::fs::canonicalize(dir) {
        Ok(dir) => dir.join(name),
        Err(_) => path,
    }
}

fn status_record(url: String, syncing: bool, s: guichet_core::SyncStatus) -> SyncStatus {
    SyncStatus {
        server_url: url,
        syncing,
        last_attempt_ms: s.last_attempt_ms,
        last_success_ms: s.last_success_ms,
        last_error: s.last_error,
        pending_ops: s.pending_ops,
        ops_sent: s.ops_sent,
        ops_received: s.ops_received,
        quarantined_ops: s.quarantined_ops,
        quarantined: s
            .quarantined
            .into_iter()
            .map(|q| QuarantinedOp {
                case_id: q.case.to_string(),
                reason: q.reason,
            })
            .collect(),
    }
}

impl CaseStore {
    /// Refuses a unit the server would refuse from this device, before
    /// anything is written: a tablet opens cases only in the units it was
    /// enrolled for (it may hand one of its cases to another unit); the intake
    /// role (the USSD gateway) serves every unit. Checked against the
    /// identity's current enrolment; an identity without one (the store
    /// cannot be opened without it) fails closed.
    fn check_unit(&self, unit: &str) -> Result<()> {
        let units = match self.identity.enrolment() {
            Some(e) if e.role == INTAKE_ROLE => return Ok(()),
            Some(e) => e.units,
            None => Vec::new(),
        };
        if units.iter().any(|u| u == unit) {
            return Ok(());
        }
        Err(GuichetError::InvalidInput(format!(
            "{}: '{unit}' is not one of this device's units ({}); the server would refuse it",
            Field::Unit,
            units.join(", ")
        )))
    }

    /// The store, for a write: waits at most for another call's local work
    /// (a sync holds it only to prepare a request or apply an answer).
    fn lock(&self) -> Result<MutexGuard<'_, Store>> {
        self.store.lock().map_err(poisoned)
    }

    /// Runs a query on the store, or on the reading connection while the
    /// store is busy. Queries read SQLite only, which WAL keeps current for
    /// both connections.
    fn read<T>(&self, query: impl FnOnce(&Store) -> guichet_core::Result<T>) -> Result<T> {
        match self.store.try_lock() {
            Ok(store) => return Ok(query(&store)?),
            Err(TryLockError::Poisoned(p)) => return Err(poisoned(p)),
            Err(TryLockError::WouldBlock) => {}
        }
        let mut reader = self.reader.lock().map_err(poisoned)?;
        let store = match reader.take() {
            Some(store) => store,
            None => open_store(&self.path, self.replica)?,
        };
        Ok(query(reader.insert(store))?)
    }

    /// One sync, on a blocking thread of the library's runtime (the
    /// listener is called there, and SQLite work blocks).
    fn run_sync(
        &self,
        cancel: &CancelFlag,
        listener: Option<Arc<dyn SyncListener>>,
    ) -> Result<SyncProgress> {
        runtime()?.handle().block_on(async {
            let _turn = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(cancelled()),
                turn = self.sync_turn.lock() => turn,
            };
            let url = self.server_url()?;
            let options = ClientOptions::from(&*self.settings.lock().map_err(poisoned)?);
            let client = SyncClient::new(&url, self.identity.key()?, options)?;
            let before = self.lock()?.sync_status(&url)?;
            {
                let mut live = self.live.lock().map_err(poisoned)?;
                live.running = Some(before);
                live.progress = SyncProgress::default();
            }
            let _running = RunningGuard(self);
            let mut last = guichet_core::sync::client::SyncProgress::default();
            let report = |p: &guichet_core::sync::client::SyncProgress| {
                last = p.clone();
                let progress = SyncProgress::from(p);
                if let Ok(mut live) = self.live.lock() {
                    live.progress = progress.clone();
                }
                if let Some(listener) = &listener {
                    // A listener that fails does not stop the sync.
                    if let Err(e) = listener.on_progress(progress) {
                        report_listener_failure(&e);
                    }
                }
            };
            // The client locks the store only around its local steps: a
            // cancel drops it between two of them, never inside one.
            let outcome = tokio::select! {
                biased;
                () = cancel.cancelled() => None,
                result = client.sync_shared(&self.store, report) => Some(result),
            };
            match outcome {
                Some(result) => Ok(SyncProgress::from(&result?)),
                None => {
                    // Everything applied so far stays; say so in the history.
                    let mut store = self.lock()?;
                    let outcome = SyncOutcome {
                        result: Err("cancelled".into()),
                        acked: store.acked(&url)?,
                        ops_sent: last.ops_sent,
                        ops_received: last.ops_received,
                    };
                    store.record_sync(&url, &outcome)?;
                    Err(cancelled())
                }
            }
        })
    }
}

fn report_listener_failure(e: &GuichetError) {
    // No logging framework is imposed on the apps; stderr reaches logcat
    // only in debug builds, which is where a failing listener is looked at.
    if cfg!(debug_assertions) {
        eprintln!("guichet-mobile: sync listener failed: {e}");
    }
}

fn cancelled() -> GuichetError {
    GuichetError::Cancelled("the sync was cancelled".into())
}

/// Clears the running-sync state when a sync ends, however it ends.
struct RunningGuard<'a>(&'a CaseStore);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        let mut live = match self.0.live.lock() {
            Ok(live) => live,
            Err(p) => p.into_inner(),
        };
        live.running = None;
    }
}

/// Cancels the sync when the caller's future is dropped (a cancelled Kotlin
/// coroutine or Swift task) and forgets its flag when the sync is over.
struct CancelOnDrop {
    store: Arc<CaseStore>,
    flag: Arc<CancelFlag>,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.flag.cancel();
        }
        let mut live = match self.store.live.lock() {
            Ok(live) => live,
            Err(p) => p.into_inner(),
        };
        live.cancels.retain(|f| !Arc::ptr_eq(f, &self.flag));
    }
}

#[derive(Default)]
struct CancelFlag {
    cancelled: AtomicBool,
    notify: tokio::sync::Notify,
}

impl CancelFlag {
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    async fn cancelled(&self) {
        loop {
            // Created before the check: a `notify_waiters` after it is seen.
            let notified = self.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// The library's tokio runtime (HTTP and timers), started at first sync.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("guichet-sync")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| GuichetError::Storage(format!("cannot start the sync threads: {e}")))
}
