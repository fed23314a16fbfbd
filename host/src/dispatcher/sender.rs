//! One HTTP attempt: POST the signed body, and turn what happened into a
//! [`SendResult`] (a status and the start of the response body, or the kind
//! of network failure).

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode, redirect};

use super::address::{EndpointRejected, GuardedResolver, check_endpoint_url};

/// Maximum response body kept in the attempt log, in bytes.
pub const MAX_RESPONSE_BODY_BYTES: usize = 4096;
/// Maximum response body quoted in `last_error`, in characters.
const ERROR_SNIPPET_CHARS: usize = 200;

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    /// The response status; `None` when no response arrived.
    pub status: Option<u16>,
    /// The start of the response body, lossily decoded as UTF-8.
    pub body: Option<String>,
    /// Why the attempt failed; `None` on a 2xx response.
    pub error: Option<String>,
    /// The `Retry-After` of a 429 or 503 response, when it parses.
    pub retry_after: Option<Duration>,
    pub duration: Duration,
}

impl SendResult {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// Builds the HTTP client: no redirects, no proxies, the guarded resolver,
/// and `timeout` over the whole request.
pub fn client(timeout: Duration, allow_private: bool) -> anyhow::Result<Client> {
    let client = Client::builder()
        .redirect(redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()?;
    Ok(client)
}

/// Sends one attempt.
pub async fn send(
    client: &Client,
    endpoint_url: &str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    allow_private: bool,
    timeout: Duration,
) -> SendResult {
    let started = Instant::now();
    let failed = |error: String| SendResult {
        status: None,
        body: None,
        error: Some(error),
        retry_after: None,
        duration: started.elapsed(),
    };

    let url = match check_endpoint_url(endpoint_url, allow_private) {
        Ok(url) => url,
        Err(rejected) => return failed(rejected.to_string()),
    };
    let mut request = client.post(url).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }

    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) => return failed(describe_error(&error, timeout)),
    };
    let status = response.status();
    let location = response.headers().get(reqwest::header::LOCATION).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let retry_after = match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, chrono::Utc::now())),
        _ => None,
    };
    let (body, body_error) = read_start_of_body(&mut response).await;

    let error = if status.is_success() {
        None
    } else if let Some(body_error) = body_error.filter(|_| body.is_empty()) {
        Some(format!("HTTP {}, then reading the body failed: {}", status.as_u16(), describe_error(&body_error, timeout)))
    } else {
        Some(describe_status(status, location.as_deref(), &body))
    };
    SendResult {
        status: Some(status.as_u16()),
        body: (!body.is_empty()).then_some(body),
        error,
        retry_after,
        duration: started.elapsed(),
    }
}

/// Reads at most [`MAX_RESPONSE_BODY_BYTES`] of the body, and stops there so
/// an endless body does not hold the worker.
async fn read_start_of_body(response: &mut reqwest::Response) -> (String, Option<reqwest::Error>) {
    let mut bytes = Vec::new();
    let mut error = None;
    while bytes.len() < MAX_RESPONSE_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(chunk_error) => {
                error = Some(chunk_error);
                break;
            }
        }
    }
    bytes.truncate(MAX_RESPONSE_BODY_BYTES);
    (String::from_utf8_lossy(&bytes).into_owned(), error)
}

/// Parses `Retry-After`: delay seconds, or an HTTP date (a date in the past
/// gives zero).
fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some((date.with_timezone(&chrono::Utc) - now).to_std().unwrap_or(Duration::ZERO))
}

fn describe_status(status: StatusCode, location: Option<&str>, body: &str) -> String {
    let code = status.as_u16();
    if status.is_redirection() {
        let target = location.unwrap_or("none");
        return format!("HTTP {code}: redirects are not followed (Location: {target}); update the endpoint URL");
    }
    let snippet: String = body.trim().chars().take(ERROR_SNIPPET_CHARS).collect();
    if snippet.is_empty() { format!("HTTP {code}") } else { format!("HTTP {code}: {snippet}") }
}

/// A short, stable description of a network failure for `last_error`.
fn describe_error(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("timed out after {}", humantime::format_duration(timeout));
    }

    let mut source = error.source();
    let mut innermost = error.to_string();
    while let Some(cause) = source {
        if let Some(rejected) = cause.downcast_ref::<EndpointRejected>() {
            return rejected.to_string();
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            match io.kind() {
                ErrorKind::ConnectionRefused => return "connection refused".to_owned(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
                    return "connection reset by the endpoint".to_owned();
                }
                ErrorKind::TimedOut => return format!("timed out after {}", humantime::format_duration(timeout)),
                _ => {}
            }
        }
        innermost = cause.to_string();
        source = cause.source();
    }

    if error.is_connect() {
        format!("connection failed: {innermost}")
    } else {
        format!("request failed: {innermost}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        use chrono::TimeZone;
        let now = chrono::Utc.with_ymd_and_hms(2025, 9, 25, 12, 0, 0).unwrap();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Thu, 25 Sep 2025 12:05:00 GMT", now), Some(Duration::from_secs(300)));
        assert_eq!(parse_retry_after("Thu, 25 Sep 2025 11:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn status_errors_quote_the_body_start() {
        let long = "x".repeat(500);
        assert_eq!(describe_status(StatusCode::INTERNAL_SERVER_ERROR, None, " boom \n"), "HTTP 500: boom");
        assert_eq!(describe_status(StatusCode::NOT_FOUND, None, ""), "HTTP 404");
        assert_eq!(describe_status(StatusCode::BAD_GATEWAY, None, &long).len(), "HTTP 502: ".len() + 200);
        assert_eq!(
            describe_status(StatusCode::MOVED_PERMANENTLY, Some("https://new.example/hook"), ""),
            "HTTP 301: redirects are not followed (Location: https://new.example/hook); update the endpoint URL"
        );
    }
}
