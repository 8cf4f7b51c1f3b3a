//! The `ari` binary: every in-tree plugin, linked in by `ari_cli`.

fn main() {
    ari_cli::main()
}
