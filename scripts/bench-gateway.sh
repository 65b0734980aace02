#!/usr/bin/env bash
# Gateway load benchmark: requests/s and latency (p50, p99) of GET /ipfs/{cid} for a 4 KiB and a
# 1 MiB file, ipfs-kit's gateway against nginx serving the same bytes from disk (the ceiling), on
# loopback with wrk. Runs alternate A/B/A/B; the medians are printed as a markdown table, with
# the load average before and after.
#
#   scripts/bench-gateway.sh [PAIRS] [SECONDS] [CONNECTIONS]      (defaults 5, 10, 16)
#
# Needs wrk and nginx (apt-get install wrk nginx-light) and a release build of the CLI
# (cargo build --release -p ipfs-kit-cli; IPFS_KIT_BIN overrides the binary). nginx runs as
# `nobody` with its own config in a temporary directory; everything is stopped on exit.
set -euo pipefail

pairs="${1:-5}"
secs="${2:-10}"
conns="${3:-16}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${IPFS_KIT_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/ipfs-kit}"
for t in wrk nginx "$bin"; do
    command -v "$t" >/dev/null 2>&1 || { echo "bench-gateway: $t not found" >&2; exit 2; }
done

tmp="$(mktemp -d)"
chmod 755 "$tmp"
daemon_pid=""
nginx_pid=""
cleanup() {
    [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/www" "$tmp/nginx"
head -c 4096 /dev/urandom >"$tmp/www/small.bin"
head -c 1048576 /dev/urandom >"$tmp/www/big.bin"
chmod 644 "$tmp/www"/*

"$bin" --repo-dir "$tmp/repo" init >/dev/null
small_cid="$("$bin" --repo-dir "$tmp/repo" add -Q "$tmp/www/small.bin")"
big_cid="$("$bin" --repo-dir "$tmp/repo" add -Q "$tmp/www/big.bin")"

"$bin" --repo-dir "$tmp/repo" daemon --api /ip4/127.0.0.1/tcp/0 --gateway /ip4/127.0.0.1/tcp/0 --swarm /ip4/127.0.0.1/tcp/0 \
    >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do grep -q "Daemon is ready" "$tmp/daemon.log" && break; sleep 0.1; done
gw="$(sed -n 's|^Gateway server listening on /ip4/\(.*\)/tcp/\(.*\)$|http://\1:\2|p' "$tmp/daemon.log" | head -1)"
[ -n "$gw" ] || { echo "bench-gateway: daemon did not start" >&2; cat "$tmp/daemon.log" >&2; exit 1; }

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    types { application/octet-stream bin; }
    server { listen 127.0.0.1:$port; root $tmp/www; }
}
CONF
run_nginx=(nginx -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log")
if [ "$(id -u)" = 0 ]; then
    chown -R nobody "$tmp/nginx"
    run_nginx=(runuser -u nobody -- "${run_nginx[@]}")
fi
"${run_nginx[@]}" &
nginx_pid=$!
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/small.bin" && break; sleep 0.1; done

# Sanity: both serve the same bytes.
for f in small big; do
    cid_var="${f}_cid"
    cmp <(curl -sf "$gw/ipfs/${!cid_var}") "$tmp/www/$f.bin"
    cmp <(curl -sf "http://127.0.0.1:$port/$f.bin") "$tmp/www/$f.bin"
done

# One wrk run: prints "requests_per_s p50_ms p99_ms".
measure() {
    wrk -t1 -c"$conns" -d"${secs}s" --latency "$1" | awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        END { printf "%.0f %.3f %.3f\n", rps, p50, p99 }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "load before: $(cat /proc/loadavg)"
declare -A runs
for i in $(seq "$pairs"); do
    for f in small big; do
        cid_var="${f}_cid"
        runs[ipfs-kit-$f]+="$(measure "$gw/ipfs/${!cid_var}")"$'\n'
        runs[nginx-$f]+="$(measure "http://127.0.0.1:$port/$f.bin")"$'\n'
    done
    echo "pair $i done: $(cat /proc/loadavg)" >&2
done
echo "load after: $(cat /proc/loadavg)"
echo
echo "| file | server | req/s (median) | p50 ms | p99 ms | ratio to nginx |"
echo "|---|---|---|---|---|---|"
for f in small big; do
    label=$([ "$f" = small ] && echo "4 KiB" || echo "1 MiB")
    ng="$(printf '%s' "${runs[nginx-$f]}" | awk 'NF' | cut -d' ' -f1 | median)"
    for s in ipfs-kit nginx; do
        r="${runs[$s-$f]}"
        rps="$(printf '%s' "$r" | awk 'NF' | cut -d' ' -f1 | median)"
        p50="$(printf '%s' "$r" | awk 'NF' | cut -d' ' -f2 | median)"
        p99="$(printf '%s' "$r" | awk 'NF' | cut -d' ' -f3 | median)"
        ratio="$(awk -v a="$rps" -v b="$ng" 'BEGIN { printf "%.2f", a / b }')"
        echo "| $label | $s | $rps | $p50 | $p99 | $ratio |"
    done
done
