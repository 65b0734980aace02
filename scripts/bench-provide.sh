#!/usr/bin/env bash
# Providing to a local DHT: NODES ipfs-kit DHT servers on loopback (a star around a hub), plus
#   P  stores KEYS raw blocks and reprovides them with the batched provider (the default), and
#   Q  stores CLASSIC_KEYS of them and reprovides with one DHT lookup per key (Kubo's default
#      method: network.accelerated_dht_client = false),
# interleaved per round. Each round times `routing reprovide` over the RPC API (curl, wall time)
# and then checks that another node finds P (and Q) as provider of a sample of the keys.
# Reports keys per minute, medians over the rounds, and the machine load.
# Kubo's peer in ../shared/kubo has no RPC API (no `routing provide` to time) and its DHT stays a
# client on loopback, so it cannot take part; the classic method stands in for Kubo's.
# Usage: scripts/bench-provide.sh [KEYS=100000] [ROUNDS=3] [NODES=6] [CLASSIC_KEYS=10000]
#        (BIN=target/release/ipfs-kit)
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${1:-100000}
ROUNDS=${2:-3}
NODES=${3:-6}
CLASSIC_KEYS=${4:-10000}
BIN=${BIN:-target/release/ipfs-kit}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# A CARv1 of n raw blocks (8 bytes each: a run salt and the index), CIDv1 sha2-256.
car() { # n file
  python3 - "$1" "$2" <<'PY'
import hashlib, os, sys
n, path = int(sys.argv[1]), sys.argv[2]
salt = os.urandom(4)
def varint(x):
    out = bytearray()
    while x >= 0x80:
        out.append((x & 0x7f) | 0x80); x >>= 7
    out.append(x); return bytes(out)
def cid(data):
    return bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
blocks = [salt + i.to_bytes(4, "big") for i in range(n)]
root = cid(blocks[0])
# dag-cbor {"roots": [CID], "version": 1}
tag = b"\xd8\x2a" + b"\x58" + bytes([len(root) + 1]) + b"\x00" + root
header = b"\xa2" + b"\x65roots" + b"\x81" + tag + b"\x67version" + b"\x01"
with open(path, "wb") as f:
    f.write(varint(len(header)) + header)
    for b in blocks:
        c = cid(b)
        f.write(varint(len(c) + len(b)) + c + b)
PY
}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
on() { local n=$1; shift; IPFS_KIT_PATH="$tmp/$n" "$BIN" "$@"; }
init() { on "$1" init >/dev/null; }
start() { # name: a DHT server on free ports, TCP swarm only
  IPFS_KIT_PATH="$tmp/$1" "$BIN" daemon --api /ip4/127.0.0.1/tcp/0 --gateway /ip4/127.0.0.1/tcp/0 \
    --swarm "/ip4/127.0.0.1/tcp/$(port)" --routing dhtserver >"$tmp/$1.out" 2>"$tmp/$1.err" &
  pids+=($!)
  for _ in $(seq 1 200); do grep -qs "Daemon is ready" "$tmp/$1.out" && return; sleep 0.1; done
  echo "$1 did not start"; cat "$tmp/$1.err"; exit 1
}
api() { sed -E 's#/ip4/([^/]+)/tcp/([0-9]+)#http://\1:\2#' "$tmp/$1/api"; }
rpc() { local n=$1 cmd=$2; shift 2; curl -sf -X POST "$(api "$n")/api/v0/$cmd$*"; }

echo "== generating $KEYS keys"
car "$KEYS" "$tmp/keys.car"
for n in P Q; do init $n; done
on P dag import --pin-roots=false "$tmp/keys.car" >/dev/null
# Q stores the first CLASSIC_KEYS blocks only: a second CAR of the same salt is not needed,
# a prefix of P's is written by python again with the same layout.
python3 - "$tmp/keys.car" "$tmp/classic.car" "$CLASSIC_KEYS" <<'PY'
import sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(src, "rb").read()
def varint(b, i):
    x = s = 0
    while True:
        c = b[i]; i += 1; x |= (c & 0x7f) << s; s += 7
        if c < 0x80: return x, i
l, i = varint(data, 0); i += l
out = bytearray(data[:i])
for _ in range(n):
    l, j = varint(data, i); out += data[i:j + l]; i = j + l
open(dst, "wb").write(out)
PY
on Q dag import --pin-roots=false "$tmp/classic.car" >/dev/null
on Q config set network.accelerated_dht_client false
for n in P Q; do on $n config set network.reprovider_interval 1000h; done
for i in $(seq 1 "$NODES"); do init "D$i"; start "D$i"; done
start P; start Q
hub=$(on D1 swarm addrs local --id | grep /tcp/ | head -1)
for n in $(seq 2 "$NODES") P Q; do
  [ "$n" = P ] || [ "$n" = Q ] || n="D$n"
  on $n swarm connect "$hub" >/dev/null
done
sleep 3 # identify fills the routing tables
# The daemons' first automatic reprovide (a minute after start) is the warm-up: wait for it.
for n in P Q; do
  for _ in $(seq 1 1200); do
    size=$(rpc $n stats/provide | python3 -c 'import json,sys; print(json.load(sys.stdin)["LastReprovideBatchSize"])')
    [ "$size" -gt 0 ] && break; sleep 0.5
  done
done

check() { # provider-node verifier-node keys...: the verifier finds the provider for each key
  local want verifier=$2 key found
  want=$(rpc "$1" id | python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])')
  shift 2
  for key in "$@"; do
    found=$(rpc "$verifier" routing/findprovs "?arg=$key&num-providers=20" | grep -c "$want" || true)
    [ "$found" -gt 0 ] || { echo "provider of $key not found"; exit 1; }
  done
}
sample() { # n: n keys spread over the first $2 stored
  on P refs local | python3 -c "import sys; k=sys.stdin.read().split(); k=[c for c in k][:$2]; step=max(1,len(k)//$1); print(' '.join(k[::step][:$1]))"
}

declare -A results last
echo "== providing: $KEYS keys (batched) and $CLASSIC_KEYS (per key) to a DHT of $((NODES + 2)) servers, $ROUNDS rounds, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
  for n in P Q; do
    t0=$(date +%s.%N); rpc $n routing/reprovide >/dev/null; t1=$(date +%s.%N)
    last[$n]=$(echo "$t1 - $t0" | bc)
    results[$n]+="${last[$n]} "
  done
  check P D3 $(sample 20 "$KEYS")
  echo "  round $r: batched ${last[P]} s, per key ${last[Q]} s; 20 sampled keys found (load $(cut -d' ' -f1 /proc/loadavg))"
done
python3 - "$KEYS" "$CLASSIC_KEYS" <<PY
import statistics, sys
keys, classic = int(sys.argv[1]), int(sys.argv[2])
p = [float(x) for x in "${results[P]}".split()]
q = [float(x) for x in "${results[Q]}".split()]
mp, mq = statistics.median(p), statistics.median(q)
print(f"batched:  {keys} keys in {mp:.2f} s (median) = {keys / mp * 60:,.0f} keys/min")
print(f"per key:  {classic} keys in {mq:.2f} s (median) = {classic / mq * 60:,.0f} keys/min")
print(f"batched / per-key rate: {(keys / mp) / (classic / mq):.1f}x")
PY
