#!/usr/bin/env bash
# Bitswap over loopback TCP, side by side with Kubo, interleaved per round, fresh random content
# each time. Per round:
#   kubo->kubo   Kubo B downloads a file Kubo A added
#   kit->kit     ipfs-kit Y cats a file ipfs-kit X added (one provider)
#   kit3->kit    ipfs-kit Y cats a file three ipfs-kit providers all have
#   kubo->kit    ipfs-kit Y cats a file Kubo A added
#   1KiB         time to the first (and only) byte of a 1 KiB file, kubo->kubo and kit->kit
#   dir10k       a directory of 10,000 small files (1-4 KiB), fetched whole and written out:
#                Kubo B `get` from Kubo A, ipfs-kit Y `get` from ipfs-kit X
# Reports wall seconds, MiB/s and the receiver's CPU seconds; medians over the rounds.
# Usage: scripts/bench-bitswap.sh [SIZE_MIB=256] [ROUNDS=3]   (BIN=target/release/ipfs-kit)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-256}
ROUNDS=${2:-3}
BIN=${BIN:-target/release/ipfs-kit}
K=../shared/kubo/kubo.sh
../shared/kubo/setup.sh >/dev/null
tmp=$(mktemp -d)
export KUBO_PEERS_DIR="$tmp/kubo"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  $K stop-all >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
$K start kA "$(port)" "$(port)" --max-life 3600 >/dev/null
$K start kB "$(port)" "$(port)" --max-life 3600 >/dev/null
$K connect kB "$($K addrs kA | grep /tcp/ | head -1)" >/dev/null

kit() { # name: start a daemon on free ports, TCP swarm only
  local repo="$tmp/$1"
  IPFS_KIT_PATH="$repo" "$BIN" init >/dev/null
  IPFS_KIT_PATH="$repo" "$BIN" daemon --api /ip4/127.0.0.1/tcp/0 --gateway /ip4/127.0.0.1/tcp/0 \
    --swarm /ip4/127.0.0.1/tcp/0 >"$tmp/$1.out" 2>/dev/null &
  pids+=($!)
  echo $! >"$tmp/$1.pid"
  for _ in $(seq 1 100); do grep -q "Daemon is ready" "$tmp/$1.out" && break; sleep 0.1; done
}
on() { local n=$1; shift; IPFS_KIT_PATH="$tmp/$n" "$BIN" "$@"; }
cpu_of() { awk '{print ($14+$15)/100}' "/proc/$1/stat"; }
kubo_cpu() { $K stats "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["cpu_user_s"] + d["cpu_sys_s"])'; }
for n in X X2 X3 Y; do kit $n; done
for n in X X2 X3; do on Y swarm connect "$(on $n swarm addrs local --id | grep /tcp/ | head -1)" >/dev/null; done
on Y swarm connect "$($K addrs kA | grep /tcp/ | head -1)" >/dev/null
ypid=$(cat "$tmp/Y.pid")
# Y is read over its RPC API with curl (no CLI process start inside the timing); Kubo's figure is
# its Download call alone.
yapi=$(sed -E 's#/ip4/([^/]+)/tcp/([0-9]+)#http://\1:\2#' "$tmp/Y/api")
ycat() { curl -sf -X POST "$yapi/api/v0/cat?arg=$1" -o "$2"; }

declare -A results
record() { results[$1]+="$2 "; }
gen() { head -c "$1" /dev/urandom >"$tmp/data"; }
gendir() { # 10,000 files of 1-4 KiB of fresh random bytes in $tmp/dir
  rm -rf "$tmp/dir"; python3 - "$tmp/dir" <<'GEN'
import os, random, sys
d = sys.argv[1]; os.makedirs(d)
for i in range(10000):
    with open(os.path.join(d, f"f{i:05}"), "wb") as f:
        f.write(os.urandom(random.randint(1024, 4096)))
GEN
}

echo "== bitswap ${SIZE} MiB, ${ROUNDS} rounds, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
  # kubo -> kubo
  gen $((SIZE << 20)); cid=$($K add kA "$tmp/data")
  c0=$(kubo_cpu kB); s=$($K get kB "$cid" "$tmp/out-k" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["seconds"])'); c1=$(kubo_cpu kB)
  cmp -s "$tmp/data" "$tmp/out-k" || { echo "kubo->kubo bytes differ"; exit 1; }
  record kubo "$s:$(echo "$c1 - $c0" | bc)"; rm -f "$tmp/out-k"
  # kit -> kit, one provider
  gen $((SIZE << 20)); cid=$(on X add -Q "$tmp/data")
  c0=$(cpu_of "$ypid"); t0=$(date +%s.%N); ycat "$cid" "$tmp/out-y"; t1=$(date +%s.%N); c1=$(cpu_of "$ypid")
  cmp -s "$tmp/data" "$tmp/out-y" || { echo "kit->kit bytes differ"; exit 1; }
  record kit "$(echo "$t1 - $t0" | bc):$(echo "$c1 - $c0" | bc)"
  # kit x3 -> kit
  gen $((SIZE << 20)); for n in X X2 X3; do cid=$(on $n add -Q "$tmp/data"); done
  c0=$(cpu_of "$ypid"); t0=$(date +%s.%N); ycat "$cid" "$tmp/out-y"; t1=$(date +%s.%N); c1=$(cpu_of "$ypid")
  cmp -s "$tmp/data" "$tmp/out-y" || { echo "kit3->kit bytes differ"; exit 1; }
  record kit3 "$(echo "$t1 - $t0" | bc):$(echo "$c1 - $c0" | bc)"
  # kubo -> kit
  gen $((SIZE << 20)); cid=$($K add kA "$tmp/data")
  c0=$(cpu_of "$ypid"); t0=$(date +%s.%N); ycat "$cid" "$tmp/out-y"; t1=$(date +%s.%N); c1=$(cpu_of "$ypid")
  cmp -s "$tmp/data" "$tmp/out-y" || { echo "kubo->kit bytes differ"; exit 1; }
  record kubokit "$(echo "$t1 - $t0" | bc):$(echo "$c1 - $c0" | bc)"
  # 1 KiB: time to the whole (one-block) file
  gen 1024; cid=$($K add kA "$tmp/data")
  s=$($K get kB "$cid" "$tmp/out-k" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["seconds"])'); rm -f "$tmp/out-k"
  record ttfb_kubo "$s:0"
  # curl's own clock, from before connecting to the last byte: Kubo's figure is an in-process
  # call, so a process start on our side only would measure curl, not the fetch.
  gen 1024; cid=$(on X add -Q "$tmp/data")
  s=$(curl -sf -X POST "$yapi/api/v0/cat?arg=$cid" -o /dev/null -w '%{time_total}')
  record ttfb_kit "$s:0"
  # 10,000 small files, written out as a directory on both sides
  gendir; cid=$($K add kA "$tmp/dir")
  c0=$(kubo_cpu kB); s=$($K get kB "$cid" "$tmp/out-k" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["seconds"])'); c1=$(kubo_cpu kB)
  diff -rq "$tmp/dir" "$tmp/out-k" >/dev/null || { echo "kubo->kubo dir differs"; exit 1; }
  record dir_kubo "$s:$(echo "$c1 - $c0" | bc)"; rm -rf "$tmp/out-k"
  gendir; cid=$(on X add -Q -r "$tmp/dir")
  c0=$(cpu_of "$ypid"); t0=$(date +%s.%N); on Y get "$cid" -o "$tmp/out-ydir" >/dev/null; t1=$(date +%s.%N); c1=$(cpu_of "$ypid")
  diff -rq "$tmp/dir" "$tmp/out-ydir" >/dev/null || { echo "kit->kit dir differs"; exit 1; }
  record dir_kit "$(echo "$t1 - $t0" | bc):$(echo "$c1 - $c0" | bc)"; rm -rf "$tmp/out-ydir"
  echo "  round $r done (load $(cut -d' ' -f1 /proc/loadavg))"
done

python3 - "$SIZE" <<PY
import statistics, sys
size = int(sys.argv[1])
res = {k: [tuple(map(float, x.split(":"))) for x in v.split()] for k, v in {
$(for k in "${!results[@]}"; do echo "  '$k': '${results[$k]}',"; done)
}.items()}
med = lambda k, i: statistics.median(x[i] for x in res[k])
print(f"{'case':<12}{'wall s':>9}{'MiB/s':>9}{'recv CPU s':>12}")
for k in ["kubo", "kit", "kit3", "kubokit"]:
    w = med(k, 0)
    print(f"{k:<12}{w:>9.2f}{size / w:>9.1f}{med(k, 1):>12.2f}")
print(f"kit/kubo throughput ratio: {med('kubo', 0) / med('kit', 0):.1f}x;  kit3 vs kit: {med('kit', 0) / med('kit3', 0):.2f}x")
print(f"10k small files: kubo->kubo {med('dir_kubo', 0):.2f} s (CPU {med('dir_kubo', 1):.2f}), kit->kit {med('dir_kit', 0):.2f} s (CPU {med('dir_kit', 1):.2f}): {med('dir_kubo', 0) / med('dir_kit', 0):.1f}x")
print(f"1 KiB fetch: kubo->kubo {med('ttfb_kubo', 0) * 1000:.1f} ms, kit->kit {med('ttfb_kit', 0) * 1000:.1f} ms (ipfs-kit: the RPC call as curl times it)")
PY
