//! What a dump's bytes must show by its format (the engine's check of a dump whose processes
//! all exited 0 but which stopped short): the bytes it starts with, and those it ends with.

/// What a dump's bytes must show by its format, for a dump that stopped short to fail even when
/// every process exited 0: its first bytes, and a text among its last bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct EndCheck {
    /// The bytes it starts with.
    pub(crate) starts_with: &'static [u8],
    /// Bytes it ends with, give or take the whitespace after them.
    pub(crate) ends_with: &'static [u8],
    /// The text somewhere in its last [`EndCheck::TAIL`] bytes.
    pub(crate) ends_near: &'static [u8],
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
        let near = &tail[tail.len().saturating_sub(Self::TAIL)..];
        if !self.ends_near.is_empty() && !near.windows(self.ends_near.len()).any(|w| w == self.ends_near) {
            return Err(format!(
                "its end lacks `{}`, which the tool writes once the dump is complete: it was cut short",
                self.ends_near.escape_ascii()
            ));
        }
        Ok(())
    }
}
