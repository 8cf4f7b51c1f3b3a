//! `ari-restic`: ari with every in-tree plugin and the restic backend.

use ari_restic as _;

fn main() {
    ari_cli::main()
}
