//! Quoting words so that they arrive intact: for the remote user's shell (ssh hands its command
//! to that shell as one string), and for rsync's own splitting of its `-e` command.
//!
//! A word goes unquoted only when it consists of characters that no shell (bash, dash, zsh, with
//! or without interactive options such as history expansion or extended globs) treats
//! specially; everything else is put in single quotes, where no shell expands anything. That
//! rules out braces (`{a,b}` is two words to bash and zsh), `~`, `!`, `#`, `^`, globs, `$`,
//! quotes, whitespace, `=` at the start of a word (zsh's `=cmd`), and `==` or `:=` inside one
//! (zsh's `magic_equal_subst` expands `a==ls` and `a=b:=ls`).

use std::borrow::Cow;

/// Whether `byte` is special to no shell in any position of a word.
fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(byte, b'_' | b'.' | b'/' | b'-' | b',' | b':' | b'@' | b'%' | b'+' | b'=')
}

/// `word` as a POSIX shell word that bash, dash and zsh all read back as `word`.
pub fn shell_quote(word: &str) -> Cow<'_, str> {
    let plain = !word.is_empty()
        && !word.starts_with('=')
        && !word.contains("==")
        && !word.contains(":=")
        && word.bytes().all(is_plain);
    if plain {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(single_quoted(word))
    }
}

/// The words as one shell command line, each quoted by [`shell_quote`].
pub fn shell_join<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> String {
    let mut line = String::new();
    for word in words {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&shell_quote(word.as_ref()));
    }
    line
}

/// `word` as rsync splits its `-e` command: on spaces only, with `'...'` or `"..."` quoting in
/// which a doubled quote stands for itself, and no backslash escapes.
pub(crate) fn rsync_rsh_quote(word: &str) -> Cow<'_, str> {
    if !word.is_empty() && !word.contains([' ', '\'', '"']) {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', "''")))
    }
}

/// The words as an rsync `-e` command, which rsync splits on spaces only: a word with a space
/// or a quote goes in single quotes, a `'` in it doubled.
pub fn rsync_rsh_join<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> String {
    words.into_iter().map(|w| rsync_rsh_quote(w.as_ref()).into_owned()).collect::<Vec<_>>().join(" ")
}

/// `word` in single quotes for a POSIX shell, whatever it holds (a `'` as `'\''`).
pub(crate) fn single_quoted(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_and_the_rest_is_single_quoted() {
        let check = |word: &str, expected: &str| assert_eq!(shell_quote(word), expected, "{word:?}");
        check("/var/lib/mysql", "/var/lib/mysql");
        check("--exclude=/x", "--exclude=/x");
        check("user@host:/p,q+r%s", "user@host:/p,q+r%s");
        check("", "''");
        check("a b", "'a b'");
        check("{a,b}", "'{a,b}'");
        check("x{1..3}", "'x{1..3}'");
        check("~root", "'~root'");
        check("!!", "'!!'");
        check("$((1+1))", "'$((1+1))'");
        check("*.sql", "'*.sql'");
        check("#x", "'#x'");
        check("^x", "'^x'");
        check("=ls", "'=ls'");
        check("a=b", "a=b");
        check("a==ls", "'a==ls'");
        check("a=b:=ls", "'a=b:=ls'");
        check("it's", r"'it'\''s'");
        check("back\\slash", "'back\\slash'");
        check("new\nline\ttab", "'new\nline\ttab'");
    }

    #[test]
    fn rsync_splits_on_spaces_and_doubles_quotes() {
        let check = |word: &str, expected: &str| assert_eq!(rsync_rsh_quote(word), expected, "{word:?}");
        check("/usr/bin/ssh", "/usr/bin/ssh");
        check("-oProxyCommand=a\tb", "-oProxyCommand=a\tb");
        check("/etc/ari ssh", "'/etc/ari ssh'");
        check("it's", "'it''s'");
        check("say \"hi\"", "'say \"hi\"'");
        check("", "''");
        assert_eq!(rsync_rsh_join(["ssh", "-F", "/a b"]), "ssh -F '/a b'");
    }
}
