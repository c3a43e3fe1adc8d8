//! SMS through the real Kannel (Debian packages kannel and kannel-extras,
//! installed by .ci/run): its fake SMSC plays the phones. Incoming SMS in
//! GSM-7 and UCS-2, replies in the HTTP body, outgoing SMS through
//! `sendsms`, and delivery reports.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;

const FAKESMSC: &str = "/usr/lib/kannel/test/fakesmsc";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Kannel {
    boxes: Vec<Child>,
    fakesmsc: Child,
    phones: ChildStdin,
    received: Arc<Mutex<Vec<String>>>,
}

impl Drop for Kannel {
    fn drop(&mut self) {
        let _ = self.fakesmsc.kill();
        for b in &mut self.boxes {
            let _ = b.kill();
            let _ = b.wait();
        }
        let _ = self.fakesmsc.wait();
    }
}

struct Ports {
    gateway: u16,
    smsbox: u16,
    smsc: u16,
    sendsms: u16,
    admin: u16,
}

fn start_kannel(dir: &Path, ports: &Ports) -> Kannel {
    assert!(
        Path::new("/usr/sbin/bearerbox").exists() && Path::new(FAKESMSC).exists(),
        "Kannel is not installed: .ci/run installs the Debian packages kannel and kannel-extras"
    );
    let conf = dir.join("kannel.conf");
    std::fs::write(
        &conf,
        format!(
            r#"group = core
admin-port = {admin}
admin-password = not-used
smsbox-port = {smsbox}
box-allow-ip = 127.0.0.1
log-level = 1
log-file = "{dir}/bearerbox.log"
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = FAKE
port = {smsc}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox}
sendsms-port = {sendsms}
log-level = 1
log-file = "{dir}/smsbox.log"

group = sendsms-user
username = guichet
password = kannel-pass
concatenation = true
max-messages = 5

group = sms-service
keyword = default
catch-all = true
get-url = "http://127.0.0.1:{gateway}/kannel/{SECRET}/sms?from=%p&to=%P&text=%b&coding=%c&charset=%C"
accept-x-kannel-headers = true
omit-empty = true
max-messages = 5
concatenation = true
"#,
            admin = ports.admin,
            smsbox = ports.smsbox,
            smsc = ports.smsc,
            sendsms = ports.sendsms,
            gateway = ports.gateway,
            dir = dir.display()
        ),
    )
    .unwrap();
    let quiet = || Stdio::null();
    let bearerbox = Command::new("/usr/sbin/bearerbox")
        .arg(&conf)
        .stdout(quiet())
        .stderr(quiet())
        .spawn()
        .unwrap();
    wait_port(ports.smsbox);
    let smsbox = Command::new("/usr/sbin/smsbox")
        .arg(&conf)
        .stdout(quiet())
        .stderr(quiet())
        .spawn()
        .unwrap();
    wait_port(ports.sendsms);
    // It logs each message it receives ("Got message N: <...>") on stderr.
    let mut fakesmsc = Command::new(FAKESMSC)
        .args(["-H", "127.0.0.1", "-r", &ports.smsc.to_string(), "-v", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let phones = fakesmsc.stdin.take().unwrap();
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = received.clone();
    let out = fakesmsc.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(at) = line.find("Got message") {
                sink.lock().unwrap().push(line[at..].to_string());
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    Kannel {
        boxes: vec![smsbox, bearerbox],
        fakesmsc,
        phones,
        received,
    }
}

fn wait_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port}");
}

impl Kannel {
    /// A phone sends an SMS: `kind` is `text` (plain) or `ucs2` (URL-encoded UTF-16BE).
    fn phone_sends(&mut self, from: &str, kind: &str, payload: &str) {
        writeln!(self.phones, "{from} 1234 {kind} {payload}").unwrap();
        self.phones.flush().unwrap();
    }

    /// Waits for the fake SMSC to receive an SMS for `to` whose decoded
    /// text satisfies `pred`; returns (coding, parts, text).
    async fn wait_for(&self, to: &str, pred: impl Fn(&str) -> bool) -> (String, usize, String) {
        for _ in 0..150 {
            let lines = self.received.lock().unwrap().clone();
            for (dest, coding, parts, text) in messages(&lines) {
                if dest.trim_start_matches('+') == to.trim_start_matches('+') && pred(&text) {
                    return (coding, parts, text);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no SMS to {to} matched; the SMSC got {:?}",
            self.received.lock().unwrap()
        );
    }
}

/// One part of a concatenated SMS: (sequence, total, payload).
type Part = (u8, u8, Vec<u8>);

/// The SMS the fake SMSC printed ("Got message N: <from to type ...>"),
/// concatenated parts (`udh <header> data <payload>`, a UCS-2 payload
/// here) put back together: (to, coding, parts, text).
fn messages(lines: &[String]) -> Vec<(String, String, usize, String)> {
    let mut whole = Vec::new();
    let mut parts: BTreeMap<(String, u8), Vec<Part>> = BTreeMap::new();
    for line in lines {
        let inner = line
            .split_once('<')
            .map(|(_, r)| r.trim_end_matches('>'))
            .unwrap_or("");
        let fields: Vec<&str> = inner.splitn(6, ' ').collect();
        match fields.as_slice() {
            [_, to, "udh", udh, "data", payload] => {
                let udh = guichet_ussd_gateway::providers::percent_decode(udh);
                // 05 00 03 <ref> <total> <seq>
                let (reference, total, seq) = (udh[3], udh[4], udh[5]);
                let data = guichet_ussd_gateway::providers::percent_decode(payload);
                parts
                    .entry((to.to_string(), reference))
                    .or_default()
                    .push((seq, total, data));
            }
            [_, to, coding, rest @ ..] => {
                let payload = rest.join(" ");
                whole.push((
                    to.to_string(),
                    coding.to_string(),
                    1,
                    decode(coding, &payload),
                ));
            }
            _ => {}
        }
    }
    for ((to, _), mut pieces) in parts {
        pieces.sort_by_key(|(seq, _, _)| *seq);
        if pieces.len() == pieces[0].1 as usize {
            let bytes: Vec<u8> = pieces.iter().flat_map(|(_, _, d)| d.clone()).collect();
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            whole.push((
                to,
                "ucs-2".into(),
                pieces.len(),
                String::from_utf16_lossy(&units),
            ));
        }
    }
    whole
}

/// What the fake SMSC printed, back to text.
fn decode(coding: &str, payload: &str) -> String {
    let bytes = guichet_ussd_gateway::providers::percent_decode(payload);
    if coding == "ucs-2" {
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// URL-encoded UTF-16BE, as fakesmsc takes a UCS-2 payload.
fn ucs2(text: &str) -> String {
    text.encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .map(|b| format!("%{b:02X}"))
        .collect()
}

#[tokio::test]
async fn sms_through_the_real_kannel_in_gsm7_and_ucs2() {
    let dir = TempDir::new().unwrap();
    let ports = Ports {
        gateway: free_port(),
        smsbox: free_port(),
        smsc: free_port(),
        sendsms: free_port(),
        admin: free_port(),
    };
    let kannel_section = format!(
        "[providers.kannel]\nsecret = \"{SECRET}\"\nsendsms_url = \"http://127.0.0.1:{}/cgi-bin/sendsms\"\nusername = \"guichet\"\npassword = \"kannel-pass\"\nfrom = \"1234\"\ncallback_base_url = \"http://127.0.0.1:{}\"\n",
        ports.sendsms, ports.gateway
    );
    let text = config(
        &dir.path().join("data"),
        "http://127.0.0.1:9",
        "standalone_replica = 999",
    )
    .replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{}\"", ports.gateway),
    )
    .replace("provider = \"africastalking\"", "provider = \"kannel\"")
        + &kannel_section;
    let gw = start_gateway(&text, dir.path());
    let mut kannel = start_kannel(dir.path(), &ports);

    // A request filed by USSD: its SMS leaves through Kannel's sendsms.
    let citizen = "+221771112233";
    let mut s = AtSession::new(&gw, "k1", citizen);
    let first = s.hop(None).await;
    let english = first
        .lines()
        .find(|l| l.contains("English"))
        .unwrap()
        .trim_start_matches("CON ")
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let end = s
        .run_from_first(first, &[&english, "1", "1", "1", "Extrait", "1"])
        .await;
    let reference = reference_in(&end);
    let (coding, _, sms) = kannel.wait_for(citizen, |t| t.contains(&reference)).await;
    assert_eq!(coding, "text", "English stays GSM-7: {sms}");

    // Kannel reports delivery (types 8 then 1): the outbox follows.
    let mut delivered = false;
    for _ in 0..100 {
        let health: serde_json::Value = reqwest::get(gw.at("/health"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if health["outbox"]["delivered"] == 1 {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        delivered,
        "the delivery report reached the outbox: {}",
        gw.log_text()
    );

    // A GSM-7 command: the reply travels back in the HTTP body.
    kannel.phone_sends("221771112233", "text", &format!("track {reference}"));
    let (_, _, status) = kannel
        .wait_for(citizen, |t| {
            t.contains("received") && t.contains(&reference)
        })
        .await;
    assert!(status.starts_with("Guichet"), "{status}");

    // A Wolof speaker: a UCS-2 message in, a UCS-2 reply out (ó).
    let wolof = "+221776665544";
    kannel.phone_sends("221776665544", "ucs2", &ucs2("Dimbali’"));
    let (coding, parts, help) = kannel.wait_for(wolof, |t| t.contains("TOPP")).await;
    assert_eq!((coding.as_str(), parts), ("ucs-2", 2), "{help}");
    assert!(help.contains("yónnee"), "the accents survive: {help}");
}
