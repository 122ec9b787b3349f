//! The retry loop both providers share: send, classify, back off, record every attempt.

use super::config::{ApiKey, LlmConfig};
use super::{Attempt, Completion, LlmError, LlmErrorKind, StopReason, Usage};
use reqwest::StatusCode;
use std::time::{Duration, Instant, SystemTime};

/// What a successful response body says.
pub(crate) struct ParsedReply {
    pub text: String,
    /// What the model reasoned before it answered, when the server returns it.
    pub reasoning: Option<String>,
    pub stop_reason: StopReason,
    pub usage: Option<Usage>,
}

/// What a wire format must provide to the shared loop.
pub(crate) trait Wire {
    /// Full URL of the endpoint.
    fn endpoint(&self, config: &LlmConfig) -> String;
    /// Adds authentication and protocol headers.
    fn headers(
        &self,
        request: reqwest::RequestBuilder,
        key: Option<&ApiKey>,
    ) -> reqwest::RequestBuilder;
    /// What a successful response body says.
    fn parse_success(&self, body: &str) -> Result<ParsedReply, String>;
    /// Error type and message of an error response body.
    fn parse_error(&self, body: &str) -> (String, String);
}

pub(crate) fn http_client(config: &LlmConfig) -> Result<reqwest::Client, LlmErrorKind> {
    reqwest::Client::builder()
        .timeout(config.request_timeout)
        .build()
        .map_err(|error| LlmErrorKind::Client {
            message: error.to_string(),
        })
}

/// Statuses worth another attempt: timeouts, rate limits, server errors, Anthropic's overload.
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// Rate limits and overload: the server is fine but asks for patience.
fn is_limit(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 503 | 529)
}

/// The server's requested wait: `retry-after-ms` (OpenAI), else `retry-after` in seconds or
/// as an HTTP date (RFC 9110; a date already past asks for no wait).
fn retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| Some(headers.get(name)?.to_str().ok()?.trim().to_owned());
    let seconds = |text: &str| {
        let seconds = text.parse::<f64>().ok()?;
        (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
    };
    if let Some(ms) = text("retry-after-ms") {
        return seconds(&ms).map(|wait| wait / 1000);
    }
    let value = text("retry-after")?;
    seconds(&value).or_else(|| {
        let date = httpdate::parse_http_date(&value).ok()?;
        Some(date.duration_since(now).unwrap_or(Duration::ZERO))
    })
}

/// Exponential backoff with jitter: a random delay between half and all of base·2^(n-1), capped.
fn backoff(config: &LlmConfig, failed_attempt: u32) -> Duration {
    let exponent = failed_attempt.saturating_sub(1).min(30);
    let full = config
        .retry
        .base_delay
        .saturating_mul(1u32 << exponent)
        .min(config.retry.max_delay);
    full.mul_f64(0.5 + 0.5 * fastrand::f64())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads a response body as text, refusing to hold more than `cap` bytes of it.
async fn read_body(mut response: reqwest::Response, cap: usize) -> Result<String, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

pub(crate) async fn call(
    wire: &impl Wire,
    http: &reqwest::Client,
    config: &LlmConfig,
    body: serde_json::Value,
) -> Result<Completion, LlmError> {
    let started = Instant::now();
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut last_reply: Option<String> = None;
    let fail = |kind, attempts, raw_reply| LlmError {
        kind,
        request: body.clone(),
        raw_reply,
        attempts,
    };
    let key = match config.api_key() {
        Ok(key) => key,
        Err(kind) => return Err(fail(kind, attempts, None)),
    };
    let url = wire.endpoint(config);
    let max_attempts = config.retry.max_attempts.max(1);
    for number in 1..=max_attempts {
        let attempt_started = Instant::now();
        let request = wire.headers(http.post(&url).json(&body), key.as_ref());
        let mut attempt = Attempt {
            number,
            status: None,
            error: None,
            latency_ms: 0,
            retry_after_ms: None,
            wait_before_next_ms: None,
        };
        // The failure of this attempt, and whether another is worth it.
        let (kind, server_wait) = match request.send().await {
            Err(error) => {
                attempt.latency_ms = millis(attempt_started.elapsed());
                attempt.error = Some(error.to_string());
                let kind = LlmErrorKind::Transport {
                    message: error.to_string(),
                };
                if error.is_timeout() || error.is_connect() || error.is_request() {
                    (kind, None)
                } else {
                    attempts.push(attempt);
                    return Err(fail(kind, attempts, last_reply));
                }
            }
            Ok(response) => {
                let status = response.status();
                let server_wait = retry_after(response.headers(), SystemTime::now());
                let text = read_body(response, config.max_reply_bytes).await;
                attempt.latency_ms = millis(attempt_started.elapsed());
                attempt.status = Some(status.as_u16());
                attempt.retry_after_ms = server_wait.map(millis);
                match text {
                    Err(BodyError::TooLarge) => {
                        let reason =
                            format!("the reply is larger than {} bytes", config.max_reply_bytes);
                        attempt.error = Some(reason.clone());
                        attempts.push(attempt);
                        return Err(fail(
                            LlmErrorKind::InvalidResponse { reason },
                            attempts,
                            None,
                        ));
                    }
                    Err(BodyError::Transport(error)) => {
                        attempt.error = Some(format!("reading the body: {error}"));
                        let kind = LlmErrorKind::Transport {
                            message: error.to_string(),
                        };
                        (kind, server_wait)
                    }
                    Ok(text) if status.is_success() => {
                        attempts.push(attempt);
                        return match wire.parse_success(&text) {
                            Ok(ParsedReply {
                                text: reply_text,
                                reasoning,
                                stop_reason,
                                usage,
                            }) => Ok(Completion {
                                provider: config.provider,
                                model: config.model.clone(),
                                request: body.clone(),
                                cost_usd: usage
                                    .as_ref()
                                    .zip(config.pricing)
                                    .map(|(usage, price)| price.cost_usd(usage)),
                                raw_reply: text,
                                text: reply_text,
                                reasoning,
                                stop_reason,
                                usage,
                                latency_ms: millis(started.elapsed()),
                                attempts,
                            }),
                            Err(reason) => Err(fail(
                                LlmErrorKind::InvalidResponse { reason },
                                attempts,
                                Some(text),
                            )),
                        };
                    }
                    Ok(text) => {
                        let (error_type, message) = wire.parse_error(&text);
                        last_reply = Some(text);
                        let code = status.as_u16();
                        attempt.error = Some(format!("HTTP {code}: {error_type}: {message}"));
                        let kind = if is_limit(status) {
                            LlmErrorKind::RateLimited {
                                status: code,
                                message,
                            }
                        } else {
                            LlmErrorKind::Api {
                                status: code,
                                error_type,
                                message,
                            }
                        };
                        if !retryable(status) {
                            attempts.push(attempt);
                            return Err(fail(kind, attempts, last_reply));
                        }
                        (kind, server_wait)
                    }
                }
            }
        };
        if number == max_attempts {
            attempts.push(attempt);
            return Err(fail(kind, attempts, last_reply));
        }
        if let Some(wait) = server_wait
            && wait > config.retry.max_retry_after
        {
            attempts.push(attempt);
            return Err(fail(kind, attempts, last_reply));
        }
        let wait = server_wait.unwrap_or_else(|| backoff(config, number));
        attempt.wait_before_next_ms = Some(millis(wait));
        attempts.push(attempt);
        tokio::time::sleep(wait).await;
    }
    Err(fail(
        LlmErrorKind::Transport {
            message: "no attempt was made".into(),
        },
        attempts,
        last_reply,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn retry_after_reads_milliseconds_first_then_seconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, now), None);
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(2)));
        // 2015-10-21 07:28:00 UTC is 1445412480 s after the epoch.
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:30 GMT"),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        let later = now + Duration::from_secs(60);
        assert_eq!(retry_after(&headers, later), Some(Duration::ZERO));
        headers.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
        headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(
            retry_after(&headers, now),
            Some(Duration::from_millis(1500))
        );
        headers.insert("retry-after-ms", HeaderValue::from_static("-4"));
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn backoff_doubles_within_jitter_and_stops_at_the_ceiling() {
        let config = LlmConfig {
            retry: super::super::RetryPolicy {
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_millis(1000),
                ..Default::default()
            },
            ..LlmConfig::anthropic("m")
        };
        for (attempt, full) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (12, 1000),
        ] {
            let wait = backoff(&config, attempt);
            let full = Duration::from_millis(full);
            assert!(
                wait >= full / 2 && wait <= full,
                "attempt {attempt}: {wait:?}"
            );
        }
    }

    #[test]
    fn only_timeouts_limits_and_server_errors_are_retried() {
        for code in [408, 429, 500, 502, 503, 529] {
            assert!(retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [400, 401, 403, 404, 413, 422] {
            assert!(!retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }
}
