//! Our own extractors, so that every rejected request comes back in the API's error shape and
//! names the field at fault.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::{Deserialize, DeserializeOwned, Deserializer, Visitor};

mod submission;

pub(crate) use submission::Submission;

/// A JSON body. The content type is not checked, so a `curl -d` without `-H` still works;
/// an empty body reads as `{}` for types that allow it.
#[derive(Debug)]
pub(crate) struct Json<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| body_error(&r))?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        parse_json(bytes).map(Json)
    }
}

/// Parses a JSON object into `T`, naming the path of the first field that does not fit, e.g.
/// `jobs[0].script`.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let ObjectOnly(value) =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let field = field_at(&error.path().to_string(), &error.inner().to_string());
            ApiError::bad_request(field, format!("invalid JSON body: {}", error.inner()))
        })?;
    deserializer
        .end()
        .map_err(|error| ApiError::bad_request(None, format!("invalid JSON body: {error}")))?;
    Ok(value)
}

/// The field a deserialization error is about: the path where it stopped, and for a missing
/// field (which serde reports at its parent) the field's own name.
fn field_at(path: &str, message: &str) -> Option<String> {
    let parent = (path != ".").then_some(path);
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (parent, missing) {
        (Some(parent), Some(name)) => Some(format!("{parent}.{name}")),
        (None, Some(name)) => Some(name.to_owned()),
        (parent, None) => parent.map(str::to_owned),
    }
}

/// A struct read only from a JSON object. serde also reads a struct from an array of its
/// fields in order, so `["success"]` would pass for `{"result": "success"}`, and `[]` for `{}`
/// when every field has a default: a wrong type, which must be a 400 like any other.
#[derive(Debug)]
pub(crate) struct ObjectOnly<T>(pub(crate) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(AsMap(deserializer)).map(ObjectOnly)
    }
}

/// For `#[serde(deserialize_with)]` on a list of structs: each must be a JSON object.
pub(crate) fn objects<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let items = Vec::<ObjectOnly<T>>::deserialize(deserializer)?;
    Ok(items.into_iter().map(|ObjectOnly(item)| item).collect())
}

/// Asks the inner deserializer for a map whatever the type wants; a map reads only an object.
struct AsMap<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for AsMap<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// A raw body, as the log endpoint takes it.
pub(crate) fn body_error(rejection: &BytesRejection) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            rejection.status(),
            "payload_too_large",
            rejection.body_text(),
        )
    } else {
        ApiError::bad_request(None, rejection.body_text())
    }
}

/// Path parameters; a value that does not parse is a 400 naming the parameter.
#[derive(Debug)]
pub(crate) struct Path<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|rejection: PathRejection| {
                ApiError::bad_request(Some("id".to_owned()), rejection.body_text())
            })
    }
}

/// Query parameters; a value that does not parse is a 400 naming the parameter.
#[derive(Debug)]
pub(crate) struct Query<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer = serde_urlencoded::Deserializer::new(url_form(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Query)
            .map_err(|error| {
                let field = field_at(&error.path().to_string(), &error.inner().to_string());
                ApiError::bad_request(field, format!("invalid query: {}", error.inner()))
            })
    }
}

fn url_form(query: &[u8]) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query)
}

#[cfg(test)]
mod tests {
    use super::field_at;

    #[test]
    fn a_missing_field_is_named_under_its_parent() {
        assert_eq!(
            field_at(".", "missing field `name` at line 1 column 2"),
            Some("name".to_owned())
        );
        assert_eq!(
            field_at("jobs[0]", "missing field `script` at line 1 column 30"),
            Some("jobs[0].script".to_owned())
        );
        assert_eq!(
            field_at("limit", "invalid digit found in string"),
            Some("limit".to_owned())
        );
        assert_eq!(field_at(".", "expected value at line 1 column 1"), None);
    }
}
