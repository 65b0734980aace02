#!/usr/bin/env bash
# Third-party client suites against a daemon on a throwaway repo: kubo-rpc-client and
# ipfshttpclient on the RPC API, ipfsspec and @helia/verified-fetch on the gateway, and a subset
# of interface-ipfs-core (in two passes: its "with sharding" tests on a node whose HAMT threshold
# is 1B, as the suite's Kubo harness configures that node, the rest on a default one). Fails when
# any check fails, except the ones listed below that need the libp2p network (which the node
# does not run yet; they answer Kubo's offline errors).
# Usage: scripts/conformance.sh [path/to/ipfs-kit]     (default: target/debug/ipfs-kit)
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug/ipfs-kit}
C=../shared/clients
export CLIENTS_DIR=${CLIENTS_DIR:-/tmp/clients}
if [ ! -x "$CLIENTS_DIR/venv/bin/python" ] || [ ! -d "$CLIENTS_DIR/js/node_modules" ] \
  || [ ! -d "$CLIENTS_DIR/iic/node_modules" ]; then
  echo "== installing the client suites into $CLIENTS_DIR"
  "$C/setup.sh" >/dev/null || { echo "client setup failed"; exit 1; }
fi

tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

IPFS_KIT_PATH="$tmp/repo" "$BIN" daemon --init --api /ip4/127.0.0.1/tcp/0 --gateway /ip4/127.0.0.1/tcp/0 --swarm /ip4/127.0.0.1/tcp/0 >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 1 100); do
  grep -q "Daemon is ready" "$tmp/out" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/err"; exit 1; }
  sleep 0.1
done
url_of() { # "<label> listening on /ip4/A/tcp/P" -> http://A:P
  grep "$1 server listening on /ip4/" "$tmp/out" | head -1 |
    sed -E 's#.*/ip4/([^/]+)/tcp/([0-9]+).*#http://\1:\2#'
}
RPC=$(url_of "RPC API")
GW=$(url_of "Gateway")
echo "== daemon: RPC $RPC${GW:+, gateway $GW}"

failed=()
run() { # name, command...
  local name=$1; shift
  echo "== $name"
  "$@" 2>&1 | tee "$tmp/log" | grep -E "^(FAIL|not ok)|passed|failing|passing" | tail -25
  [ "${PIPESTATUS[0]}" = 0 ] || failed+=("$name")
}

# Checks that need a second peer or the network: answered with Kubo's offline errors for now.
NET='stats bw|bitswap stat|swarm|routing|pubsub'
run kubo-rpc-client "$C/run-kubo-rpc.sh" "$RPC" --skip "$NET"
run ipfshttpclient "$C/run-py.sh" ipfshttpclient "$RPC" --connect --skip 'swarm|bitswap stat'
if [ -n "$GW" ]; then
  run ipfsspec "$C/run-py.sh" ipfsspec "$GW" --rpc "$RPC"
  run verified-fetch "$C/run-verified-fetch.sh" "$GW" --rpc "$RPC" --routing "$GW"
fi
iic_run() { # log file, pass: one pass of the groups issue 3 names against a fresh daemon
  # Pass "main": every test but interface-ipfs-core's "with sharding" ones, on a default repo.
  # Pass "sharding": only those, on a repo configured as the suite's Kubo harness spawns that
  # node, with the HAMT threshold at 1B (every non-empty directory is sharded).
  local repo="$tmp/iic-repo-$RANDOM" out="$tmp/iic-out-$RANDOM" p groups filter
  if [ "$2" = sharding ]; then
    IPFS_KIT_PATH="$repo" "$BIN" init >/dev/null &&
      IPFS_KIT_PATH="$repo" "$BIN" config set Internal.UnixFSShardingSizeThreshold 1B ||
      { echo "could not configure the sharding repo" >"$1"; return; }
    groups=root,files filter=(--grep 'with sharding')
  else
    groups="${IIC_GROUPS:-root,block,dag,files,pin,key,object,repo,config,miscellaneous}"
    filter=(--grep 'with sharding' --invert)
  fi
  IPFS_KIT_PATH="$repo" "$BIN" daemon --init --api /ip4/127.0.0.1/tcp/0 --gateway /ip4/127.0.0.1/tcp/0 --swarm /ip4/127.0.0.1/tcp/0 >"$out" 2>/dev/null &
  p=$!
  for _ in $(seq 1 100); do grep -q "Daemon is ready" "$out" 2>/dev/null && break; sleep 0.1; done
  IPFS_API_URL=$(grep "RPC API server listening on /ip4/" "$out" | head -1 |
    sed -E 's#.*/ip4/([^/]+)/tcp/([0-9]+).*#http://\1:\2#') \
    IIC_SKIP_FILE="$CLIENTS_DIR/iic/kubo-skips.json" IIC_GROUPS="$groups" \
    "$C/run-iic.sh" "${filter[@]}" >"$1" 2>&1
  kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null
  echo "  $2 pass: $(tail -1 "$1")"
}
iic_both() { # log prefix: both passes; prints "MAIN:SHARDING", the pair of logs, for check
  iic_run "$1-main.log" main >&2
  iic_run "$1-sharding.log" sharding >&2
  echo "$1-main.log:$1-sharding.log"
}
if [ "${IIC:-1}" != 0 ]; then
  # interface-ipfs-core: every failure must be a known one (scripts/iic-expected-failures.tsv),
  # over both passes. The suite has a few timing-dependent tests: a failure that does not
  # repeat on a second run on fresh daemons is reported as flaky, not failed.
  echo "== interface-ipfs-core"
  run1=$(iic_both "$tmp/iic1")
  check() { # runs, each the colon-separated logs of its passes
    python3 - scripts/iic-expected-failures.tsv "$@" <<'PY'
import re, sys
expected = {l.split("\t")[0] for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")}
def failing(path):
    log = open(path).read()
    if "interface-ipfs-core:" not in log:
        print(f"  {path}: the suite did not finish"); sys.exit(1)
    out = set()
    blk = log[log.find(" failing"):] if " failing" in log else ""
    for item in re.split(r"\n  \d+\) ", blk)[1:]:
        lines = [l.strip() for l in item.split("\n") if l.strip()]
        title = []
        for l in lines[1:]:
            title.append(l)
            if l.endswith(":"):
                break
        out.add(" / ".join(title).rstrip(":"))
    return out
runs = [set().union(*[failing(p) for p in run.split(":")]) for run in sys.argv[2:]]
unexpected = set.intersection(*[r - expected for r in runs])
flaky = set.union(*[r - expected for r in runs]) - unexpected
print(f"interface-ipfs-core: {len(runs[0])} failing, {len(runs[0] - expected)} not in the known list")
for t in sorted(expected - set.union(*runs)):
    print(f"  now passes (drop it from the list): {t}")
for t in sorted(flaky):
    print(f"  flaky (failed once, passed on the rerun): {t}")
for t in sorted(unexpected):
    print(f"  UNEXPECTED FAILURE: {t}")
sys.exit(1 if unexpected else 0)
PY
  }
  if ! check "$run1"; then
    echo "== interface-ipfs-core, rerun on fresh daemons"
    run2=$(iic_both "$tmp/iic2")
    check "$run1" "$run2" || failed+=(interface-ipfs-core)
  fi
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "conformance: failed: ${failed[*]}"
  exit 1
fi
echo "conformance: all suites passed"
