//! The gateway: one case replica and its own state, shared by every
//! provider's callbacks, the outbox and the sync loop.

use crate::config::Config;
use crate::flow::{self, Ctx, Reply, Session, ToFile};
use crate::group_commit::GroupCommit;
use crate::i18n::Catalog;
use crate::state::{GatewayDb, SessionSummary};
use guichet_core::{CaseId, NewCase, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Gateway {
    pub config: Arc<Config>,
    pub catalog: Arc<Catalog>,
    /// The gateway's replica of the cases. Locked only for local work:
    /// the sync loop never holds it across the network.
    pub store: Arc<Mutex<Store>>,
    pub db: Arc<Mutex<GatewayDb>>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) filing: Filing,
    outcomes: Outcomes,
    pub(crate) menus: flow::Menus,
    /// The languages offered (code, own name), rendered once.
    pub(crate) languages: Vec<(String, String)>,
    pub(crate) keywords: crate::sms::Keywords,
    limiter: RateLimiter,
    /// Rung when SMS are queued, so that they leave at once.
    sms_queued: tokio::sync::Notify,
}

/// New requests are stored durably by group commit: one transaction (one
/// fsync) for all that queued while the last commit waited on the disk.
/// The same thread then queues each one's reference SMS and records its
/// session, so that a filing hop waits for one writer, not two in turn.
pub struct Filing(GroupCommit<FilingJob, ()>);

pub struct FilingJob {
    to_file: ToFile,
    /// How the session went; the filing ends it.
    outcome: Outcome,
    /// Where the screen naming the reference goes once stored.
    answer: tokio::sync::watch::Sender<FilingAnswer>,
    /// The caller's unfinished request, taken when the filing was handed
    /// over (so that no redial resumes it); given back if it fails.
    draft: Option<TakenDraft>,
}

/// A session's filing, once stored: the screen that names the reference,
/// or why it failed. Every hop of the session reads it, so that a hop the
/// provider repeats (its answer timed out) files nothing twice.
pub type FilingAnswer = Option<Result<Reply, String>>;

/// An unfinished request taken from the drafts: phone, state, saved at.
pub struct TakenDraft(String, String, u64);

type Filed = Result<(CaseId, String), guichet_core::Error>;

impl Filing {
    pub fn start(
        config: Arc<Config>,
        catalog: Arc<Catalog>,
        store: Arc<Mutex<Store>>,
        db: Arc<Mutex<GatewayDb>>,
        sessions: Arc<Sessions>,
    ) -> std::io::Result<Filing> {
        let commit = GroupCommit::start("guichet-filing", move |batch: Vec<FilingJob>| {
            let jobs = batch.len();
            let (news, rest): (Vec<NewCase>, Vec<_>) = batch
                .into_iter()
                .map(|job| {
                    let rest = (job.to_file.after, job.outcome, job.answer, job.draft);
                    (job.to_file.new, rest)
                })
                .unzip();
            let stored = store_batch(&mut locked(&store), &news);
            let mut endings = Vec::new();
            let mut answers = Vec::new();
            for ((after, outcome, answer, draft), stored) in rest.into_iter().zip(stored) {
                match flow::filed(&config, &catalog, after, stored) {
                    Ok((reply, sms)) => {
                        endings.push(Ending { sms, outcome });
                        answers.push((answer, Ok(reply)));
                    }
                    Err(e) => {
                        if let Some(TakenDraft(phone, state, saved)) = draft {
                            sessions.give_back_draft(&phone, state, saved);
                        }
                        answers.push((answer, Err(e.to_string())));
                    }
                }
            }
            // The requests are stored: their callers get their references
            // even if the SMS and outcomes could not be written.
            let written: Vec<&Ending> = endings.iter().collect();
            for failed in write_endings(&locked(&db), &written)
                .into_iter()
                .flat_map(Result::err)
            {
                tracing::error!(error = %failed, "queueing a filing's SMS failed");
            }
            for (answer, screen) in answers {
                answer.send_replace(Some(screen));
            }
            vec![(); jobs]
        })?;
        Ok(Filing(commit))
    }

    /// Stores a new request durably, then queues its SMS and records the
    /// session's `outcome`; the screen that names its reference goes to
    /// `answer`. Returns once it is there (or the writer stopped).
    async fn file(&self, job: FilingJob) {
        self.0.submit(job).await;
    }
}

/// The screen of a session's filing, once it is stored.
async fn filing_answer(
    mut answer: tokio::sync::watch::Receiver<FilingAnswer>,
) -> Result<Reply, flow::FlowError> {
    let answer = answer
        .wait_for(Option::is_some)
        .await
        .map_err(|_| flow::FlowError::Stopped("the filing writer"))?
        .clone();
    answer
        .unwrap_or_else(|| Err("no answer".into()))
        .map_err(flow::FlowError::Filing)
}

/// One transaction for the whole batch; if it fails, each request alone, so
/// that one bad request never costs the others theirs.
fn store_batch(store: &mut Store, batch: &[NewCase]) -> Vec<Filed> {
    let file = |w: &mut guichet_core::Writer<'_>, new: &NewCase| {
        let id = w.create_case(new)?;
        Ok((id, w.reference(id)?))
    };
    let together = store.write(|w| {
        batch
            .iter()
            .map(|new| file(w, new))
            .collect::<Result<Vec<_>, _>>()
    });
    match together {
        Ok(filed) => filed.into_iter().map(Ok).collect(),
        Err(_) => batch
            .iter()
            .map(|new| store.write(|w| file(w, new)))
            .collect(),
    }
}

/// What a USSD session leaves in gateway.db as it ends: the SMS it sends
/// (a filing's reference) and how it went.
struct Ending {
    sms: Vec<flow::Outgoing>,
    outcome: Outcome,
}

/// How a session ended well, for the figures.
pub struct Outcome {
    provider: &'static str,
    session_id: String,
    summary: SessionSummary,
    at: u64,
}

/// The outcomes of sessions that end without a filing, written by group
/// commit, off the async workers.
pub struct Outcomes(GroupCommit<Outcome, rusqlite::Result<()>>);

impl Outcomes {
    pub fn start(db: Arc<Mutex<GatewayDb>>) -> std::io::Result<Outcomes> {
        let commit = GroupCommit::start("guichet-outcomes", move |batch: Vec<Outcome>| {
            let endings: Vec<Ending> = batch
                .into_iter()
                .map(|outcome| Ending {
                    sms: Vec::new(),
                    outcome,
                })
                .collect();
            write_endings(&locked(&db), &endings.iter().collect::<Vec<_>>())
        })?;
        Ok(Outcomes(commit))
    }

    async fn write(&self, outcome: Outcome) -> Result<(), flow::FlowError> {
        match self.0.submit(outcome).await {
            Some(written) => Ok(written?),
            None => Err(flow::FlowError::Stopped("the outcomes writer")),
        }
    }
}

/// One transaction for all; if it fails, each alone. One result per ending.
fn write_endings(db: &GatewayDb, batch: &[&Ending]) -> Vec<rusqlite::Result<()>> {
    match db.transaction(|| batch.iter().try_for_each(|e| write_ending(db, e))) {
        Ok(()) => batch.iter().map(|_| Ok(())).collect(),
        Err(_) => batch
            .iter()
            .map(|e| db.transaction(|| write_ending(db, e)))
            .collect(),
    }
}

fn write_ending(db: &GatewayDb, ending: &Ending) -> rusqlite::Result<()> {
    for sms in &ending.sms {
        db.enqueue_sms(&sms.event_key, &sms.phone, &sms.text, sms.at)?;
    }
    let o = &ending.outcome;
    db.record_ussd_outcome(
        o.provider,
        &o.session_id,
        "completed",
        &o.summary,
        None,
        o.at,
    )
}

/// USSD sessions and unfinished requests. They live for minutes, so they
/// are kept in memory: a restart forgets them (callers start again), while
/// cases, preferences, SMS and session outcomes are on disk.
#[derive(Default)]
pub struct Sessions {
    /// By provider, then by the provider's session id: a hop finds its
    /// session without building a key.
    live: Mutex<HashMap<&'static str, HashMap<String, Live>>>,
    drafts: Mutex<HashMap<String, (String, u64)>>,
}

/// A session still going: one that ended, by our END or the provider's
/// word, is forgotten at once (a hop on it would start afresh anyway), so
/// that the map holds only the sessions going now.
#[derive(Clone)]
struct Live {
    phone: String,
    session: Session,
    seen_text: String,
    updated_at: u64,
    /// Set once the session's request is handed over to be filed: from
    /// then on, every hop of the session answers with that filing's screen.
    filing: Option<tokio::sync::watch::Receiver<FilingAnswer>>,
}

/// Where a hop finds its session.
enum Going {
    /// At a step of the menus.
    At(Session),
    /// Its request was handed over to be filed.
    Filing(tokio::sync::watch::Receiver<FilingAnswer>),
}

/// Runs `work`, which may wait on the disk (the case store syncs every
/// commit, and its lock is held meanwhile). On an async worker, the
/// worker's other tasks move to another thread first, so that hops, which
/// are otherwise quick, can run on the workers without `spawn_blocking`.
pub fn blocking<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        // Outside a runtime, or on one thread where nothing can move.
        _ => work(),
    }
}

/// Locks the gateway's shared state. Every write is a transaction, so a
/// panic elsewhere cannot have left it half-written: a poisoned lock is
/// taken over rather than given up.
pub fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sessions {
    /// An unfinished request of this phone saved less than `window` ago.
    pub fn draft(&self, phone: &str, now: u64, window: u64) -> Option<String> {
        locked(&self.drafts)
            .get(phone)
            .filter(|(_, saved)| now.saturating_sub(*saved) <= window)
            .map(|(state, _)| state.clone())
    }

    pub fn save_draft(&self, phone: &str, state: String, now: u64) {
        locked(&self.drafts).insert(phone.to_string(), (state, now));
    }

    pub fn clear_draft(&self, phone: &str) {
        locked(&self.drafts).remove(phone);
    }

    /// Takes the unfinished request of a phone whose request is being filed.
    fn take_draft(&self, phone: &str) -> Option<TakenDraft> {
        let (state, saved) = locked(&self.drafts).remove(phone)?;
        Some(TakenDraft(phone.to_string(), state, saved))
    }

    /// Gives back a draft whose filing failed, unless the caller started
    /// another since.
    fn give_back_draft(&self, phone: &str, state: String, saved: u64) {
        locked(&self.drafts)
            .entry(phone.to_string())
            .or_insert((state, saved));
    }

    fn seen_text(&self, provider: &str, id: &str) -> Option<String> {
        locked(&self.live)
            .get(provider)?
            .get(id)
            .map(|l| l.seen_text.clone())
    }

    /// The session a hop continues, if it is still going.
    fn going(&self, hop: &Hop<'_>, now: u64, timeout: u64) -> Option<Going> {
        locked(&self.live)
            .get(hop.provider)?
            .get(hop.session_id)
            .filter(|l| l.phone == hop.phone && now.saturating_sub(l.updated_at) <= timeout)
            .map(|l| match &l.filing {
                Some(answer) => Going::Filing(answer.clone()),
                None => Going::At(l.session.clone()),
            })
    }

    /// Keeps a session as a hop left it (reusing its entry's strings).
    fn keep(&self, hop: &Hop<'_>, session: Session, now: u64) {
        let mut live = locked(&self.live);
        let of_provider = live.entry(hop.provider).or_default();
        match of_provider.get_mut(hop.session_id) {
            Some(l) => {
                l.phone.replace_range(.., hop.phone);
                l.seen_text.replace_range(.., hop.raw_text);
                l.session = session;
                l.updated_at = now;
                l.filing = None;
            }
            None => {
                let l = Live {
                    phone: hop.phone.to_string(),
                    session,
                    seen_text: hop.raw_text.to_string(),
                    updated_at: now,
                    filing: None,
                };
                of_provider.insert(hop.session_id.to_string(), l);
            }
        }
    }

    /// Keeps a session whose request is now handed over to be filed.
    fn keep_filing(
        &self,
        hop: &Hop<'_>,
        session: Session,
        answer: tokio::sync::watch::Receiver<FilingAnswer>,
        now: u64,
    ) {
        self.keep(hop, session, now);
        if let Some(l) = locked(&self.live)
            .get_mut(hop.provider)
            .and_then(|sessions| sessions.get_mut(hop.session_id))
        {
            l.filing = Some(answer);
        }
    }

    /// Forgets a session that is over (our END, or the provider's word);
    /// its flow if it was still going. A session being filed has its
    /// outcome recorded by the filing: None.
    fn finish(&self, provider: &str, id: &str) -> Option<Session> {
        let mut live = locked(&self.live);
        let ended = live.get_mut(provider)?.remove(id)?;
        ended.filing.is_none().then_some(ended.session)
    }

    /// Forgets sessions idle since before `before`, and drafts older than
    /// `draft_before`; returns the sessions forgotten, which never ended.
    fn expire(&self, before: u64, draft_before: u64) -> Vec<(&'static str, String, Session)> {
        let mut abandoned = Vec::new();
        for (provider, sessions) in locked(&self.live).iter_mut() {
            sessions.retain(|id, l| {
                if l.updated_at >= before {
                    return true;
                }
                // A filing records its own outcome.
                if l.filing.is_none() {
                    abandoned.push((*provider, id.clone(), l.session.clone()));
                }
                false
            });
        }
        locked(&self.drafts).retain(|_, (_, saved)| *saved >= draft_before);
        abandoned
    }
}

/// One USSD hop, as every provider's adapter hands it over.
pub struct Hop<'a> {
    pub provider: &'static str,
    pub session_id: &'a str,
    pub phone: &'a str,
    /// The caller's latest input; None on the first hop.
    pub input: Option<&'a str>,
    /// What the provider sent, kept to compute the next hop's input.
    pub raw_text: &'a str,
}

/// How a session ended, as the provider reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// Ended by our END screen.
    Completed,
    /// The caller hung up or the network dropped the session.
    Abandoned,
    /// The operator or network failed.
    Failed,
}

impl SessionEnd {
    fn as_str(self) -> &'static str {
        match self {
            SessionEnd::Completed => "completed",
            SessionEnd::Abandoned => "abandoned",
            SessionEnd::Failed => "failed",
        }
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Gateway {
    pub fn new(
        config: Config,
        catalog: Catalog,
        store: Store,
        db: GatewayDb,
    ) -> std::io::Result<Gateway> {
        let (config, catalog) = (Arc::new(config), Arc::new(catalog));
        let store = Arc::new(Mutex::new(store));
        let db = Arc::new(Mutex::new(db));
        let sessions = Arc::new(Sessions::default());
        Ok(Gateway {
            outcomes: Outcomes::start(db.clone())?,
            filing: Filing::start(
                config.clone(),
                catalog.clone(),
                store.clone(),
                db.clone(),
                sessions.clone(),
            )?,
            sessions,
            menus: flow::Menus::default(),
            languages: catalog
                .languages()
                .into_iter()
                .filter(|(code, _)| config.languages.contains(code))
                .collect(),
            keywords: crate::sms::Keywords::new(&catalog, &config.languages),
            limiter: RateLimiter::default(),
            sms_queued: tokio::sync::Notify::new(),
            config,
            catalog,
            store,
            db,
        })
    }

    /// Answers one USSD hop. Never fails: trouble behind the screens gets
    /// a polite END in the caller's language.
    pub async fn ussd(&self, hop: &Hop<'_>) -> Reply {
        let now = now_ms();
        let lang_of = |db: &GatewayDb| {
            db.language(hop.phone)
                .ok()
                .flatten()
                .unwrap_or_else(|| self.config.default_language.clone())
        };
        if !self
            .limiter
            .allow(hop.phone, self.config.ussd.hops_per_minute, now)
        {
            let lang = lang_of(&locked(&self.db));
            return Reply::End(self.catalog.text(&lang, "too-many-attempts", &[]));
        }
        match self.ussd_hop(hop, now).await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::error!(provider = hop.provider, error = %e, "USSD hop failed");
                let lang = lang_of(&locked(&self.db));
                Reply::End(self.catalog.text(&lang, "service-unavailable", &[]))
            }
        }
    }

    async fn ussd_hop(&self, hop: &Hop<'_>, now: u64) -> Result<Reply, flow::FlowError> {
        let timeout = self.config.ussd.session_timeout_secs * 1000;
        let existing = self.sessions.going(hop, now, timeout);
        let mut ctx = Ctx {
            config: &self.config,
            catalog: &self.catalog,
            store: &self.store,
            db: &self.db,
            sessions: &self.sessions,
            menus: &self.menus,
            languages: &self.languages,
            phone: hop.phone,
            now,
            to_file: None,
        };
        let (session, reply) = match (existing, hop.input) {
            // The hop that filed timed out and is repeated, or the caller
            // went on: the same screen, and the request filed once.
            (Some(Going::Filing(answer)), _) => {
                let reply = filing_answer(answer).await;
                self.sessions.finish(hop.provider, hop.session_id);
                self.sms_queued();
                return reply;
            }
            (Some(Going::At(mut session)), Some(input)) => {
                let reply = flow::advance(&mut session, input, &mut ctx)?;
                (session, reply)
            }
            // The provider repeated a first hop: show the same screen again.
            (Some(Going::At(mut session)), None) => {
                let reply = flow::render(&mut session, &mut ctx, None)?;
                (session, reply)
            }
            (None, _) => flow::start(&mut ctx)?,
        };
        // A session's end is recorded; a filing's (which ends its session)
        // with its SMS, by the thread that stores the request.
        if reply.is_end() {
            let outcome = Outcome {
                provider: hop.provider,
                session_id: hop.session_id.to_string(),
                summary: session.summary(&self.config),
                at: now,
            };
            match ctx.to_file.take() {
                Some(to_file) => {
                    // Handed over: should this hop's answer never reach
                    // the caller, a repeat of it waits for this filing, and
                    // a redial finds no request to resume.
                    let (answer, waiting) = tokio::sync::watch::channel(None);
                    let draft = self.sessions.take_draft(hop.phone);
                    self.sessions
                        .keep_filing(hop, session, waiting.clone(), now);
                    let job = FilingJob {
                        to_file,
                        outcome,
                        answer,
                        draft,
                    };
                    self.filing.file(job).await;
                    let reply = filing_answer(waiting).await;
                    self.sessions.finish(hop.provider, hop.session_id);
                    self.sms_queued();
                    return reply;
                }
                None => self.outcomes.write(outcome).await?,
            }
        }
        if reply.is_end() {
            self.sessions.finish(hop.provider, hop.session_id);
        } else {
            self.sessions.keep(hop, session, now);
        }
        Ok(reply)
    }

    /// Tells the outbox that SMS were queued (committed).
    pub fn sms_queued(&self) {
        self.sms_queued.notify_one();
    }

    /// Waits until SMS are queued, or `at_most`: the outbox's pause when it
    /// found nothing due (messages waiting for a retry come due meanwhile).
    pub async fn wait_for_sms(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.sms_queued.notified()).await;
    }

    /// What was typed before, for providers that resend every input.
    pub fn seen_text(&self, provider: &str, session_id: &str) -> Option<String> {
        self.sessions.seen_text(provider, session_id)
    }

    /// A provider says a session is over (Africa's Talking's end-of-session
    /// notification, an XML release or timeout). Counts it for the
    /// abandonment figures; the draft stays so the caller can resume.
    pub fn ussd_ended(&self, provider: &str, session_id: &str, end: SessionEnd, hops: Option<u32>) {
        let Some(session) = self.sessions.finish(provider, session_id) else {
            return;
        };
        let summary = session.summary(&self.config);
        let db = locked(&self.db);
        if let Err(e) =
            db.record_ussd_outcome(provider, session_id, end.as_str(), &summary, hops, now_ms())
        {
            tracing::error!(error = %e, "recording the end of a USSD session failed");
        }
    }

    /// Sessions the network let lapse without a word count as abandoned.
    pub fn expire_sessions(&self) {
        let now = now_ms();
        let timeout = Duration::from_secs(self.config.ussd.session_timeout_secs).as_millis() as u64;
        let window = self.config.ussd.resume_window_secs * 1000;
        let abandoned = self
            .sessions
            .expire(now.saturating_sub(timeout), now.saturating_sub(window));
        let db = locked(&self.db);
        for (provider, id, session) in abandoned {
            let summary = session.summary(&self.config);
            if let Err(e) = db.record_ussd_outcome(provider, &id, "abandoned", &summary, None, now)
            {
                tracing::error!(error = %e, "recording an abandoned session failed");
            }
        }
    }

    /// Rate limit for incoming SMS.
    pub fn allow_sms(&self, phone: &str) -> bool {
        self.limiter.allow(
            &format!("sms:{phone}"),
            self.config.sms.per_minute,
            now_ms(),
        )
    }
}

/// A token bucket per phone, in memory: a burst of `per_minute` hops, then
/// one more every 60/per_minute seconds.
#[derive(Default)]
struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, u64)>>,
}

impl RateLimiter {
    fn allow(&self, key: &str, per_minute: u32, now: u64) -> bool {
        let mut buckets = locked(&self.buckets);
        if buckets.len() > 100_000 {
            // Forget idle phones rather than grow without bound.
            buckets.retain(|_, (_, last)| now.saturating_sub(*last) < 60_000);
        }
        let capacity = per_minute.max(1) as f64;
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((capacity, now));
        let refill = now.saturating_sub(*last) as f64 * capacity / 60_000.0;
        *tokens = (*tokens + refill).min(capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A new health request of `phone` in Pire (unit-01).
    pub(crate) fn new_case(phone: &str) -> NewCase {
        NewCase {
            service: "sante".into(),
            requester_phone: phone.into(),
            requester_name: String::new(),
            requester_language: "wo".into(),
            locality: "Pire".into(),
            channel: guichet_core::Channel::Ussd,
            mediator: None,
            unit: "unit-01".into(),
            assignee: None,
            priority: guichet_core::Priority::Normal,
            description: String::new(),
            status: guichet_core::Status::Received,
        }
    }

    /// Only sessions still going are held: one ended by our END or by the
    /// provider is forgotten at once, so its end is counted once, and only
    /// sessions that never ended count as abandoned when they lapse.
    #[test]
    fn ended_sessions_are_forgotten_and_counted_once() {
        let sessions = Sessions::default();
        let hop = |id| Hop {
            provider: "at",
            session_id: id,
            phone: "+221770000001",
            input: None,
            raw_text: "1*2",
        };
        let main = || crate::flow::Session {
            lang: "wo".into(),
            step: crate::flow::Step::Main,
        };
        for id in ["ended-by-us", "hung-up", "lapsed"] {
            sessions.keep(&hop(id), main(), 0);
            assert!(sessions.going(&hop(id), 1, 180_000).is_some());
            assert_eq!(sessions.seen_text("at", id).as_deref(), Some("1*2"));
        }
        // What our END does.
        sessions.finish("at", "ended-by-us");
        assert!(sessions.going(&hop("ended-by-us"), 3, 180_000).is_none());
        assert_eq!(sessions.seen_text("at", "ended-by-us"), None);
        assert!(
            sessions.finish("at", "ended-by-us").is_none(),
            "ended already"
        );
        assert!(sessions.finish("at", "hung-up").is_some());
        assert!(sessions.finish("at", "hung-up").is_none(), "counted once");
        let abandoned = sessions.expire(10, 0);
        let ids: Vec<&str> = abandoned.iter().map(|(_, id, _)| id.as_str()).collect();
        assert_eq!(ids, ["lapsed"]);
        assert!(sessions.expire(10, 0).is_empty());
    }

    fn hop<'a>(session_id: &'a str, phone: &'a str, input: Option<&'a str>) -> Hop<'a> {
        Hop {
            provider: "at",
            session_id,
            phone,
            input,
            raw_text: "",
        }
    }

    /// A gateway where `phone`'s session "s1" stands at the confirmation
    /// of a new request, one hop before its filing.
    async fn at_confirmation(dir: &std::path::Path, phone: &str) -> Gateway {
        let gw = crate::sms::tests::gateway(dir);
        locked(&gw.db).set_language(phone, "en").unwrap();
        for input in [None, Some("1"), Some("1"), Some("1"), Some("birth record")] {
            let screen = gw.ussd(&hop("s1", phone, input)).await;
            assert!(!screen.is_end(), "{screen:?}");
        }
        gw
    }

    /// A filing hop whose answer never reached the caller (the provider
    /// gave up while the commit waited on the disk), then the caller dialing
    /// again and the provider repeating the hop: one request, its screen on
    /// the repeat, nothing left to resume, the session counted once.
    #[tokio::test]
    async fn a_filing_whose_answer_timed_out_files_once() {
        use futures_util::FutureExt;
        let dir = tempfile::TempDir::new().unwrap();
        let phone = "+221771112233";
        let gw = at_confirmation(dir.path(), phone).await;
        let hop = |session_id, input| hop(session_id, phone, input);
        // The disk is stuck: the filing is queued, and its hop dropped.
        let stuck = locked(&gw.store);
        let timed_out = gw.ussd(&hop("s1", Some("1"))).now_or_never();
        assert!(timed_out.is_none(), "the filing waits for the store");
        drop(stuck);

        let redial = gw.ussd(&hop("s2", None)).await;
        assert!(redial.text().contains("New request"), "{redial:?}");
        let repeated = gw.ussd(&hop("s1", Some("1"))).await;
        let cases = locked(&gw.store)
            .list_cases(&guichet_core::CaseQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(cases.len(), 1, "filed once");
        assert!(
            repeated.is_end() && repeated.text().contains(&cases[0].reference),
            "{repeated:?}"
        );
        assert_eq!(
            locked(&gw.db).ussd_outcomes().unwrap(),
            [("completed".to_string(), 1)]
        );
        let again = gw.ussd(&hop("s1", Some("1"))).await;
        assert!(!again.is_end(), "the session is over: {again:?}");
        assert_eq!(locked(&gw.store).count_cases().unwrap(), 1);
    }

    /// A filing the store refuses costs the caller nothing typed: the
    /// draft taken at hand-off is given back, to resume on the next dial.
    #[tokio::test]
    async fn a_failed_filing_gives_the_draft_back() {
        let dir = tempfile::TempDir::new().unwrap();
        // No provider lets such a number through: the store refuses it.
        let phone = "not a phone";
        let gw = at_confirmation(dir.path(), phone).await;
        let hop = |session_id, input| hop(session_id, phone, input);
        let failed = gw.ussd(&hop("s1", Some("1"))).await;
        assert!(
            failed.is_end() && !failed.text().contains("reference"),
            "{failed:?}"
        );
        assert_eq!(locked(&gw.store).count_cases().unwrap(), 0);
        let redial = gw.ussd(&hop("s2", None)).await;
        assert!(redial.text().contains("did not finish"), "{redial:?}");
    }

    #[test]
    fn filings_are_stored_together_and_a_bad_one_costs_no_one_else() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut store = Store::open(dir.path().join("cases.db"), 999).unwrap();
        let batch: Vec<NewCase> = (0..24)
            .map(|i| match i {
                7 => new_case("not a phone"),
                _ => new_case(&format!("+2217700000{i:02}")),
            })
            .collect();
        let results = store_batch(&mut store, &batch);
        assert_eq!(results.len(), 24, "one result per request, in order");
        assert!(results[7].is_err(), "the invalid request is refused");
        let filed: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(filed.len(), 23);
        let mut references: Vec<&String> = filed.iter().map(|(_, r)| r).collect();
        references.sort();
        references.dedup();
        assert_eq!(references.len(), 23, "every filing got its own reference");
        assert_eq!(store.count_cases().unwrap(), 23);
        for (i, result) in results.iter().enumerate().filter(|(i, _)| *i != 7) {
            let (id, reference) = result.as_ref().unwrap();
            let case = store.case(*id).unwrap();
            assert_eq!(&case.reference, reference);
            assert_eq!(case.requester_phone, batch[i].requester_phone);
        }
    }

    #[test]
    fn a_phone_is_limited_and_recovers() {
        let limiter = RateLimiter::default();
        for _ in 0..5 {
            assert!(limiter.allow("+221", 5, 0));
        }
        assert!(!limiter.allow("+221", 5, 0));
        assert!(limiter.allow("+222", 5, 0), "other phones are not affected");
        assert!(
            limiter.allow("+221", 5, 12_000),
            "one token back after 12 s"
        );
    }
}
