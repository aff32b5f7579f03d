//! Engine errors → the app's [`AppError`] (the views themselves are the engine's:
//! `countersign_engine::views`).

use countersign_engine::{EngineError, ErrorCode};

use crate::dto::AppError;

impl From<EngineError> for AppError {
    fn from(e: EngineError) -> AppError {
        AppError::new(e.code(), e.to_string())
    }
}

impl AppError {
    /// An error with `code`, what happened, and the next step for that code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError { code, message: message.into(), next_step: code.next_step().to_string() }
    }

    pub fn internal(message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::Internal, message)
    }
}
