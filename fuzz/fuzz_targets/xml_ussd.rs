//! A hop of the XML-over-HTTP USSD dialect as the gateway reads it
//! (ussd-gateway/src/providers/xml_ussd.rs): parsing never panics, a hop
//! that parses written back as a request (escaped) parses to the same hop,
//! and the answer to it is well-formed.
#![no_main]

use guichet_ussd_gateway::flow::Reply;
use guichet_ussd_gateway::providers::{e164, xml_ussd};
use libfuzzer_sys::fuzz_target;
use quick_xml::escape::escape;

fuzz_target!(|data: &[u8]| {
    let Ok(hop) = xml_ussd::parse(data) else {
        return;
    };
    assert!((1..=4).contains(&hop.kind));
    assert!(!hop.session_id.is_empty() && hop.session_id.len() <= 128);
    if let Some(phone) = e164(&hop.msisdn) {
        assert_eq!(e164(&phone).as_deref(), Some(phone.as_str()));
    }
    let written = format!(
        "<ussd><msisdn>{}</msisdn><sessionid>{}</sessionid><type>{}</type><msg>{}</msg></ussd>",
        escape(&hop.msisdn),
        escape(&hop.session_id),
        hop.kind,
        escape(&hop.msg)
    );
    if written.len() <= 4_096 {
        assert_eq!(xml_ussd::parse(written.as_bytes()).as_ref(), Ok(&hop));
    }
    // The answer carries the caller's own text back: it must stay XML.
    let answer = xml_ussd::answer(&Reply::Con(hop.msg.clone()));
    let mut reader = quick_xml::Reader::from_str(&answer);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("the answer is not XML ({e}): {answer}"),
        }
    }
});
