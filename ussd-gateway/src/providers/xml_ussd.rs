//! An XML-over-HTTP operator USSD dialect (as Southern-African aggregators
//! speak it). Unlike Africa's Talking, each hop carries only the latest
//! input.
//!
//! `POST /xml/{secret}/ussd` with
//! `<ussd><msisdn>27829991234</msisdn><sessionid>S1</sessionid><type>1</type><msg>*120*1#</msg></ussd>`
//! (type 1 new session, 2 user response, 3 released by the user, 4 timeout);
//! the answer is `<ussd><type>2</type><msg>...</msg></ussd>` (2 continue,
//! 3 end).

use super::{authorized, e164, AppState, Peer};
use crate::flow::Reply;
use crate::gateway::{Hop, SessionEnd};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use quick_xml::events::Event;
use quick_xml::Reader;

pub const NAME: &str = "xml";

pub fn routes() -> Router<AppState> {
    Router::new().route("/xml/{secret}/ussd", post(ussd))
}

/// One hop, as the operator's gateway sends it.
#[derive(Debug, Default, PartialEq)]
pub struct XmlHop {
    pub msisdn: String,
    pub session_id: String,
    pub kind: u8,
    pub msg: String,
}

const MAX_BODY: usize = 4_096;

/// Reads a hop; anything malformed, unknown or too long is an error.
pub fn parse(body: &[u8]) -> Result<XmlHop, String> {
    if body.len() > MAX_BODY {
        return Err("request too large".into());
    }
    let text = std::str::from_utf8(body).map_err(|_| "the request is not UTF-8")?;
    let mut reader = Reader::from_str(text);
    let mut hop = XmlHop::default();
    let mut path: Vec<String> = Vec::new();
    let mut value = String::new();
    loop {
        match reader
            .read_event()
            .map_err(|e| format!("malformed XML: {e}"))?
        {
            Event::Start(e) => {
                path.push(e.local_name().as_ref().to_string());
                value.clear();
            }
            Event::Text(t) => value.push_str(&t.xml10_content()),
            Event::CData(c) => value.push_str(&c),
            Event::GeneralRef(r) => {
                let resolved = match r
                    .resolve_char_ref()
                    .map_err(|e| format!("malformed XML: {e}"))?
                {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r)
                        .ok_or("unknown XML entity")?
                        .to_string(),
                };
                value.push_str(&resolved);
            }
            Event::End(_) => {
                let field = path.pop().unwrap_or_default();
                if path.len() == 1 && path[0] == "ussd" {
                    let v = std::mem::take(&mut value);
                    match field.as_str() {
                        "msisdn" => hop.msisdn = v,
                        "sessionid" => hop.session_id = v,
                        "type" => {
                            hop.kind = v.trim().parse().map_err(|_| "type is not a number")?
                        }
                        "msg" => hop.msg = v,
                        _ => {}
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if hop.session_id.is_empty() || hop.session_id.len() > 128 {
        return Err("sessionid is missing or too long".into());
    }
    if !(1..=4).contains(&hop.kind) {
        return Err("type must be 1, 2, 3 or 4".into());
    }
    Ok(hop)
}

/// The answer document.
pub fn answer(reply: &Reply) -> String {
    let (kind, msg) = match reply {
        Reply::Con(t) => (2, t.as_str()),
        Reply::End(t) => (3, t.as_str()),
    };
    format!(
        "<ussd><type>{kind}</type><msg>{}</msg></ussd>",
        quick_xml::escape::escape(msg)
    )
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn ussd(
    State(gw): State<AppState>,
    Path(secret): Path<String>,
    Peer(peer): Peer,
    body: Bytes,
) -> Response {
    let allowed = gw
        .config
        .providers
        .xml
        .as_ref()
        .is_some_and(|c| authorized(&c.auth, &secret, peer));
    if !allowed {
        return StatusCode::NOT_FOUND.into_response();
    }
    let hop = match parse(&body) {
        Ok(h) => h,
        Err(why) => {
            return xml(
                StatusCode::BAD_REQUEST,
                format!("<error>{}</error>", quick_xml::escape::escape(why)),
            )
        }
    };
    let Some(phone) = e164(&hop.msisdn) else {
        return xml(
            StatusCode::BAD_REQUEST,
            "<error>msisdn is not a phone number</error>".into(),
        );
    };
    // On the worker: what may wait on the disk steps aside by itself.
    let reply = match hop.kind {
        // Released by the caller, or timed out waiting for them: either
        // way the caller left, which the figures count as abandoned (failed
        // is the operator's failure, which this dialect never reports).
        3 | 4 => {
            gw.ussd_ended(NAME, &hop.session_id, SessionEnd::Abandoned, None);
            Reply::End(String::new())
        }
        kind => {
            gw.ussd(&Hop {
                provider: NAME,
                session_id: &hop.session_id,
                phone: &phone,
                input: (kind == 2).then_some(hop.msg.as_str()),
                raw_text: &hop.msg,
            })
            .await
        }
    };
    xml(StatusCode::OK, answer(&reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_parse_and_answers_escape() {
        let hop = parse(
            b"<ussd><msisdn>27829991234</msisdn><sessionid>S1</sessionid><type>2</type><msg>Awa &amp; Moussa &#233;</msg></ussd>",
        )
        .unwrap();
        assert_eq!(hop.msisdn, "27829991234");
        assert_eq!((hop.kind, hop.msg.as_str()), (2, "Awa & Moussa é"));
        assert_eq!(
            answer(&Reply::Con("1 <Oui> & 2".into())),
            "<ussd><type>2</type><msg>1 &lt;Oui&gt; &amp; 2</msg></ussd>"
        );
        assert_eq!(
            answer(&Reply::End("x".into())),
            "<ussd><type>3</type><msg>x</msg></ussd>"
        );
    }

    #[test]
    fn malformed_hops_are_refused() {
        for bad in [
            &b"<ussd><msisdn>1</msisdn><type>1</type></ussd>"[..],
            b"<ussd><sessionid>S</sessionid><type>9</type></ussd>",
            b"<ussd><sessionid>S</sessionid><type>x</type></ussd>",
            b"<ussd><sessionid>S</sessionid><type>1</type><msg>&bogus;</msg></ussd>",
            b"<ussd><sessionid>S</sessionid><type>1</type></msg></ussd>",
            b"\xff\xfe",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(parse(&vec![b' '; 5_000]).is_err());
    }
}
