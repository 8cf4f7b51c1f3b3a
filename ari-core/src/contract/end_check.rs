//! What a dump's bytes must show by its format (the engine's check of a dump whose processes
//! all exited 0 but which stopped short): the bytes it starts with, and those it ends with.

/// What a dump's bytes must show by its format, for a dump that stopped short to fail even when
/// every process exited 0: its first bytes, its last bytes, its last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct EndCheck {
    /// The bytes it starts with.
    pub(crate) starts_with: &'static [u8],
    /// Bytes it ends with, give or take the whitespace after them.
    pub(crate) ends_with: &'static [u8],
    /// What its last non-blank line starts with (mysqldump escapes a newline in data, so no row
    /// can make such a line).
    pub(crate) last_line_starts_with: &'static [u8],
}

impl EndCheck {
    /// How much of a dump's end ari keeps to check it.
    pub(crate) const TAIL: usize = 4096;

    /// Why `head` (the dump's first bytes) and `tail` (its last bytes) show a dump that stopped
    /// short, if they do.
    pub(crate) fn judge(&self, head: &[u8], tail: &[u8]) -> Result<(), String> {
        if !head.starts_with(self.starts_with) {
            return Err(format!(
                "it does not start as its format does (`{}`)",
                self.starts_with.escape_ascii()
            ));
        }
        let trimmed = tail.trim_ascii_end();
        if !trimmed.ends_with(self.ends_with) {
            return Err(format!(
                "it does not end as its format does (`{}`): it was cut short",
                self.ends_with.escape_ascii()
            ));
        }
        let last_line = trimmed.rsplit(|&b| b == b'\n').next().unwrap_or_default();
        if !last_line.starts_with(self.last_line_starts_with) {
            return Err(format!(
                "its last line is not `{}...`, which the tool writes once the dump is complete: it was cut short",
                self.last_line_starts_with.escape_ascii()
            ));
        }
        Ok(())
    }
}
