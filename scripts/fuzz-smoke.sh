#!/usr/bin/env bash
# Fuzz smoke run: builds every cargo-fuzz target in fuzz/ and runs each for a short time.
#
#   scripts/fuzz-smoke.sh [SECONDS_PER_TARGET]      (default 15)
#
# Works on the stable toolchain: cargo-fuzz passes nightly-only flags (-Zsanitizer=address,
# -Cpasses=sancov-module, ...), which stable rustc accepts under RUSTC_BOOTSTRAP=1. AddressSanitizer
# is used; if that build fails the script falls back to `-s none` (libFuzzer without a sanitizer,
# still catching panics, overflow checks and debug assertions). Set FUZZ_SANITIZER=none to skip
# ASan from the start.
#
# Builds go to fuzz/target (never the main workspace's target/). Seed corpora are written to
# fuzz/corpus/<target>, crash inputs land in fuzz/artifacts/<target>; all three are git-ignored.
# Ends with a line `fuzz: N passed, M failed` and exits non-zero if any target crashed or failed
# to build.

set -euo pipefail

# Not named SECONDS: that is bash's own running clock.
secs="${1:-15}"
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/fuzz"
target_dir="$fuzz_dir/target"
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
cargo fuzz --version

# cargo-fuzz needs nightly-only rustc flags; stable accepts them with this set.
export RUSTC_BOOTSTRAP=1

cd "$fuzz_dir"

# Writes the bytes given as hex ($2) to file $1.
put_hex() {
    local escaped
    escaped="$(printf '%s' "$2" | sed 's/../\\x&/g')"
    # shellcheck disable=SC2059 # the escapes are the point
    printf "$escaped" >"$1"
}

# Small seed corpora of valid inputs, so each short run starts past the trivial rejections.
seed_corpus() {
    local d="$fuzz_dir/corpus"
    mkdir -p "$d/car" "$d/dagpb" "$d/unixfs_data" "$d/cid"

    # dag-pb: a bare UnixFS file node; "hello world\n" as Kubo stores it; a node with one link
    # (name "", tsize 20) to QmT78... followed by data.
    put_hex "$d/dagpb/seed-empty-file" 0a0408021800
    put_hex "$d/dagpb/seed-hello" 0a120802120c68656c6c6f20776f726c640a180c
    put_hex "$d/dagpb/seed-link" 12280a22122046d44814b9c5af141c3aaab7c05dc5e844ead5f91f12858b021eba45768b4c0e120018140a0408021800

    # UnixFS Data: file with data; directory; HAMT shard (bitfield, murmur3, fanout 256); file
    # with blocksizes, mode 0644 and mtime (secs + nanos).
    put_hex "$d/unixfs_data/seed-file" 0802120c68656c6c6f20776f726c640a180c
    put_hex "$d/unixfs_data/seed-dir" 0801
    put_hex "$d/unixfs_data/seed-hamt" 0805120200012822308002
    put_hex "$d/unixfs_data/seed-meta" 080218800820800420800438a403420708011501000000

    # CIDs as text, plus a dag-cbor and a dag-json document (the target decodes every input as both).
    printf '%s' QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o >"$d/cid/seed-v0"
    printf '%s' bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku >"$d/cid/seed-v1-raw"
    printf '%s' bafybeie5gq4jxvzmsym6hjlwxej4rwdoxt7wadqvmmwbqi7r27fclha2va >"$d/cid/seed-v1-pb"
    printf '%s' zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA >"$d/cid/seed-v1-b58"
    put_hex "$d/cid/seed-dagcbor" a26161d82a58250001551220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8556162830102f5
    printf '%s' '{"a":{"/":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},"b":[1,-2,"x",{"/":{"bytes":"aGk"}}]}' >"$d/cid/seed-dagjson"

    # IPNS records written by boxo (valid, V1-only, broken signatures, RSA).
    mkdir -p "$d/ipns_record"
    cp "$root"/crates/ipns/tests/fixtures/*.ipns-record "$d/ipns_record/"
    # DHT records: namespace byte (0: /ipns/), key length, the key (a name's multihash), the
    # first value's length (2 bytes), then the value (a boxo-written record of that name).
    mkdir -p "$d/dht_record"
    local f
    for f in "$root"/crates/ipns/tests/fixtures/k51*.ipns-record; do
        local name mh
        name="$(basename "$f" .ipns-record)"
        name="${name%%_*}"
        # The name's multihash: the CID bytes after version (01) and codec (72).
        mh="$(python3 -c 'import sys,base64
s=sys.argv[1][1:]
n=0
for ch in s: n=n*36+"0123456789abcdefghijklmnopqrstuvwxyz".index(ch)
b=n.to_bytes((n.bit_length()+7)//8,"big")
print(b[2:].hex())' "$name" 2>/dev/null)" || continue
        [ -n "$mh" ] || continue
        local size
        size=$(wc -c <"$f")
        { put_hex /dev/stdout "00$(printf '%02x' $((${#mh} / 2)))$mh$(printf '%04x' "$size")"; cat "$f"; } >"$d/dht_record/seed-$name"
    done
    # _redirects files: the spec's example, then a NUL and a request path.
    mkdir -p "$d/redirects"
    printf '/redirect-one /one.html\n/posts/:year/:month/:day/:title /articles/:year/:month/:day/:title 301\n/splat/* /redirected-splat/:splat 301\n/not-found/* /404.html 404\n/* /index.html 200\n\0/posts/2022/06/15/hello' >"$d/redirects/seed-example"
    printf '/source1/* /target-file?static-query1=static-val1 301\n/source2/:code/:name /target-file?code=:code&name=:name 301\n\0/source2/a/b' >"$d/redirects/seed-query"
    # Gateway request headers and parameters.
    mkdir -p "$d/gateway_headers"
    printf '%s' 'bytes=0-99, -5, 100-' >"$d/gateway_headers/seed-range"
    printf '%s' '512:-256' >"$d/gateway_headers/seed-entity-bytes"
    printf '%s' 'application/vnd.ipld.car; version=1; order=dfs; dups=y;q=0.5, text/html' >"$d/gateway_headers/seed-accept"
}
seed_corpus

targets=()
while IFS= read -r t; do
    [ -n "$t" ] && targets+=("$t")
done < <(cargo fuzz list --fuzz-dir "$fuzz_dir")
if [ "${#targets[@]}" -eq 0 ]; then
    echo "fuzz: no targets found in $fuzz_dir" >&2
    exit 1
fi

build() {
    cargo fuzz build --fuzz-dir "$fuzz_dir" --target-dir "$target_dir" -s "$1"
}

echo "fuzz: building ${#targets[@]} targets (${targets[*]}) with sanitizer $sanitizer"
build_start=$(date +%s)
if ! build "$sanitizer"; then
    if [ "$sanitizer" = none ]; then
        echo "fuzz: build failed" >&2
        echo "fuzz: 0 passed, ${#targets[@]} failed"
        exit 1
    fi
    echo "fuzz: build with sanitizer $sanitizer failed; retrying with -s none" >&2
    sanitizer=none
    if ! build none; then
        echo "fuzz: build failed" >&2
        echo "fuzz: 0 passed, ${#targets[@]} failed"
        exit 1
    fi
fi
echo "fuzz: build took $(($(date +%s) - build_start))s (sanitizer $sanitizer)"

log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT

passed=0
failed=0
failed_names=()
for t in "${targets[@]}"; do
    echo "fuzz: running $t for ${secs}s"
    mkdir -p "$fuzz_dir/corpus/$t"
    log="$log_dir/$t.log"
    start=$(date +%s)
    # -timeout: a single input running this long is a hang, reported as a failure.
    if cargo fuzz run --fuzz-dir "$fuzz_dir" --target-dir "$target_dir" -s "$sanitizer" "$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=25 >"$log" 2>&1; then
        passed=$((passed + 1))
        # libFuzzer's closing status line: executions, coverage, corpus size.
        summary="$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1 || true)"
        echo "fuzz: $t ok in $(($(date +%s) - start))s: ${summary:-no stats}"
    else
        failed=$((failed + 1))
        failed_names+=("$t")
        echo "fuzz: $t FAILED after $(($(date +%s) - start))s; last lines of its log:" >&2
        tail -n 60 "$log" >&2
        # The panic message sits above a backtrace that the tail may not reach.
        grep -E -A2 "panicked at|ERROR: (AddressSanitizer|libFuzzer)" "$log" | head -n 12 | sed "s/^/fuzz: $t: /" >&2 || true
        for a in "$fuzz_dir/artifacts/$t"/*; do
            [ -f "$a" ] || continue
            [ "$(stat -c %Y "$a")" -ge "$start" ] || continue
            echo "fuzz: $t artifact $a (hex, first 512 bytes):" >&2
            head -c 512 "$a" | od -An -tx1 -v | tr -d ' \n' >&2
            echo >&2
            echo "fuzz: reproduce with: (cd $fuzz_dir && RUSTC_BOOTSTRAP=1 cargo fuzz run --target-dir $target_dir -s $sanitizer $t $a)" >&2
        done
    fi
done

if [ "$failed" -gt 0 ]; then
    echo "fuzz: failed targets: ${failed_names[*]}" >&2
fi
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
