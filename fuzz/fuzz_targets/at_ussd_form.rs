//! Africa's Talking's USSD callback and end-of-session notification, form
//! bodies as the gateway reads them
//! (ussd-gateway/src/providers/africastalking.rs): parsing never panics,
//! phone numbers normalise once and for all, and the latest input is what
//! follows the text seen on the previous hop.
#![no_main]

use guichet_ussd_gateway::providers::africastalking::{fuzzing, latest_input};
use guichet_ussd_gateway::providers::e164;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((_session, phone, text)) = fuzzing::ussd_form(data) {
        if let Some(phone) = e164(&phone) {
            assert!(phone.starts_with('+'));
            assert_eq!(e164(&phone).as_deref(), Some(phone.as_str()));
        }
        assert_eq!(latest_input(&text, None), None, "no session: start over");
        assert_eq!(latest_input(&text, Some(&text)), None, "a repeated hop");
        if !text.is_empty() {
            assert_eq!(
                latest_input(&text, Some("")).as_deref(),
                Some(text.as_str())
            );
        }
        // Every earlier hop's text: the input is what follows it.
        for (at, _) in text.match_indices('*') {
            let (seen, rest) = (&text[..at], &text[at + 1..]);
            if !seen.is_empty() {
                assert_eq!(latest_input(&text, Some(seen)).as_deref(), Some(rest));
            }
        }
        // Out of step with what was seen: any answer, never a panic.
        if let Some((front, back)) = text.split_at_checked(text.len() / 2) {
            let _ = latest_input(back, Some(front));
        }
    }
    let _ = fuzzing::end_form(data);
});
