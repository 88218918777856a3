//! `berth tail PATTERN`: the messages passing through a running host, as
//! they pass, through its HTTP API (`GET /v1/tail/{pattern}`), so it works
//! on the in-memory transport too.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Follows `pattern` on the host at `url` until it closes the stream;
/// prints one line per message, or the host's JSON lines with `json`.
pub async fn tail(url: &str, pattern: &str, token: Option<&str>, json: bool) -> Result<ExitCode> {
    let url = format!("{}/v1/tail/{pattern}", url.trim_end_matches('/'));
    let mut request = reqwest::Client::new().get(&url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let mut response = request.send().await.with_context(|| format!("cannot reach {url}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or(body);
        bail!("{url} answered {status}: {message}");
    }
    let mut pending = Vec::new();
    while let Some(chunk) = response.chunk().await.context("the host closed the stream")? {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            match json {
                true => super::say(format_args!("{line}")),
                false => super::say(format_args!("{}", human(&line))),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `subject: body` for a message line; what it is for the others.
fn human(line: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(line) else {
        return line.to_owned();
    };
    if let Some(n) = v["dropped"].as_u64() {
        return format!("… {n} message(s) dropped: this reader fell behind");
    }
    let subject = v["subject"].as_str().unwrap_or("?");
    match v["body"].as_str() {
        Some(text) => format!("{subject}: {}", preview(text.as_bytes())),
        None => format!("{subject}: ({} bytes, not text)", v["size"]),
    }
}

/// A body as one line of at most 200 characters: control characters
/// escaped (`\n`, `\u{1b}`), the rest as it is, so that a JSON body reads
/// as JSON.
pub fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut line = String::with_capacity(text.len().min(256));
    for c in text.chars().take(200) {
        match c.is_control() {
            true => line.extend(c.escape_debug()),
            false => line.push(c),
        }
    }
    if text.chars().count() > 200 {
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_as_subject_and_body() {
        assert_eq!(
            human(r#"{"subject":"a.b","body":"hi\nthere","size":8}"#),
            r"a.b: hi\nthere"
        );
        assert_eq!(
            human(r#"{"subject":"a.b","body_base64":"/wA=","size":2}"#),
            "a.b: (2 bytes, not text)"
        );
        assert!(human(r#"{"dropped":3}"#).starts_with("… 3 message(s) dropped"));
        assert_eq!(
            human(r#"{"subject":"a.b","body":"{\"name\":\"Bo\"}\t\u001b","size":16}"#),
            r#"a.b: {"name":"Bo"}\t\u{1b}"#
        );
    }
}
