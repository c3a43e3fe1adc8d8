//! A phone simulator: dials the gateway from a terminal through the
//! Africa's Talking USSD protocol, exactly as the operator would.

use std::io::{BufRead, Write};

/// One simulated session. Inputs come from `script` (in order) or, when it
/// runs out and `interactive` is set, from the terminal. Returns every
/// screen shown.
pub async fn dial(
    callback_url: &str,
    service_code: &str,
    phone: &str,
    mut script: std::collections::VecDeque<String>,
    interactive: bool,
    out: &mut (dyn Write + Send),
) -> Result<Vec<String>, String> {
    let http = reqwest::Client::new();
    let session_id = format!("sim-{}", crate::gateway::now_ms());
    let mut inputs: Vec<String> = Vec::new();
    let mut screens = Vec::new();
    loop {
        let text = inputs.join("*");
        let form = [
            ("sessionId", session_id.as_str()),
            ("serviceCode", service_code),
            ("phoneNumber", phone),
            ("networkCode", "99999"),
            ("text", text.as_str()),
        ];
        let response = http
            .post(callback_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("cannot reach the gateway: {e}"))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("the gateway answered {status}: {body}"));
        }
        let (end, screen) = match (body.strip_prefix("CON "), body.strip_prefix("END ")) {
            (Some(s), _) => (false, s.to_string()),
            (_, Some(s)) => (true, s.to_string()),
            _ => return Err(format!("not a USSD answer: {body}")),
        };
        let _ = writeln!(out, "{}\n{screen}\n", "-".repeat(24));
        screens.push(screen);
        if end {
            return Ok(screens);
        }
        let input = match script.pop_front() {
            Some(i) => i,
            None if interactive => {
                let _ = write!(out, "> ");
                let _ = out.flush();
                let mut line = String::new();
                if std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|e| e.to_string())?
                    == 0
                {
                    return Ok(screens);
                }
                line.trim_end_matches(['\r', '\n']).to_string()
            }
            None => return Ok(screens),
        };
        inputs.push(input);
    }
}
