//! The error of a plugin's callbacks: what a closure or a reader that the engine calls with a
//! command's output returns when it cannot make sense of that output, or cannot do what it is
//! asked with it.

/// Why a plugin's callback could not do its part with what a command printed: a listing line it
/// cannot read (`HistoryQuery`), a mount point it cannot use (`Restore::after`), a name too long
/// for the tool (a dynamic step's expansion), a version it could not ask for
/// (`JobContext::tool_version`). Its message is a lowercase fragment that quotes what it could
/// not read; the engine shows it after the command whose output it was
/// (`cannot use the output of ...: MESSAGE`).
///
/// A `String` converts into one, so that `?` carries a message from a helper that returns
/// `Result<_, String>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PluginError {
    message: String,
}

impl PluginError {
    /// An error that says `message`.
    pub fn new(message: impl Into<String>) -> PluginError {
        PluginError { message: message.into() }
    }
}

impl From<String> for PluginError {
    fn from(message: String) -> PluginError {
        PluginError::new(message)
    }
}
