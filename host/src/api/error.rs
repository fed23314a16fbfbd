//! HTTP errors: a stable `error` code and a message in English or Brazilian
//! Portuguese, never internal details.
//!
//! Handlers return [`ApiError`]. Its response carries both messages, and the
//! [`localize`] middleware picks one from the request's `Accept-Language`.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable machine-readable code, for example `missing_fields`.
    pub code: &'static str,
    pub message_en: String,
    pub message_pt: String,
    /// The request fields the error is about, when any.
    pub fields: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message_en: impl Into<String>, message_pt: impl Into<String>) -> Self {
        Self { status, code, message_en: message_en.into(), message_pt: message_pt.into(), fields: Vec::new() }
    }

    pub fn with_fields(mut self, fields: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.fields = fields.into_iter().map(Into::into).collect();
        self
    }

    pub fn unauthorized(header: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("missing or invalid {header} header"),
            format!("cabeçalho {header} ausente ou inválido"),
        )
    }

    pub fn not_found(what_en: &str, what_pt: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what_en} not found"), format!("{what_pt} não encontrado"))
    }

    /// A failure the client cannot fix. The cause goes to the log, not to the client.
    pub fn internal(error: &anyhow::Error) -> Self {
        tracing::error!(error = format!("{error:#}"), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; the cause was logged on the server",
            "erro interno; a causa foi registrada no log do servidor",
        )
    }

    /// A storage failure: 503 when the database cannot be reached (the client
    /// may retry), 500 otherwise.
    pub fn from_store(error: &anyhow::Error) -> Self {
        let unreachable = error.chain().any(|cause| {
            matches!(
                cause.downcast_ref::<sqlx::Error>(),
                Some(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_))
            )
        });
        if unreachable { Self::unavailable(error) } else { Self::internal(error) }
    }

    pub fn unavailable(error: &anyhow::Error) -> Self {
        tracing::warn!(error = format!("{error:#}"), "database unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unavailable; try again later",
            "o banco de dados está indisponível; tente novamente mais tarde",
        )
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    fields: &'a [String],
}

/// Both renderings of an error, kept on the response for [`localize`].
#[derive(Clone)]
struct Portuguese(Vec<u8>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let render = |message: &str| {
            serde_json::to_vec(&ErrorBody { error: self.code, message, fields: &self.fields })
                .expect("error bodies serialize")
        };
        let portuguese = Portuguese(render(&self.message_pt));
        let mut response = (self.status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], render(&self.message_en))
            .into_response();
        response.extensions_mut().insert(portuguese);
        response
    }
}

/// Replaces an error body with its Portuguese rendering when the request
/// prefers Portuguese.
pub async fn localize(request: Request, next: Next) -> Response {
    let portuguese = prefers_portuguese(request.headers());
    let mut response = next.run(request).await;
    if let Some(Portuguese(body)) = response.extensions_mut().remove::<Portuguese>()
        && portuguese
    {
        let (mut parts, _) = response.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static("pt-BR"));
        return Response::from_parts(parts, body.into());
    }
    response
}

/// True when `Accept-Language` ranks a `pt` tag above every English or
/// wildcard tag (quality values honoured; ties go to the first listed).
pub fn prefers_portuguese(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let mut best: Option<(f32, bool)> = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|param| param.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let is_portuguese = tag == "pt" || tag.starts_with("pt-");
        let is_candidate = is_portuguese || tag == "en" || tag.starts_with("en-") || tag == "*";
        if !is_candidate || quality <= 0.0 {
            continue;
        }
        if best.is_none_or(|(best_quality, _)| quality > best_quality) {
            best = Some((quality, is_portuguese));
        }
    }
    best.is_some_and(|(_, is_portuguese)| is_portuguese)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn accept_language_picks_portuguese() {
        assert!(prefers_portuguese(&accept("pt-BR")));
        assert!(prefers_portuguese(&accept("pt-BR,pt;q=0.9,en;q=0.8")));
        assert!(prefers_portuguese(&accept("en;q=0.5, pt;q=0.9")));
        assert!(prefers_portuguese(&accept("PT")));
    }

    #[test]
    fn accept_language_defaults_to_english() {
        assert!(!prefers_portuguese(&HeaderMap::new()));
        assert!(!prefers_portuguese(&accept("en-US,pt;q=0.5")));
        assert!(!prefers_portuguese(&accept("pt;q=0")));
        assert!(!prefers_portuguese(&accept("fr")));
        assert!(!prefers_portuguese(&accept("portuguese")));
    }
}
