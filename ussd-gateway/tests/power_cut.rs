//! What the gateway promised a citizen survives a power cut: a filing's
//! reference SMS, the marks of SMS being sent and their results. The
//! gateway runs in this process over SQLite's own file system layer with a
//! shim in front (`vfs`) that remembers each file as of its last sync; a
//! power cut is a copy of the data directory as the disk would hold it
//! then: every write since the file's last sync dropped.

use guichet_core::{Channel, NewCase, Priority, Status, Store};
use guichet_ussd_gateway::config::Config;
use guichet_ussd_gateway::flow::Reply;
use guichet_ussd_gateway::gateway::{locked, Gateway, Hop};
use guichet_ussd_gateway::i18n::Catalog;
use guichet_ussd_gateway::outbox::{queue_missing_references, Outbox};
use guichet_ussd_gateway::providers::{SendFuture, SendResult, SmsSender};
use guichet_ussd_gateway::state::{GatewayDb, OutboxSms, SmsStatus};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A shim over SQLite's default VFS that keeps, for each file opened
/// through it, its content as of its last successful `xSync`.
mod vfs {
    use rusqlite::ffi;
    use std::collections::HashMap;
    use std::ffi::{c_char, c_int, c_void, CStr};
    use std::path::{Path, PathBuf};
    use std::sync::{Mutex, Once};

    /// Each file's content at its last sync; None: never synced.
    static SYNCED: Mutex<Option<HashMap<PathBuf, Option<Vec<u8>>>>> = Mutex::new(None);
    static mut REAL: *mut ffi::sqlite3_vfs = std::ptr::null_mut();
    static INSTALL: Once = Once::new();

    #[repr(C)]
    struct File {
        base: ffi::sqlite3_file,
        real: *mut ffi::sqlite3_file,
        /// Boxed; null for SQLite's nameless temporary files.
        path: *mut PathBuf,
    }

    fn synced<T>(f: impl FnOnce(&mut HashMap<PathBuf, Option<Vec<u8>>>) -> T) -> T {
        f(SYNCED.lock().unwrap().get_or_insert_with(HashMap::new))
    }

    /// Makes the shim every connection's default, once per process.
    pub fn install() {
        INSTALL.call_once(|| unsafe {
            let real = ffi::sqlite3_vfs_find(std::ptr::null());
            assert!(!real.is_null());
            REAL = real;
            let mut shim: ffi::sqlite3_vfs = *real;
            shim.szOsFile = std::mem::size_of::<File>() as c_int;
            shim.pNext = std::ptr::null_mut();
            shim.zName = c"powercut".as_ptr();
            shim.xOpen = Some(open);
            shim.xDelete = Some(delete);
            let shim = Box::into_raw(Box::new(shim));
            assert_eq!(ffi::sqlite3_vfs_register(shim, 1), ffi::SQLITE_OK);
        });
    }

    /// The directory `from` as the disk holds it after a power cut, copied
    /// to `to`: files SQLite opened as of their last sync (never synced:
    /// absent), its shared-memory index dropped (rebuilt from the log),
    /// any other file as it is.
    pub fn power_cut(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        let kept = synced(|s| s.clone());
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_owned();
            if !path.is_file() || name.to_string_lossy().ends_with("-shm") {
                continue;
            }
            let on_disk = match kept.get(&path) {
                Some(Some(content)) => content.clone(),
                Some(None) => continue,
                None => std::fs::read(&path).unwrap(),
            };
            std::fs::write(to.join(name), on_disk).unwrap();
        }
    }

    unsafe extern "C" fn open(
        _: *mut ffi::sqlite3_vfs,
        name: ffi::sqlite3_filename,
        file: *mut ffi::sqlite3_file,
        flags: c_int,
        out_flags: *mut c_int,
    ) -> c_int {
        let real_vfs = REAL;
        let size = (*real_vfs).szOsFile as usize;
        let layout = std::alloc::Layout::from_size_align(size.max(8), 8).unwrap();
        let real = std::alloc::alloc_zeroed(layout) as *mut ffi::sqlite3_file;
        let path = (!name.is_null()).then(|| {
            PathBuf::from(
                CStr::from_ptr(name as *const c_char)
                    .to_string_lossy()
                    .into_owned(),
            )
        });
        let existed = path.as_ref().is_some_and(|p| p.exists());
        let rc = ((*real_vfs).xOpen.unwrap())(real_vfs, name, real, flags, out_flags);
        let shim = file as *mut File;
        if rc != ffi::SQLITE_OK {
            std::alloc::dealloc(real as *mut u8, layout);
            (*shim).base.pMethods = std::ptr::null();
            return rc;
        }
        if let Some(path) = &path {
            synced(|s| {
                // A file that was there before the shim saw it: as it is.
                s.entry(path.clone())
                    .or_insert_with(|| existed.then(|| std::fs::read(path).unwrap_or_default()));
            });
        }
        std::ptr::write(
            shim,
            File {
                base: ffi::sqlite3_file { pMethods: &METHODS },
                real,
                path: path.map_or(std::ptr::null_mut(), |p| Box::into_raw(Box::new(p))),
            },
        );
        rc
    }

    unsafe extern "C" fn delete(
        _: *mut ffi::sqlite3_vfs,
        name: *const c_char,
        sync_dir: c_int,
    ) -> c_int {
        let rc = ((*REAL).xDelete.unwrap())(REAL, name, sync_dir);
        if rc == ffi::SQLITE_OK {
            let path = PathBuf::from(CStr::from_ptr(name).to_string_lossy().into_owned());
            synced(|s| s.remove(&path));
        }
        rc
    }

    unsafe fn real(
        f: *mut ffi::sqlite3_file,
    ) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
        let real = (*(f as *mut File)).real;
        (real, &*(*real).pMethods)
    }

    unsafe extern "C" fn close(f: *mut ffi::sqlite3_file) -> c_int {
        let (r, m) = real(f);
        let rc = (m.xClose.unwrap())(r);
        let shim = f as *mut File;
        let size = (*REAL).szOsFile as usize;
        let layout = std::alloc::Layout::from_size_align(size.max(8), 8).unwrap();
        std::alloc::dealloc(r as *mut u8, layout);
        if !(*shim).path.is_null() {
            drop(Box::from_raw((*shim).path));
        }
        rc
    }

    unsafe extern "C" fn sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
        let (r, m) = real(f);
        let rc = (m.xSync.unwrap())(r, flags);
        let path = (*(f as *mut File)).path;
        if rc == ffi::SQLITE_OK && !path.is_null() {
            let content = std::fs::read(&*path).unwrap_or_default();
            synced(|s| s.insert((*path).clone(), Some(content)));
        }
        rc
    }

    unsafe extern "C" fn read(
        f: *mut ffi::sqlite3_file,
        b: *mut c_void,
        n: c_int,
        o: i64,
    ) -> c_int {
        let (r, m) = real(f);
        (m.xRead.unwrap())(r, b, n, o)
    }
    unsafe extern "C" fn write(
        f: *mut ffi::sqlite3_file,
        b: *const c_void,
        n: c_int,
        o: i64,
    ) -> c_int {
        let (r, m) = real(f);
        (m.xWrite.unwrap())(r, b, n, o)
    }
    unsafe extern "C" fn truncate(f: *mut ffi::sqlite3_file, size: i64) -> c_int {
        let (r, m) = real(f);
        (m.xTruncate.unwrap())(r, size)
    }
    unsafe extern "C" fn file_size(f: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
        let (r, m) = real(f);
        (m.xFileSize.unwrap())(r, size)
    }
    unsafe extern "C" fn lock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
        let (r, m) = real(f);
        (m.xLock.unwrap())(r, level)
    }
    unsafe extern "C" fn unlock(f: *mut ffi::sqlite3_file, level: c_int) -> c_int {
        let (r, m) = real(f);
        (m.xUnlock.unwrap())(r, level)
    }
    unsafe extern "C" fn check_reserved(f: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
        let (r, m) = real(f);
        (m.xCheckReservedLock.unwrap())(r, out)
    }
    unsafe extern "C" fn file_control(
        f: *mut ffi::sqlite3_file,
        op: c_int,
        arg: *mut c_void,
    ) -> c_int {
        let (r, m) = real(f);
        (m.xFileControl.unwrap())(r, op, arg)
    }
    unsafe extern "C" fn sector_size(f: *mut ffi::sqlite3_file) -> c_int {
        let (r, m) = real(f);
        (m.xSectorSize.unwrap())(r)
    }
    unsafe extern "C" fn device(f: *mut ffi::sqlite3_file) -> c_int {
        let (r, m) = real(f);
        (m.xDeviceCharacteristics.unwrap())(r)
    }
    unsafe extern "C" fn shm_map(
        f: *mut ffi::sqlite3_file,
        pg: c_int,
        size: c_int,
        extend: c_int,
        out: *mut *mut c_void,
    ) -> c_int {
        let (r, m) = real(f);
        (m.xShmMap.unwrap())(r, pg, size, extend, out)
    }
    unsafe extern "C" fn shm_lock(
        f: *mut ffi::sqlite3_file,
        offset: c_int,
        n: c_int,
        flags: c_int,
    ) -> c_int {
        let (r, m) = real(f);
        (m.xShmLock.unwrap())(r, offset, n, flags)
    }
    unsafe extern "C" fn shm_barrier(f: *mut ffi::sqlite3_file) {
        let (r, m) = real(f);
        (m.xShmBarrier.unwrap())(r)
    }
    unsafe extern "C" fn shm_unmap(f: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
        let (r, m) = real(f);
        (m.xShmUnmap.unwrap())(r, delete)
    }
    unsafe extern "C" fn fetch(
        f: *mut ffi::sqlite3_file,
        o: i64,
        n: c_int,
        out: *mut *mut c_void,
    ) -> c_int {
        let (r, m) = real(f);
        (m.xFetch.unwrap())(r, o, n, out)
    }
    unsafe extern "C" fn unfetch(f: *mut ffi::sqlite3_file, o: i64, p: *mut c_void) -> c_int {
        let (r, m) = real(f);
        (m.xUnfetch.unwrap())(r, o, p)
    }

    static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
        iVersion: 3,
        xClose: Some(close),
        xRead: Some(read),
        xWrite: Some(write),
        xTruncate: Some(truncate),
        xSync: Some(sync),
        xFileSize: Some(file_size),
        xLock: Some(lock),
        xUnlock: Some(unlock),
        xCheckReservedLock: Some(check_reserved),
        xFileControl: Some(file_control),
        xSectorSize: Some(sector_size),
        xDeviceCharacteristics: Some(device),
        xShmMap: Some(shm_map),
        xShmLock: Some(shm_lock),
        xShmBarrier: Some(shm_barrier),
        xShmUnmap: Some(shm_unmap),
        xFetch: Some(fetch),
        xUnfetch: Some(unfetch),
    };
}

const PHONE: &str = "+221771234567";
const CITIZEN: &str = "+221772223344";

/// A gateway in this process on `data`, as `main` assembles it and the
/// outbox starts it (`queue_missing_references`).
fn gateway(data: &Path) -> Gateway {
    let gw = assemble(data);
    queue_missing_references(&gw).unwrap();
    gw
}

fn assemble(data: &Path) -> Gateway {
    vfs::install();
    std::fs::create_dir_all(data).unwrap();
    let locales = Path::new(env!("CARGO_MANIFEST_DIR")).join("../locales");
    let path = data.join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            r#"data_dir = "{data}"
locales_dir = "{locales}"
default_language = "en"
standalone_replica = 999
[[services]]
id = "etat-civil"
names = {{ en = "Civil registration" }}
[[units]]
id = "unit-01"
localities = ["Thies"]
[[mediators]]
id = "med-awa"
name = "Awa Ndiaye"
phone = "+221770000009"
pin_hash = "$argon2id$v=19$m=19456,t=2,p=1$groveINt+rZjfVNkR4guXA$3z4pdC5WrlqOOg3FNtcwoTImVyBWt6vdcFGXwOpu8eQ"
"#,
            data = data.display(),
            locales = locales.display()
        ),
    )
    .unwrap();
    let config = Config::load(&path).unwrap();
    let catalog = Catalog::load(&config.locales_dir, "en").unwrap();
    let mut store = Store::open(data.join("cases.db"), 999).unwrap();
    store.keep_text_index(false).unwrap();
    let db = GatewayDb::open(&data.join("gateway.db")).unwrap();
    Gateway::new(config, catalog, store, db).unwrap()
}

/// A first dial that files a request (English is the 7th language);
/// returns the last screen.
async fn file_a_request(gw: &Gateway, session: &str) -> String {
    let mut typed: Vec<&str> = Vec::new();
    let mut last = None;
    let inputs = [
        None,
        Some("7"),
        Some("1"),
        Some("1"),
        Some("1"),
        Some("Extrait de naissance"),
        Some("1"),
    ];
    for input in inputs {
        typed.extend(input);
        let raw_text = typed.join("*");
        let hop = Hop {
            provider: "test",
            session_id: session,
            phone: PHONE,
            input,
            raw_text: &raw_text,
        };
        last = Some(gw.ussd(&hop).await);
    }
    match last.unwrap() {
        Reply::End(screen) => screen,
        Reply::Con(screen) => panic!("the session did not end: {screen}"),
    }
}

/// The longest run of digits: the reference a screen names.
fn reference_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .max_by_key(|s| s.len())
        .unwrap()
        .to_string()
}

fn outbox_after(data: &Path) -> Vec<OutboxSms> {
    GatewayDb::open(&data.join("gateway.db"))
        .unwrap()
        .outbox()
        .unwrap()
}

/// A filing's SMS is committed in gateway.db without waiting on the disk:
/// a power cut may undo it, but not the case (the case store syncs every
/// commit), and the next start queues the SMS again from the case.
#[tokio::test(flavor = "multi_thread")]
async fn a_filings_reference_sms_survives_a_power_cut() {
    let dir = tempfile::TempDir::new().unwrap();
    let (data, after) = (dir.path().join("data"), dir.path().join("after"));
    let gw = gateway(&data);
    let screen = file_a_request(&gw, "s1").await;
    let reference = reference_in(&screen);
    assert!(
        screen.contains(&reference) && reference.len() >= 6,
        "{screen}"
    );
    vfs::power_cut(&data, &after);
    drop(gw);
    let gw = gateway(&after);
    let case = locked(&gw.store).find_by_reference(&reference);
    let case = case.expect("the case survived");
    let outbox = locked(&gw.db).outbox().unwrap();
    assert_eq!(outbox.len(), 1, "the reference SMS survived: {outbox:?}");
    assert_eq!(outbox[0].event_key, format!("created:{}", case.id));
    assert!(outbox[0].text.contains(&reference));
    assert_eq!(outbox[0].status, SmsStatus::Queued);
}

/// Accepts what it is given, except texts that say "hold": those it never
/// answers, as a provider that took them and then went silent.
#[derive(Default)]
struct Provider {
    seen: Mutex<Vec<String>>,
}

impl SmsSender for Provider {
    fn name(&self) -> &'static str {
        "test"
    }
    fn send<'a>(&'a self, sms: &'a OutboxSms) -> SendFuture<'a> {
        Box::pin(async move {
            self.seen.lock().unwrap().push(sms.text.clone());
            if sms.text.contains("hold") {
                std::future::pending::<()>().await;
            }
            SendResult::Accepted(Some(format!("p{}", sms.id)))
        })
    }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 30 s");
}

/// A status SMS or a reply may leave at most once: once handed to the
/// provider, a power cut never makes it leave again. A reference SMS
/// whose send was cut short is sent again (at least once).
#[tokio::test(flavor = "multi_thread")]
async fn marks_of_sms_being_sent_and_their_results_survive_a_power_cut() {
    let dir = tempfile::TempDir::new().unwrap();
    let (data, after) = (dir.path().join("data"), dir.path().join("after"));
    let gw = Arc::new(gateway(&data));
    let provider = Arc::new(Provider::default());
    let outbox = Outbox::start(gw.clone(), provider.clone());
    // Each phone's messages leave in turn: the held ones go to two phones,
    // queued together, so that one batch takes both.
    let queue = |sms: &[(&str, &str, &str)]| {
        let db = locked(&gw.db);
        db.transaction(|| {
            for (key, phone, text) in sms {
                assert!(db.enqueue_sms(key, phone, text, 0)?);
            }
            Ok::<_, rusqlite::Error>(())
        })
        .unwrap();
        gw.sms_queued();
    };
    queue(&[
        ("status:1:2:3", PHONE, "accept: now in progress"),
        ("reply:test:1", PHONE, "accept: help"),
    ]);
    let sent = |gw: &Gateway| {
        let outbox = locked(&gw.db).outbox().unwrap();
        outbox.iter().all(|sms| sms.status == SmsStatus::Sent)
    };
    until("both accepted and recorded", || sent(&gw)).await;
    queue(&[
        ("status:1:4:5", PHONE, "hold: now resolved"),
        ("created:999-77", CITIZEN, "hold: your reference 123456"),
    ]);
    until("both handed to the provider", || {
        provider.seen.lock().unwrap().len() == 4
    })
    .await;
    vfs::power_cut(&data, &after);
    drop(outbox);
    let status: Vec<(String, SmsStatus)> = outbox_after(&after)
        .into_iter()
        .map(|sms| (sms.event_key, sms.status))
        .collect();
    let expected = [
        ("status:1:2:3", SmsStatus::Sent),
        ("reply:test:1", SmsStatus::Sent),
        ("status:1:4:5", SmsStatus::Unknown),
        ("created:999-77", SmsStatus::Queued),
    ]
    .map(|(k, s)| (k.to_string(), s));
    assert_eq!(status, expected);
}

fn new_case(channel: Channel, phone: &str, mediator: Option<&str>) -> NewCase {
    NewCase {
        service: "etat-civil".into(),
        requester_phone: phone.into(),
        requester_name: String::new(),
        requester_language: "en".into(),
        locality: "Thies".into(),
        channel,
        mediator: mediator.map(String::from),
        unit: "unit-01".into(),
        assignee: None,
        priority: Priority::Normal,
        description: String::new(),
        status: Status::Received,
    }
}

/// The case store commits a filing, then gateway.db queues its SMS: a stop
/// in between leaves a request whose reference was never queued. The next
/// start queues it, once, and nothing for requests that had theirs or
/// that came from elsewhere.
#[tokio::test(flavor = "multi_thread")]
async fn a_reference_never_queued_is_queued_at_the_next_start() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let gw = Arc::new(gateway(&data));
    let told = reference_in(&file_a_request(&gw, "s1").await);
    // The stop between the two commits: stored, never queued.
    let (own, for_citizen, field) = locked(&gw.store)
        .write(|w| {
            Ok((
                w.create_case(&new_case(Channel::Ussd, PHONE, None))?,
                w.create_case(&new_case(Channel::Mediator, CITIZEN, Some("med-awa")))?,
                w.create_case(&new_case(Channel::Field, PHONE, None))?,
            ))
        })
        .unwrap();
    let reference = |id| locked(&gw.store).case(id).unwrap().reference;
    let provider = Arc::new(Provider::default());
    let outbox = Outbox::start(gw.clone(), provider.clone());
    until("three SMS sent", || {
        provider.seen.lock().unwrap().len() >= 3
    })
    .await;
    outbox.stop().await;
    let seen = provider.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen[0].contains(&told),
        "the filed request's own SMS: {seen:?}"
    );
    let keys: Vec<String> = locked(&gw.db)
        .outbox()
        .unwrap()
        .into_iter()
        .skip(1)
        .map(|sms| sms.event_key)
        .collect();
    assert_eq!(
        keys,
        [format!("created:{own}"), format!("consent:{for_citizen}")]
    );
    assert!(seen[1].contains(&reference(own)));
    assert!(seen[2].contains(&reference(for_citizen)) && seen[2].contains("Awa Ndiaye"));
    assert!(!seen.iter().any(|t| t.contains(&reference(field))));
    assert_eq!(queue_missing_references(&gw).unwrap(), 0, "queued once");
}

/// A gateway's first look (a new one, or one from before the look existed)
/// queues nothing for the requests it holds: they had their SMS as they
/// were filed. From then on, what is missing is queued.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_look_takes_the_requests_held_as_told() {
    let dir = tempfile::TempDir::new().unwrap();
    let gw = assemble(&dir.path().join("data"));
    let create = || {
        let new = new_case(Channel::Ussd, PHONE, None);
        locked(&gw.store).write(|w| w.create_case(&new)).unwrap()
    };
    create();
    assert_eq!(queue_missing_references(&gw).unwrap(), 0, "held before");
    let missing = create();
    assert_eq!(queue_missing_references(&gw).unwrap(), 1);
    let outbox = locked(&gw.db).outbox().unwrap();
    let keys: Vec<&str> = outbox.iter().map(|sms| sms.event_key.as_str()).collect();
    assert_eq!(keys, [format!("created:{missing}")]);
}
