#!/bin/sh
# The benchmark, in one command: builds the release binary and the harness, then prints
# the table (Markdown). Arguments go to the harness: --runs N, --cold-runs N, --bin PATH.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --locked --quiet --manifest-path "$repo/Cargo.toml" --bin entra-token
cargo build --release --locked --quiet --manifest-path "$repo/bench/Cargo.toml"
exec "$repo/bench/target/release/entra-bench" --bin "$repo/target/release/entra-token" "$@"
