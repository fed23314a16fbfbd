//! Request parsing shared by the admin handlers: every malformed id, query
//! or body becomes an `ApiError` naming the field, never axum's plain-text
//! rejection.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::api::{ApiError, AppState, parse_json, read_body, require_json};

/// Parses a path id as a UUID.
pub fn parse_id(text: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("`{text}` is not a {what} id (a UUID)"),
            format!("`{text}` não é um id válido (um UUID)"),
        )
        .with_fields(["id"])
    })
}

/// Parses the query string into `T`.
pub fn parse_query<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    let query = uri.query().unwrap_or_default();
    serde_urlencoded_from_str(query).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("invalid query string: {error}"),
            format!("query string inválida: {error}"),
        )
        .with_fields(["query"])
    })
}

fn serde_urlencoded_from_str<T: DeserializeOwned>(query: &str) -> Result<T, String> {
    axum::extract::Query::<T>::try_from_uri(&format!("/?{query}").parse::<Uri>().map_err(|error| error.to_string())?)
        .map(|axum::extract::Query(value)| value)
        .map_err(|rejection| rejection.body_text())
}

/// Reads a JSON object body into `T`. An empty body is read as `{}`.
pub async fn json_body<T: DeserializeOwned>(state: &AppState, headers: &HeaderMap, body: Body) -> Result<T, ApiError> {
    let bytes = read_body(headers, body, state.max_body_bytes).await?;
    let value = if bytes.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(Default::default())
    } else {
        require_json(headers)?;
        parse_json(&bytes)?
    };
    if !value.is_object() {
        return Err(invalid_body("the body must be a JSON object".to_owned()));
    }
    serde_json::from_value(value).map_err(|error| invalid_body(error.to_string()))
}

fn invalid_body(detail: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_body",
        format!("invalid request body: {detail}"),
        format!("corpo da requisição inválido: {detail}"),
    )
    .with_fields(["body"])
}

/// A 400 `invalid_fields` error listing each field with its problem.
pub fn invalid_fields(problems: Vec<(String, String)>) -> ApiError {
    let english: Vec<String> = problems.iter().map(|(field, message)| format!("{field}: {message}")).collect();
    let fields: Vec<String> = problems.iter().map(|(field, _)| field.clone()).collect();
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_fields",
        format!("invalid fields: {}", english.join("; ")),
        format!("campos inválidos: {}", english.join("; ")),
    )
    .with_fields(fields)
}

/// A storage failure as an HTTP error (503 when the database is unreachable).
pub fn store_error(error: anyhow::Error) -> ApiError {
    ApiError::from_store(&error)
}
