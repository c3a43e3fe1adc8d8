//! Issue 6's full loop, with real processes on loopback: the sync server,
//! the USSD gateway (syncing as an intake device), a tablet's store and
//! sync client as the app holds them, a local fake of Africa's Talking's
//! messaging API, and headless Chromium for the supervisor's dashboard.

use guichet_core::{EventKind, Field, Status, Value};
use guichet_e2e::*;
use serde_json::Value as Json;
use std::time::Duration;
use tempfile::TempDir;

const SUPERVISOR: (&str, &str) = ("mariama", "tableau-de-bord-2026");
const LOUGA_SUPERVISOR: (&str, &str) = ("ousmane", "louga-seulement-1");

/// Ends a USSD session as Africa's Talking's end-of-session notification does.
async fn hang_up(gateway: &Process, session: &str) {
    let form = [("sessionId", session), ("status", "Incomplete")];
    let status = reqwest::Client::new()
        .post(gateway.at(&format!("/at/{AT_SECRET}/ussd/end")))
        .form(&form)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_wolof_request_a_mediator_and_the_supervisors_figures() {
    let dir = TempDir::new().unwrap();
    let Service {
        server,
        server_dir,
        gateway,
        callback,
        sent,
    } = service(dir.path()).await;

    // A citizen dials in Wolof and files a request.
    let citizen = "+221775550101";
    let first = dial(&callback, "w1", citizen, &[]).await;
    hang_up(&gateway, "w1").await;
    let wolof = option(&first[0], "Wolof");
    let screens = dial(&callback, "w2", citizen, &[&wolof, "1", "1", "1", "0", "1"]).await;
    let end = screens.last().unwrap();
    assert!(
        end.starts_with("END ") && end.contains("Sa laaj bindu na"),
        "in Wolof: {screens:?}"
    );
    let reference = reference_in(end);

    // Someone gives up halfway through a request for Thiès.
    let english = option(&first[0], "English");
    let dropped = dial(&callback, "d1", "+221776660000", &[&english, "1", "1", "1"]).await;
    assert!(dropped.last().unwrap().starts_with("CON "), "{dropped:?}");
    hang_up(&gateway, "d1").await;

    // A mediator files for a citizen, who confirms by SMS.
    let (mediator, helped) = ("+221770000009", "+221771234599");
    let first = dial(&callback, "m1", mediator, &[]).await;
    let english = option(&first[0], "English");
    let menu = dial(&callback, "m2", mediator, &[&english]).await;
    let act = option(menu.last().unwrap(), "Act for a citizen");
    let filed = dial(
        &callback,
        "m3",
        mediator,
        &[&act, "1234", "771234599", "1", "1", "0", "1"],
    )
    .await;
    let end = filed.last().unwrap();
    assert!(end.starts_with("END ") && end.contains(helped), "{filed:?}");
    let helped_reference = reference_in(&end.replace(helped, ""));
    let asked = wait_sms(&sent, 10, |(to, text)| {
        to == helped && text.contains("Awa Ndiaye") && text.contains(&helped_reference)
    })
    .await;
    assert!(asked.is_some(), "{:?}", sent.lock().unwrap());
    assert_eq!(
        at_sms(&gateway, helped, &format!("YES {helped_reference}"), "c1").await,
        200
    );

    // The citizen asks about the request (a repeat contact); someone else
    // tracks it from another phone and learns only its status.
    let own = dial(&callback, "t1", citizen, &["2", &reference]).await;
    assert!(own.last().unwrap().contains("État civil"), "{own:?}");
    assert_eq!(
        at_sms(&gateway, citizen, &format!("track {reference}"), "tr-1").await,
        200
    );
    let first = dial(&callback, "o1", "+221778889900", &[]).await;
    let english = option(&first[0], "English");
    let other = dial(
        &callback,
        "o2",
        "+221778889900",
        &[&english, "2", &reference],
    )
    .await;
    let seen = other.last().unwrap();
    assert!(
        seen.starts_with("END ") && seen.contains(&reference) && seen.contains("received"),
        "{other:?}"
    );
    for private in [
        "État civil",
        "Civil registration",
        citizen,
        "775550101",
        "Thiès",
    ] {
        assert!(
            !seen.contains(private),
            "{private} shown to a stranger: {seen}"
        );
    }

    // Both requests reach the tablet of unit-thies-01 through sync.
    let mut tablet = Tablet::enrol(
        &server_dir,
        &server.url(),
        "agent-7",
        "unit-thies-01",
        &dir.path().join("tablet.db"),
    );
    let case = tablet.receive(&reference).await;
    assert_eq!(case.requester_language, "wo");
    let helped_case = tablet.receive(&helped_reference).await;
    assert_eq!(helped_case.requester_phone, helped);
    for _ in 0..100 {
        let detail = tablet.store.get_case(helped_case.id).unwrap();
        let consent = detail.timeline.iter().any(|e| {
            matches!(&e.what, guichet_core::TimelineWhat::Event { kind: EventKind::Contact, text } if text.contains("confirmed"))
        });
        if consent {
            break;
        }
        tablet.sync().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let detail = tablet.store.get_case(helped_case.id).unwrap();
    assert!(
        format!("{:?}", detail.timeline).contains("confirmed"),
        "the citizen's consent reached the tablet: {:?}",
        detail.timeline
    );

    // The agent assigns the Wolof request, works on it offline, records
    // the citizen's complaint about the wait, resolves it, then syncs.
    tablet
        .store
        .write(|w| {
            w.update(case.id, &[(Field::Assignee, Value::text("agent-7"))])?;
            w.change_status(case.id, Status::Assigned)?;
            w.change_status(case.id, Status::InProgress)?;
            w.add_event(case.id, EventKind::Visit, "Visite faite")?;
            w.add_event(case.id, EventKind::Complaint, "Attente trop longue")?;
            w.change_status(case.id, Status::Resolved)
        })
        .unwrap();
    tablet.sync().await;
    let invite = wait_sms(&sent, 20, |(to, text)| {
        to == citizen && text.contains("NATT") && text.contains(&reference)
    })
    .await;
    assert!(
        invite.is_some(),
        "the Wolof invitation to rate: {:?}",
        sent.lock().unwrap()
    );

    // The citizen rates by SMS, in Wolof; the rating reaches the tablet.
    assert_eq!(
        at_sms(&gateway, citizen, &format!("natt {reference} 5"), "in-1").await,
        200
    );
    let thanks = wait_sms(&sent, 10, |(to, text)| {
        to == citizen && text.contains("jërëjëf")
    })
    .await;
    assert!(thanks.is_some(), "{:?}", sent.lock().unwrap());
    let mut rated = false;
    for _ in 0..100 {
        tablet.sync().await;
        if tablet.store.case(case.id).unwrap().rating == Some(5) {
            rated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rated, "the rating never reached the tablet");

    // The supervisor's figures, once the rating and the gateway's session
    // reports have reached the server.
    add_supervisor(&server_dir, SUPERVISOR.0, SUPERVISOR.1, &[]);
    add_supervisor(
        &server_dir,
        LOUGA_SUPERVISOR.0,
        LOUGA_SUPERVISOR.1,
        &["unit-louga-01"],
    );
    let mut body = Json::Null;
    for _ in 0..100 {
        let (status, answer) = figures(&server.url(), "", SUPERVISOR).await;
        assert_eq!(status, 200, "{answer}");
        body = answer;
        let f = &body["figures"];
        if f["satisfaction"]["ratings"] == 1 && f["ussd"]["sessions"] == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let f = &body["figures"];
    assert_eq!(f["received"]["total"], 2, "{f:#}");
    assert_eq!(f["received"]["by_channel"]["ussd"], 1);
    assert_eq!(f["received"]["by_channel"]["mediator"], 1);
    assert_eq!(f["received"]["by_language"]["wo"], 1);
    assert_eq!(f["processing"]["resolved"], 1);
    assert!(f["processing"]["median_hours"].as_f64().unwrap() < 1.0);
    // Asked about before it was resolved: not a first-contact resolution.
    assert_eq!(f["first_contact_resolution"]["count"], 0);
    assert_eq!(f["first_contact_resolution"]["of"], 1);
    assert_eq!(
        f["repeat_contacts"]["inquiries"], 2,
        "by USSD and by SMS; the stranger's track is not one"
    );
    assert_eq!(
        f["repeat_contacts"]["requests_asked_again"]["percent"],
        50.0
    );
    assert_eq!(f["complaints"]["count"], 1);
    assert_eq!(f["satisfaction"]["average"], 5.0);
    assert_eq!(
        f["satisfaction"]["distribution"],
        serde_json::json!([0, 0, 0, 0, 1])
    );
    assert_eq!(f["backlog"]["total"], 1);
    assert_eq!(f["backlog"]["by_status"]["received"], 1);
    // Completed: the filing, the mediator's filing, both tracks. Abandoned:
    // w1 and d1. Sessions left open (m1, m2, o1) count once they expire.
    assert_eq!(
        f["ussd"]["sessions"],
        6,
        "{:#}\ngateway:\n{}",
        f["ussd"],
        gateway.log_text()
    );
    assert_eq!(f["ussd"]["abandoned"], 2);
    assert_eq!(f["ussd"]["abandoned_in_flow"]["new_request"], 1);
    let hours: u64 = f["busiest"]["by_hour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(hours, 2);
    assert_eq!(body["units"], serde_json::json!(["unit-thies-01"]));

    // Scopes: the Louga supervisor sees none of Thiès; no credentials, no figures.
    let (status, louga) = figures(&server.url(), "", LOUGA_SUPERVISOR).await;
    assert_eq!(status, 200);
    assert_eq!(louga["figures"]["received"]["total"], 0);
    assert_eq!(louga["figures"]["ussd"]["sessions"], 0);
    let (status, _) = figures(&server.url(), "?unit=unit-thies-01", LOUGA_SUPERVISOR).await;
    assert_eq!(status, 403);
    let (status, _) = figures(&server.url(), "", (SUPERVISOR.0, "wrong password")).await;
    assert_eq!(status, 401);
    let (status, _) = figures(&server.url(), "?from=2026-13-01", SUPERVISOR).await;
    assert_eq!(status, 400);

    dashboard_shows_the_figures(&server, &body).await;

    // Both servers publish metrics in the Prometheus text format.
    let server_metrics = reqwest::get(server.at("/metrics")).await.unwrap();
    assert!(server_metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let server_metrics = server_metrics.text().await.unwrap();
    for expected in [
        "guichet_http_requests_total{route=\"/v1/sync\",method=\"POST\",status=\"200\"}",
        "guichet_http_request_duration_seconds_bucket{",
        "guichet_sync_operations_total{direction=\"received\"}",
        "guichet_cases 2",
    ] {
        assert!(
            server_metrics.contains(expected),
            "{expected} in:\n{server_metrics}"
        );
    }
    let gateway_metrics = reqwest::get(gateway.at("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "guichet_http_requests_total{route=\"/at/{secret}/ussd\",method=\"POST\",status=\"200\"}",
        "guichet_outbox_messages{status=\"sent\"}",
        "guichet_ussd_sessions_ended{outcome=\"abandoned\"} 2",
        "guichet_sync_pending_operations 0",
    ] {
        assert!(
            gateway_metrics.contains(expected),
            "{expected} in:\n{gateway_metrics}"
        );
    }
    assert!(!gateway_metrics.contains(AT_SECRET), "no secret in metrics");
    assert!(
        !gateway_metrics.contains("775550101"),
        "no phone number in metrics"
    );
}

/// The value at a dotted path of the API's figures.
fn at_path<'a>(figures: &'a Json, path: &str) -> &'a Json {
    path.split('.').fold(figures, |v, key| &v[key])
}

/// Signs in through the page's form in headless Chromium and checks every
/// figure shown against the API's answer, in French, then in English.
async fn dashboard_shows_the_figures(server: &Process, api: &Json) {
    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&server.at("/supervisor?lang=fr")).await.unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/supervisor/login"),
        "signed out, the page asks to sign in"
    );
    for (field, typed) in [("name", SUPERVISOR.0), ("password", SUPERVISOR.1)] {
        c.find(fantoccini::Locator::Id(field))
            .await
            .unwrap()
            .send_keys(typed)
            .await
            .unwrap();
    }
    c.find(fantoccini::Locator::Id("log-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(fantoccini::Locator::Css("[data-figure]"))
        .await
        .unwrap();
    assert_eq!(browser.text("h1").await, "Guichet : où en est le service");

    let shown = c
        .find_all(fantoccini::Locator::Css("[data-figure]"))
        .await
        .unwrap();
    assert_eq!(shown.len(), 9, "nine figures on cards");
    for element in shown {
        let path = element.attr("data-figure").await.unwrap().unwrap();
        let value = element.attr("data-value").await.unwrap().unwrap();
        let expected = at_path(&api["figures"], &path);
        let as_number = |v: &str| v.parse::<f64>().ok();
        assert_eq!(
            as_number(&value),
            expected.as_f64(),
            "{path}: page {value}, API {expected}"
        );
    }
    let figures = &api["figures"];
    let text_of = |path: &str| format!("[data-figure=\"{path}\"]");
    assert_eq!(
        browser.text(&text_of("received.total")).await,
        figures["received"]["total"].to_string()
    );
    assert_eq!(
        browser.text(&text_of("satisfaction.average")).await,
        "5 / 5"
    );
    let abandonment = figures["ussd"]["abandonment_percent"].as_f64().unwrap();
    assert_eq!(
        browser.text(&text_of("ussd.abandonment_percent")).await,
        format!("{abandonment} %").replace('.', ",")
    );
    assert_eq!(
        browser
            .attr(
                "[data-chart=\"by-channel\"] g[data-label=\"médiateur\"]",
                "data-value"
            )
            .await
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        browser
            .attr("[data-chart=\"ratings\"] g[data-label=\"5\"]", "data-value")
            .await
            .as_deref(),
        Some("1")
    );
    let row = browser.text("tr[data-unit=\"unit-thies-01\"]").await;
    assert!(row.starts_with("unit-thies-01 2 1"), "{row}");

    // In English, the same figures.
    c.find(fantoccini::Locator::LinkText("EN"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(fantoccini::Locator::XPath(
            "//h1[text()='Guichet: how the service is doing']",
        ))
        .await
        .unwrap();
    assert_eq!(
        browser.text(&text_of("ussd.abandonment_percent")).await,
        format!("{abandonment} %")
    );
    assert_eq!(
        browser
            .attr(
                "[data-chart=\"by-channel\"] g[data-label=\"mediator\"]",
                "data-value"
            )
            .await
            .as_deref(),
        Some("1")
    );
    browser.close().await;
}
