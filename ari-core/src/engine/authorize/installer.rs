//! The installer `ari authorize --install` runs on a host (and `--installer` prints): the
//! filter, the sudoers drop-in and the key's line, each drafted and checked before it goes in
//! place, the key's line written by whoever may write there.

use std::collections::BTreeSet;

use super::host_filter::{check_key_blob, HostFilter};
use super::installed::{handover_probes, PLAIN_SHELLS};
use crate::contract::quote::single_quoted;

impl HostFilter {
    /// A POSIX sh script that installs the filter and the key's line on the host, run there as
    /// the remote user (`ari authorize --install`, or piped to the admin's own ssh): the filter
    /// is written beside its place, tried (it must let `true` through and refuse anything else)
    /// and only then moved there; then, in the authorized_keys file, the key's earlier lines are
    /// replaced by the new one and every other line is kept as it was.
    pub fn installer(&self, key: &str) -> String {
        let blob = key.split_whitespace().nth(1).unwrap_or(key);
        // The key's earlier lines are found by its blob: a fragment would match other keys'.
        assert!(check_key_blob(blob).is_ok(), "the caller checks the key (check_key_blob)");
        let dir = std::path::Path::new(&self.path).parent().map(|d| d.to_string_lossy().into_owned());
        let owner = self.destination.split_once('@').map(|(user, _)| user.to_string());
        let keys = match (&self.keys_file, &owner) {
            (Some(file), _) => single_quoted(file),
            // Run by root for another user (the admin's `sudo sh`): that user's file.
            (None, Some(user)) => format!(
                "\"$(if [ \"$(id -u)\" = 0 ]; then getent passwd {0} | cut -d: -f6; else echo \"$HOME\"; fi)/.ssh/authorized_keys\"",
                single_quoted(user)
            ),
            (None, None) => "\"$HOME/.ssh/authorized_keys\"".to_string(),
        };
        // What ari sends to check a connection, as the filter must let it through.
        let probe = self.ssh.remote_text(&crate::contract::step::Program::Argv(vec!["true".to_string()]));
        let mut out = String::new();
        out.push_str("set -e; umask 022\n");
        out.push_str("new=; draft=\nfail() { [ -z \"$new\" ] || rm -f \"$new\"; [ -z \"$draft\" ] || rm -f \"$draft\"; echo \"ari: $1; nothing installed\" >&2; exit 1; }\n");
        // Before anything is written: the user whose key this is, and who runs it.
        let user = match &owner {
            Some(user) => {
                let quoted = single_quoted(user);
                out.push_str(&format!(
                    "getent passwd {quoted} >/dev/null 2>&1 || fail {}\n",
                    single_quoted(&format!("no user {user} here"))
                ));
                // Under remote_sudo only root may run it, which the drop-in's check says.
                if !self.ssh.sudo {
                    let run_as = if user == "root" { String::new() } else { format!(" \"{quoted}\", or as") };
                    out.push_str(&format!(
                        "[ \"$(id -u)\" = 0 ] || [ \"$(id -un)\" = {quoted} ] || fail \"this runs as $(id -un), not as \"{quoted}\" whose key it installs: run it as{run_as} root\"\n"
                    ));
                }
                quoted
            }
            None => "\"$(id -un)\"".to_string(),
        };
        // sshd starts the filter with the user's login shell: one that reads a startup file
        // first (bash's ~/.bashrc) runs whatever that file says before the filter.
        out.push_str(&format!(
            "shell=$(getent passwd {user} | cut -d: -f7) || shell=\ncase ${{shell:-/bin/sh}} in\n{}) ;;\n*) echo \"ari: warning: the login shell of \"{user}\" here is $shell, which runs its startup files (bash: ~/.bashrc) before ari's filter: use /bin/sh (chsh -s /bin/sh \"{user}\")\" >&2 ;;\nesac\n",
            PLAIN_SHELLS.join("|")
        ));
        if self.ssh.sudo {
            out.push_str(
                "[ \"$(id -u)\" = 0 ] || fail \"the sudoers drop-in needs root: run this as root (ari authorize --installer | ssh ADMIN@HOST sudo sh)\"\n\
                 [ -x /usr/sbin/visudo ] || fail \"sudo is not installed here (apt install sudo)\"\n",
            );
        }
        // A program the filter hands a request to must run here: its probe (`rrsync -help`)
        // finds it and its interpreter (rrsync is Python, and rsync's package only suggests
        // python3), as `ari check --connect` asks later.
        for probe in handover_probes(self) {
            let line = crate::contract::step::remote_line(&probe);
            out.push_str(&format!(
                "{line} >/dev/null 2>&1 || fail {}\n",
                single_quoted(&format!("`{line}` does not run here, and the filter hands rsync's requests to it (Debian: apt install rsync python3)"))
            ));
        }
        // Every draft is written and checked before anything goes in place.
        if let Some(dir) = dir.filter(|d| !d.is_empty()) {
            out.push_str(&format!("mkdir -p {}\n", single_quoted(&dir)));
        }
        out.push_str(&format!("filter={}; new=\"$filter.ari-new\"\n", single_quoted(&self.path)));
        out.push_str(&format!(
            "printf '%s' {} > \"$new\"; chmod 755 \"$new\"\n",
            single_quoted(&self.script)
        ));
        out.push_str(&format!(
            "SSH_ORIGINAL_COMMAND={} sh \"$new\" >/dev/null 2>&1 || fail \"the new filter refuses ari's connection check\"\n\
             if SSH_ORIGINAL_COMMAND='ari-filter-self-test' sh \"$new\" >/dev/null 2>&1; then fail \"the new filter lets anything through\"; fi\n",
            single_quoted(&probe)
        ));
        if let Some(sudoers) = self.sudoers() {
            out.push_str(&self.sudoers_draft(&sudoers));
            out.push_str("mv -f \"$draft\" \"$drop\"; echo \"ari: installed $drop\"\n");
        }
        out.push_str("mv -f \"$new\" \"$filter\"\n");
        out.push_str(&format!("keys={keys}\n"));
        // The key's line goes in by whoever may write there: root writes only into a
        // directory that no one else can write (nor plant a link in, nor swap for another:
        // every directory above it root's alone too); anywhere else (the remote user's own
        // ~/.ssh, or a root-owned ~/.ssh in a home the user owns) the user does, so that a link planted there reaches only what the
        // user could write anyway.
        let keys_part = format!(
            "set -e; umask 077; keys=$1; dir=$(dirname \"$keys\")\n\
             [ -d \"$dir\" ] || mkdir -p \"$dir\"\n\
             [ -e \"$keys\" ] || : > \"$keys\"\n\
             grep -v -F -e {} \"$keys\" > \"$keys.ari-new\" || [ $? = 1 ]\n\
             printf '%s\\n' {} >> \"$keys.ari-new\"\n\
             chmod 600 \"$keys.ari-new\"; mv -f \"$keys.ari-new\" \"$keys\"\n",
            single_quoted(blob),
            single_quoted(&self.key_line(key))
        );
        out.push_str(&format!("keys_part={}\n", single_quoted(&keys_part)));
        out.push_str(
            "root_only() { d=$1; while :; do [ -d \"$d\" ] && [ ! -L \"$d\" ] && [ \"$(stat -c %u \"$d\")\" = 0 ] && [ $((0$(stat -c %a \"$d\") & 022)) = 0 ] || return 1; [ \"$d\" != / ] || return 0; d=$(dirname \"$d\"); done; }\n\
             fail_keys() { echo \"ari: installed $filter, but not the key's line in $keys: $1\" >&2; exit 1; }\n",
        );
        match &owner {
            Some(user) if user != "root" => out.push_str(&format!(
                "if [ \"$(id -u)\" != 0 ] || root_only \"$(dirname \"$keys\")\"; then\n\
                 \tsh -c \"$keys_part\" sh \"$keys\" || fail_keys \"it could not be written\"\n\
                 \t[ \"$(id -u)\" != 0 ] || chown -h {0}: \"$keys\"\n\
                 else\n\
                 \tif command -v runuser >/dev/null 2>&1; then runuser -u {0} -- sh -c \"$keys_part\" sh \"$keys\"; else su -s /bin/sh -c \"$keys_part\" {0} sh \"$keys\"; fi \\\n\
                 \t\t|| fail_keys \"written as {1}, who owns its directory, it could not be\"\n\
                 fi\n",
                single_quoted(user),
                // A name of kinds::USER: letters, digits and `_.-`, nothing a shell reads.
                user,
            )),
            _ => out.push_str("sh -c \"$keys_part\" sh \"$keys\" || fail_keys \"it could not be written\"\n"),
        }
        out.push_str(&format!(
            "echo \"ari: installed $filter (sha256 {}) and the key's line in $keys\"\n",
            self.checksum
        ));
        out
    }

    /// The part of the installer that drafts the sudoers drop-in beside its place in
    /// /etc/sudoers.d (as root only): each `@PROGRAM@` replaced by the program's path in sudo's
    /// secure_path (found there as a file, not as a shell builtin), checked with `visudo -cf`.
    /// On a failure (`fail`, which the installer defines) it removes its draft and the
    /// filter's, and nothing is installed.
    fn sudoers_draft(&self, sudoers: &str) -> String {
        let user = self.destination.split_once('@').map_or("ari", |(user, _)| user);
        let name: String = user
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect();
        let programs: BTreeSet<&str> = self
            .sudo_entries
            .iter()
            .map(|(program, _)| program.as_str())
            .filter(|program| !program.starts_with('/'))
            .collect();
        let mut out = String::new();
        out.push_str(&format!("drop=/etc/sudoers.d/ari-{name}; draft=\"$drop.ari-new\"\n"));
        out.push_str(&format!("printf '%s' {} > \"$draft\"\n", single_quoted(sudoers)));
        if !programs.is_empty() {
            out.push_str(&format!(
                "for p in {}; do\n\
                 \tpath=\n\
                 \tfor d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do\n\
                 \t\tif [ -f \"$d/$p\" ] && [ -x \"$d/$p\" ]; then path=$d/$p; break; fi\n\
                 \tdone\n\
                 \t[ -n \"$path\" ] || fail \"$p is not installed here (sudo looks in its secure_path)\"\n\
                 \tsed -i \"s|@$p@|$path|g\" \"$draft\"\n\
                 done\n",
                programs.iter().map(|p| single_quoted(p)).collect::<Vec<_>>().join(" ")
            ));
        }
        out.push_str(
            "visudo -cf \"$draft\" >/dev/null || fail \"visudo refuses the drop-in\"\n\
             chmod 440 \"$draft\"\n",
        );
        out
    }
}
