//! Extractors whose rejections are [`ApiError`]s (JSON bodies with stable
//! codes) instead of axum's plain-text ones.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::StatusCode;
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `axum::Json`, rejecting with 415 `unsupported_media_type`, 400 `invalid_json`
/// (syntax) or 422 `invalid_input` (shape or values).
#[derive(Clone, Copy, Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    tracing::debug!(rejection = %rejection.body_text(), "JSON body rejected");
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::unsupported_media_type(),
        JsonRejection::JsonSyntaxError(_) => ApiError::bad_request("invalid_json", "the body is not valid JSON"),
        JsonRejection::JsonDataError(e) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", e.body_text())
        }
        other => ApiError::from_status(other.status()),
    }
}

/// `axum::extract::Path`, rejecting with 400 `invalid_path`.
#[derive(Clone, Copy, Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(path_rejection(&rejection)),
        }
    }
}

fn path_rejection(rejection: &PathRejection) -> ApiError {
    match rejection {
        PathRejection::FailedToDeserializePathParams(e) => ApiError::bad_request("invalid_path", e.body_text()),
        other => ApiError::internal(&other.body_text()),
    }
}

/// `axum::extract::Query`, rejecting with 400 `invalid_query`.
#[derive(Clone, Copy, Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection: QueryRejection| ApiError::bad_request("invalid_query", rejection.body_text()))
    }
}
