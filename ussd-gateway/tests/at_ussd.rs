//! Citizens through Africa's Talking: USSD menus, SMS commands, delivery
//! reports, bad input, against a real gateway process.

mod common;

use common::*;
use tempfile::TempDir;

/// The number shown before `name` on a menu screen.
fn option(screen: &str, name: &str) -> String {
    screen
        .lines()
        .find(|l| l.contains(name))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no '{name}' on screen:\n{screen}"))
        .to_string()
}

async fn start() -> (
    TempDir,
    Gateway,
    std::sync::Arc<std::sync::Mutex<Vec<SentSms>>>,
) {
    let dir = TempDir::new().unwrap();
    let (fake, sent) = fake_africastalking().await;
    let text = config(&dir.path().join("data"), &fake, "standalone_replica = 999");
    let gw = start_gateway(&text, dir.path());
    (dir, gw, sent)
}

/// First dial in English, then a new request to the end; returns the reference.
async fn file_request(gw: &Gateway, phone: &str, session: &str) -> String {
    let mut s = AtSession::new(gw, session, phone);
    let first = s.hop(None).await;
    let english = option(&first, "English");
    let end = s
        .run_from(
            first,
            &[
                &english,
                "1",
                "1",
                "1",
                "Acte de naissance * pour Moussa",
                "1",
            ],
        )
        .await;
    assert!(end.starts_with("END "), "{end}");
    let reference = reference_in(&end);
    assert!(guichet_core::reference::parse(&reference).is_ok(), "{end}");
    reference
}

trait RunFrom {
    async fn run_from(&mut self, first: String, inputs: &[&str]) -> String;
}

impl RunFrom for AtSession {
    async fn run_from(&mut self, first: String, inputs: &[&str]) -> String {
        let mut last = first;
        for i in inputs {
            assert!(last.starts_with("CON "), "session ended early: {last}");
            last = self.hop(Some(i)).await;
        }
        last
    }
}

#[tokio::test]
async fn a_citizen_files_a_request_and_gets_the_reference_by_ussd_and_sms() {
    let (_dir, gw, sent) = start().await;
    let first = AtSession::new(&gw, "s1", "+221771112233").hop(None).await;
    assert!(first.starts_with("CON "), "{first}");
    for name in ["Wolof", "Français", "English"] {
        assert!(
            first.contains(name),
            "the language menu lists {name}:\n{first}"
        );
    }
    let reference = file_request(&gw, "+221771112233", "s2").await;
    let sms = wait_for_sms(&sent, 1).await;
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].field("to"), "+221771112233");
    assert_eq!(sms[0].field("username"), "sandbox");
    assert_eq!(sms[0].field("enqueue"), "1");
    assert_eq!(sms[0].api_key, "test-api-key");
    assert!(sms[0].field("message").contains(&reference), "{:?}", sms[0]);
    // The language is remembered: the next dial opens on the main menu.
    let again = AtSession::new(&gw, "s3", "+221771112233").hop(None).await;
    assert!(again.contains("New request"), "{again}");
}

#[tokio::test]
async fn tracking_refuses_typos_and_shows_others_only_the_status() {
    let (_dir, gw, _sent) = start().await;
    let reference = file_request(&gw, "+221771112233", "s1").await;
    let mut typo = reference.clone().into_bytes();
    typo[2] = if typo[2] == b'9' { b'0' } else { typo[2] + 1 };
    let typo = String::from_utf8(typo).unwrap();

    let mut own = AtSession::new(&gw, "s2", "+221771112233");
    let refused = own.run(&["2", &typo]).await;
    assert!(
        refused.starts_with("CON ") && refused.contains("not valid"),
        "{refused}"
    );
    let found = own.hop(Some(&reference)).await;
    assert!(
        found.starts_with("END ") && found.contains("received"),
        "{found}"
    );
    assert!(
        found.contains("Civil registration"),
        "the requester sees the service: {found}"
    );

    let mut other = AtSession::new(&gw, "s3", "+221779998877");
    let first = other.hop(None).await;
    let english = option(&first, "English");
    let theirs = other.run_from(first, &[&english, "2", &reference]).await;
    assert!(theirs.contains("received"), "{theirs}");
    assert!(
        !theirs.contains("Civil registration") && !theirs.contains("Thiès"),
        "{theirs}"
    );
}

#[tokio::test]
async fn a_dropped_session_can_be_resumed() {
    let (_dir, gw, _sent) = start().await;
    let mut s = AtSession::new(&gw, "s1", "+221771112233");
    let first = s.hop(None).await;
    let english = option(&first, "English");
    let at_locality = s.run_from(first, &[&english, "1", "2"]).await;
    assert!(at_locality.contains("locality"), "{at_locality}");
    // The network drops the session; the citizen dials again.
    let mut again = AtSession::new(&gw, "s2", "+221771112233");
    let offer = again.hop(None).await;
    assert!(offer.contains("did not finish"), "{offer}");
    let resumed = again.hop(Some("1")).await;
    assert!(resumed.contains("locality"), "{resumed}");
    let end = again.run_from(resumed, &["2", "0", "1"]).await;
    assert!(
        end.starts_with("END ") && end.contains("reference"),
        "{end}"
    );
}

#[tokio::test]
async fn a_mediator_files_for_a_citizen_who_confirms_by_sms() {
    let (_dir, gw, sent) = start().await;
    let mut m = AtSession::new(&gw, "m1", "+221770000009");
    let first = m.hop(None).await;
    let english = option(&first, "English");
    let menu = m.run_from(first, &[&english]).await;
    let act = option(&menu, "Act for a citizen");
    let wrong = m.run_from(menu, &[&act, "9999"]).await;
    assert!(wrong.contains("Wrong PIN"), "{wrong}");
    let end = m
        .run_from(wrong, &["1234", "771234599", "2", "3", "0", "1"])
        .await;
    assert!(
        end.starts_with("END ") && end.contains("+221771234599"),
        "{end}"
    );
    let reference = reference_in(&end.replace("+221771234599", ""));
    let sms = wait_for_sms(&sent, 1).await;
    assert_eq!(sms[0].field("to"), "+221771234599");
    assert!(
        sms[0].field("message").contains("Awa Ndiaye")
            && sms[0].field("message").contains(&reference)
    );
    assert_eq!(
        at_sms(&gw, "+221771234599", &format!(" yes  {reference} "), "in-1").await,
        200
    );
    let sms = wait_for_sms(&sent, 2).await;
    assert_eq!(sms[1].field("to"), "+221771234599");
    assert!(sms[1].field("message").contains(&reference), "{:?}", sms[1]);
}

/// Three wrong PINs in a row lock the mediator out, whatever the sessions
/// they were typed in, and the lockout survives a restart: a new session
/// gets no fresh tries, and one already waiting at the PIN prompt is
/// refused even the right PIN.
#[tokio::test]
async fn a_mediator_locked_out_stays_locked_across_sessions_and_restarts() {
    let dir = TempDir::new().unwrap();
    let (fake, _sent) = fake_africastalking().await;
    let text = config(&dir.path().join("data"), &fake, "standalone_replica = 999");
    let mut gw = start_gateway(&text, dir.path());
    let mediator = "+221770000009";
    let mut first = AtSession::new(&gw, "m1", mediator);
    let languages = first.hop(None).await;
    let english = option(&languages, "English");
    let menu = first.run_from(languages, &[&english]).await;
    let act = option(&menu, "Act for a citizen");
    let mut waiting = AtSession::new(&gw, "m2", mediator);
    let prompt = waiting.run(&[&act]).await;
    assert!(
        prompt.starts_with("CON ") && prompt.contains("PIN"),
        "{prompt}"
    );

    let wrong = first.run_from(menu, &[&act, "1111", "2222"]).await;
    assert!(wrong.contains("Wrong PIN"), "{wrong}");
    let locked = first.hop(Some("3333")).await;
    assert!(
        locked.starts_with("END ") && locked.contains("Too many"),
        "{locked}"
    );
    let refused = waiting.hop(Some("1234")).await;
    assert!(
        refused.starts_with("END ") && refused.contains("Too many"),
        "the right PIN, while locked out: {refused}"
    );
    let again = AtSession::new(&gw, "m3", mediator).run(&[&act]).await;
    assert!(
        again.starts_with("END ") && again.contains("Too many"),
        "{again}"
    );

    gw.kill();
    let gw = start_gateway(&text, dir.path());
    let restarted = AtSession::new(&gw, "m4", mediator).run(&[&act]).await;
    assert!(
        restarted.starts_with("END ") && restarted.contains("Too many"),
        "after a restart: {restarted}"
    );
}

#[tokio::test]
async fn sms_commands_are_forgiving_and_answered_once() {
    let (_dir, gw, sent) = start().await;
    let reference = file_request(&gw, "+221771112233", "s1").await;
    wait_for_sms(&sent, 1).await;
    let phone = "+221771112233";
    assert_eq!(
        at_sms(&gw, phone, &format!("  Track   {reference}"), "a").await,
        200
    );
    assert_eq!(
        at_sms(&gw, phone, &format!("  Track   {reference}"), "a").await,
        200,
        "a retried callback"
    );
    assert_eq!(at_sms(&gw, phone, &reference, "b").await, 200);
    assert_eq!(at_sms(&gw, phone, "what is this", "c").await, 200);
    assert_eq!(at_sms(&gw, phone, "stop", "d").await, 200);
    let sms = wait_for_sms(&sent, 5).await;
    assert_eq!(sms.len(), 5, "one reply per message: {sms:?}");
    assert!(sms[1].field("message").contains("received"), "{:?}", sms[1]);
    assert!(sms[2].field("message").contains("received"), "{:?}", sms[2]);
    assert!(
        sms[3].field("message").contains("TRACK"),
        "help names the keywords: {:?}",
        sms[3]
    );
    assert!(
        sms[4].field("message").to_lowercase().contains("no longer"),
        "{:?}",
        sms[4]
    );
}

#[tokio::test]
async fn delivery_reports_update_the_outbox() {
    let (_dir, gw, sent) = start().await;
    file_request(&gw, "+221771112233", "s1").await;
    wait_for_sms(&sent, 1).await;
    let health = || async {
        reqwest::get(gw.at("/health"))
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    for _ in 0..50 {
        if health().await["outbox"]["sent"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let form = [
        ("id", "ATXid_0"),
        ("status", "Success"),
        ("phoneNumber", "+221771112233"),
        ("networkCode", "63902"),
    ];
    let status = reqwest::Client::new()
        .post(gw.at(&format!("/at/{SECRET}/dlr")))
        .form(&form)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert_eq!(health().await["outbox"]["delivered"], 1);
}

#[tokio::test]
async fn bad_input_gets_a_clean_answer_and_strangers_learn_nothing() {
    let (_dir, gw, _sent) = start().await;
    let http = reqwest::Client::new();
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let http = http.clone();
        async move {
            http.post(path)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let ussd = gw.at(&format!("/at/{SECRET}/ussd"));
    let ok_form = |text: String| {
        vec![
            ("sessionId", "x".to_string()),
            ("phoneNumber", "+221771112233".to_string()),
            ("text", text),
        ]
    };
    assert_eq!(
        post(gw.at("/at/wrong-secret/ussd"), ok_form(String::new())).await,
        404
    );
    assert_eq!(
        post(ussd.clone(), vec![("sessionId", "x".into())]).await,
        400,
        "missing phone"
    );
    let bad_phone = vec![
        ("sessionId", "x".into()),
        ("phoneNumber", "not-a-phone".into()),
        ("text", String::new()),
    ];
    assert_eq!(post(ussd.clone(), bad_phone).await, 400);
    assert_eq!(
        post(ussd.clone(), ok_form("1".repeat(2_000))).await,
        400,
        "oversized text"
    );
    let huge = vec![
        ("sessionId", "x".to_string()),
        ("phoneNumber", "+221771112233".to_string()),
        ("text", "1".repeat(100_000)),
    ];
    assert_eq!(post(ussd.clone(), huge).await, 413);
    let invalid_utf8 = http
        .post(&ussd)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"sessionId=x&phoneNumber=%2B221771112233&text=%FF%FE".to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    // Never read as something else (replacement characters in a case):
    // refused, as the XML dialect refuses a body that is not UTF-8.
    assert_eq!(invalid_utf8, 400, "a form that is not UTF-8");
    // An unknown session with inputs starts a fresh one rather than failing.
    let mut unknown = AtSession::new(&gw, "never-seen", "+221771112233");
    unknown.inputs = vec!["1".into(), "2".into()];
    let answer = unknown.hop(Some("3")).await;
    assert!(answer.starts_with("CON "), "{answer}");
    // One phone hammering the service is slowed down, politely.
    let mut last = String::new();
    for i in 0..40 {
        last = AtSession::new(&gw, &format!("flood-{i}"), "+221775550000")
            .hop(None)
            .await;
    }
    assert!(last.starts_with("END "), "{last}");
    assert!(
        !gw.log_text().contains("771112233"),
        "no phone number in the logs above debug"
    );
}

#[tokio::test]
async fn the_xml_dialect_serves_the_same_menus() {
    let (_dir, gw, _sent) = start().await;
    let url = gw.at(&format!("/xml/{SECRET}/ussd"));
    let http = reqwest::Client::new();
    let hop = |kind: u8, msg: &str| {
        format!("<ussd><msisdn>221771112233</msisdn><sessionid>X1</sessionid><type>{kind}</type><msg>{msg}</msg></ussd>")
    };
    let send = |body: String| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http.post(url).body(body).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, first) = send(hop(1, "*123#")).await;
    assert_eq!(status, 200);
    assert!(
        first.starts_with("<ussd><type>2</type><msg>") && first.contains("English"),
        "{first}"
    );
    let english = option(&first, "English");
    let (_, menu) = send(hop(2, &english)).await;
    assert!(menu.contains("New request"), "{menu}");
    let (_, released) = send(hop(3, "")).await;
    assert!(released.starts_with("<ussd><type>3</type>"), "{released}");
    // A session that times out waiting for the caller is abandoned, like
    // one the caller released, never failed.
    let timed_out = |kind: u8| hop(kind, "*123#").replace("X1", "X3");
    let (status, _) = send(timed_out(1)).await;
    assert_eq!(status, 200);
    let (_, ended) = send(timed_out(4)).await;
    assert!(ended.starts_with("<ussd><type>3</type>"), "{ended}");
    let metrics = reqwest::get(gw.at("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ended: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("guichet_ussd_sessions_ended{"))
        .collect();
    assert_eq!(
        ended,
        ["guichet_ussd_sessions_ended{outcome=\"abandoned\"} 2"],
        "{metrics}"
    );
    let (status, _) = send("<ussd><sessionid>X2</sessionid><type>1".into()).await;
    assert_eq!(status, 400, "malformed XML");
    let (status, _) = send(hop(7, "")).await;
    assert_eq!(status, 400, "unknown type");
}

#[test]
fn measure_tells_what_a_text_costs() {
    let run = |text: &str| -> serde_json::Value {
        let out = std::process::Command::new(BIN)
            .args(["measure", text])
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let euro = format!("{}€{}", "a".repeat(152), "b".repeat(152));
    let m = run(&euro);
    assert_eq!(m["encoding"], "gsm7");
    assert_eq!(m["units"], 306);
    assert_eq!(
        m["segments"].as_array().unwrap().len(),
        3,
        "an escape pair is never split"
    );
    let wolof = run("Guichet: yónnee TOPP");
    assert_eq!(
        (wolof["encoding"].as_str(), wolof["fits_ussd"].as_bool()),
        (Some("ucs2"), Some(true))
    );
}

#[test]
fn hash_pin_salts_each_pin_and_refuses_what_no_keypad_types() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let by_argument = Command::new(BIN)
        .args(["hash-pin", "4821"])
        .output()
        .unwrap();
    let mut child = Command::new(BIN)
        .arg("hash-pin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"4821\n").unwrap();
    let by_stdin = child.wait_with_output().unwrap();
    let hashes: Vec<String> = [by_argument, by_stdin]
        .into_iter()
        .map(|out| {
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        })
        .collect();
    assert!(hashes[0].starts_with("$argon2id$"), "{}", hashes[0]);
    assert!(hashes[1].starts_with("$argon2id$"), "{}", hashes[1]);
    assert_ne!(hashes[0], hashes[1], "each hash has its own salt");
    let refused = Command::new(BIN)
        .args(["hash-pin", "12ab"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("digits"));
}

#[test]
fn sigterm_stops_the_gateway_gracefully() {
    let dir = TempDir::new().unwrap();
    let text = config(
        &dir.path().join("data"),
        "http://127.0.0.1:9",
        "standalone_replica = 999",
    );
    let mut gw = start_gateway(&text, dir.path());
    let pid = gw.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(gw.child.wait().unwrap().success());
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(gw.log_text().contains("stopped"));
}
