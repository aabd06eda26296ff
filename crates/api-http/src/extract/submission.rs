//! A pipeline as submitted: a JSON body, or a pipeline file (YAML) as it is, told apart by the
//! `Content-Type`.

use super::{body_error, parse_json};
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

/// The media types of a pipeline file. Anything else with a body is read as JSON.
pub(crate) const YAML_TYPES: [&str; 3] = ["application/yaml", "application/x-yaml", "text/yaml"];

/// A JSON body of `T`, or a pipeline file's text.
#[derive(Debug)]
pub(crate) enum Submission<T> {
    Json(T),
    File(String),
}

/// How a body is to be read, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Yaml,
    Other,
}

fn kind(content_type: Option<&str>) -> Kind {
    let Some(value) = content_type else {
        return Kind::Json;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if YAML_TYPES.contains(&essence.as_str()) {
        Kind::Yaml
    } else if essence == "application/json"
        || essence.ends_with("+json")
        // `curl -d` without `-H` sends this; JSON bodies never had to say what they are.
        || essence == "application/x-www-form-urlencoded"
        || essence.is_empty()
    {
        Kind::Json
    } else {
        Kind::Other
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Submission<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|value| value.to_str().unwrap_or("?").to_owned());
        let kind = kind(content_type.as_deref());
        if kind == Kind::Other {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "a pipeline is JSON (application/json) or a pipeline file ({}), not `{}`",
                    YAML_TYPES.join(", "),
                    content_type.unwrap_or_default()
                ),
            )
            .with_field("Content-Type"));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| body_error(&r))?;
        if kind == Kind::Yaml {
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| ApiError::bad_request(None, "a pipeline file must be UTF-8 text"))?;
            return Ok(Self::File(text));
        }
        parse_json(&bytes).map(Self::Json).map_err(|error| {
            error
                .with_hint("a pipeline file is sent as it is with `Content-Type: application/yaml`")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, kind};

    #[test]
    fn content_types_choose_the_reader() {
        let table = [
            (None, Kind::Json),
            (Some("application/json"), Kind::Json),
            (Some("application/json; charset=utf-8"), Kind::Json),
            (Some("application/vnd.api+json"), Kind::Json),
            (Some("application/x-www-form-urlencoded"), Kind::Json),
            (Some("application/yaml"), Kind::Yaml),
            (Some("Application/X-YAML"), Kind::Yaml),
            (Some("text/yaml; charset=utf-8"), Kind::Yaml),
            (Some("text/plain"), Kind::Other),
            (Some("multipart/form-data; boundary=x"), Kind::Other),
        ];
        for (header, expected) in table {
            assert_eq!(kind(header), expected, "{header:?}");
        }
    }
}
