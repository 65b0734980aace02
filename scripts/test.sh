#!/usr/bin/env bash
# The project's test command: formatting, lints, every test, the third-party client suites
# against a live daemon, and a short fuzz smoke run.
# Usage: scripts/test.sh            (FUZZ_SECONDS=0 skips fuzzing, CONFORMANCE=0 the clients)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

# The CLI's golden test adds the cid-parity corpus from disk; generate it once per run.
if [ -z "${IPFS_KIT_CORPUS:-}" ]; then
  export IPFS_KIT_CORPUS="${TMPDIR:-/tmp}/ipfs-kit-cid-corpus"
fi
if [ ! -f "$IPFS_KIT_CORPUS/.complete" ]; then
  echo "== generating the cid-parity corpus in $IPFS_KIT_CORPUS"
  rm -rf "$IPFS_KIT_CORPUS"
  python3 ../shared/kubo/make_cid_corpus.py --generate-only --out-dir "$IPFS_KIT_CORPUS" >/dev/null
  touch "$IPFS_KIT_CORPUS/.complete"
fi

# The Kubo interop tests drive a real Kubo peer (../shared/kubo); set it up once (KUBO=0 skips).
if [ "${KUBO:-1}" != "0" ] && [ -z "${IPFS_KIT_KUBO:-}" ]; then
  echo "== setting up the Kubo peer"
  ../shared/kubo/setup.sh >/dev/null
  export IPFS_KIT_KUBO="$(cd ../shared/kubo && pwd)/kubo.sh"
fi

# The object storage tier's tests run against moto's S3 server (PyPI); install it once (S3=0
# skips them)...
if [ "${S3:-1}" != "0" ] && [ -z "${IPFS_KIT_MOTO:-}" ]; then
  venv="${TMPDIR:-/tmp}/ipfs-kit-moto"
  if [ ! -x "$venv/bin/moto_server" ]; then
    echo "== installing moto's S3 server into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "moto[server]==5.2.5"
  fi
  export IPFS_KIT_MOTO="$venv/bin/moto_server"
fi
# ...and s3rver (npm), which keeps its bucket on disk: the test of a server killed and
# restarted mid-migration needs one that still has the objects afterwards.
if [ "${S3:-1}" != "0" ] && [ -z "${IPFS_KIT_S3RVER:-}" ]; then
  s3rver="${TMPDIR:-/tmp}/ipfs-kit-s3rver"
  if [ ! -x "$s3rver/node_modules/.bin/s3rver" ]; then
    echo "== installing s3rver into $s3rver"
    rm -rf "$s3rver"
    npm install --silent --no-audit --no-fund --prefix "$s3rver" s3rver@3.7.1 >/dev/null
  fi
  export IPFS_KIT_S3RVER="$s3rver/node_modules/.bin/s3rver"
fi

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
  cargo test --workspace --doc
else
  cargo test --workspace --no-fail-fast
fi

# Third-party clients against a live daemon (set CONFORMANCE=0 to skip).
if [ "${CONFORMANCE:-1}" != "0" ]; then
  echo "== client conformance"
  cargo build --bin ipfs-kit
  scripts/conformance.sh "${CARGO_TARGET_DIR:-target}/debug/ipfs-kit"
fi

FUZZ_SECONDS="${FUZZ_SECONDS:-15}"
if [ "$FUZZ_SECONDS" != "0" ]; then
  echo "== fuzz smoke run (${FUZZ_SECONDS}s per target)"
  scripts/fuzz-smoke.sh "$FUZZ_SECONDS"
fi
