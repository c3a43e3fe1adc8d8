//! Africa's Talking's incoming-SMS and delivery-report callbacks (form
//! bodies), and its messaging API's answer to a send (JSON), as the gateway
//! reads them (ussd-gateway/src/providers/africastalking.rs).
#![no_main]

use guichet_ussd_gateway::providers::africastalking::fuzzing;
use guichet_ussd_gateway::providers::{e164, SendResult};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((from, _text, _id)) = fuzzing::sms_form(data) {
        if let Some(from) = e164(&from) {
            assert_eq!(e164(&from).as_deref(), Some(from.as_str()));
        }
    }
    let _ = fuzzing::dlr_form(data);
    if let Ok(body) = std::str::from_utf8(data) {
        match fuzzing::read_answer(body) {
            SendResult::Accepted(_) | SendResult::Retry(_) | SendResult::Refused(_) => {}
        }
    }
});
