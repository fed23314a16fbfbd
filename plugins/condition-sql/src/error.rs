//! The error type shared by the tokenizer, parser, analyzer and evaluator.

use std::fmt;

/// Which stage rejected the condition. The string forms are the stable
/// `plugin-error.code` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text is not a condition this plugin can parse.
    Syntax,
    /// The condition parses but has a type error, an invalid constant or an
    /// unknown name, as PostgreSQL would report while analyzing the query.
    Analysis,
    /// Evaluating the condition against this event raised an error, such as
    /// an invalid cast of a payload value.
    Evaluation,
    /// The event handed to `evaluate` is malformed.
    InvalidEvent,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// One-based character position and text of the offending token.
    pub token: Option<(usize, String)>,
}

impl Error {
    pub fn syntax(message: String, token: Option<(usize, String)>) -> Self {
        Error { kind: ErrorKind::Syntax, message, token }
    }

    pub fn analysis(message: String, token: Option<(usize, String)>) -> Self {
        Error { kind: ErrorKind::Analysis, message, token }
    }

    pub fn eval(message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::Evaluation, message: message.into(), token: None }
    }

    /// Returns the stable machine-readable code for `plugin-error.code`.
    pub fn code(&self) -> &'static str {
        match self.kind {
            ErrorKind::Syntax => "syntax_error",
            ErrorKind::Analysis => "invalid_condition",
            ErrorKind::Evaluation => "evaluation_error",
            ErrorKind::InvalidEvent => "invalid_event",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some((pos, text)) = &self.token {
            if text.is_empty() {
                write!(f, " at end of condition (character {pos})")?;
            } else {
                write!(f, " at or near \"{text}\" (character {pos})")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
