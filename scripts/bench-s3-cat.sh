#!/usr/bin/env bash
# `cat` of a 64 MiB file that lives only in object storage (s3rver on loopback), with every
# request delayed by DELAY_MS through scripts/latency-proxy.py (an S3 "far away"), for each
# ipfs-kit binary given, interleaved, 3 rounds. Prints one line per run.
# Usage: IPFS_KIT_S3RVER=... scripts/bench-s3-cat.sh DELAY_MS BINARY...
set -euo pipefail
delay_ms="$1"; shift
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/ipfs-kit-s3cat.XXXXXX")"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
s3_port="$(port)"; proxy_port="$(port)"
NODE_OPTIONS=--openssl-legacy-provider "$IPFS_KIT_S3RVER" --directory "$work" --address 127.0.0.1 \
  --port "$s3_port" --configure-bucket bench >/dev/null 2>&1 &
s3_pid=$!
python3 "$here/latency-proxy.py" "$proxy_port" "$s3_port" "$(echo "$delay_ms / 1000" | bc -l)" &
proxy_pid=$!
trap 'kill $s3_pid $proxy_pid 2>/dev/null; rm -rf "$work"' EXIT
sleep 2
export IPFS_KIT_PATH="$work/repo"
bin="$1"
"$bin" init >/dev/null
for kv in "object_storage.bucket=\"bench\"" "object_storage.endpoint=\"http://127.0.0.1:$proxy_port\"" \
  "object_storage.access_key_id=\"S3RVER\"" "object_storage.secret_access_key=\"S3RVER\"" \
  "tiering.promote_at=0"; do
  "$bin" config set "${kv%%=*}" "${kv#*=}" 2>/dev/null
done
head -c 67108864 /dev/urandom > "$work/data.bin"
cid="$("$bin" add -Q "$work/data.bin")"
"$bin" storage migrate "$cid" s3 >/dev/null
echo "load before: $(cut -d' ' -f1 /proc/loadavg)"
for round in 1 2 3; do
  for b in "$@"; do
    start=$(date +%s.%N)
    "$b" cat "$cid" | cmp - "$work/data.bin"
    echo "$b round $round: $(echo "$(date +%s.%N) - $start" | bc) s"
  done
done
echo "load after: $(cut -d' ' -f1 /proc/loadavg)"
