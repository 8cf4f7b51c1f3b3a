//! rdiff-backup's way of failing: a Python traceback, whose frames push what came before it (ssh's
//! `Connection refused`, say) out of the last lines an error shows. The backend cuts each one down
//! to its exception line (`BackupBackend::error_lines`).

/// The line that starts a Python traceback.
const TRACEBACK: &str = "Traceback (most recent call last)";

/// `lines` with each Python traceback cut down to its exception line: the header and the
/// indented frames go, the first line after them that is not indented (the exception) stays.
/// Lines outside a traceback stay as they are.
pub fn without_tracebacks(lines: Vec<&str>) -> Vec<&str> {
    let mut kept = Vec::new();
    let mut in_traceback = false;
    for line in lines {
        if line.starts_with(TRACEBACK) {
            in_traceback = true;
        } else if in_traceback && !line.starts_with(char::is_whitespace) {
            in_traceback = false;
            kept.push(line);
        } else if !in_traceback {
            kept.push(line);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracebacks_shrink_to_their_exception() {
        let text = "ssh: connect to host 127.0.0.1 port 1: Connection refused\n\
                    Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n    f()\n\
                    AttributeError: 'NoneType' object has no attribute 'lstat'\n\
                    after";
        assert_eq!(
            without_tracebacks(text.lines().collect()),
            [
                "ssh: connect to host 127.0.0.1 port 1: Connection refused",
                "AttributeError: 'NoneType' object has no attribute 'lstat'",
                "after"
            ]
        );
        let plain = vec!["rsync: [sender] link_stat \"/x\" failed", "  indented, but no traceback"];
        assert_eq!(without_tracebacks(plain.clone()), plain, "lines it does not know stay");
    }
}
