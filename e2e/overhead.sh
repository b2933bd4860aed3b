#!/usr/bin/env bash
# overhead.sh measures what weft costs a busy HTTP/1.1 server: nginx serves a
# small file to wrk on loopback for DURATION seconds without weft, then with
# weft tracing it (spans built, exporter "none"), and prints both request
# rates and their ratio. Root only; bounded in time; loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
PORT=${PORT:-18080}
dir=$(mktemp -d)
trap 'kill $(cat "$dir/nginx.pid" 2>/dev/null) 2>/dev/null || true; [ -n "${weft:-}" ] && kill "$weft" 2>/dev/null; rm -rf "$dir"' EXIT
echo hello > "$dir/index.html"
cat > "$dir/nginx.conf" <<CONF
daemon on; master_process on; worker_processes 1; user root;
pid $dir/nginx.pid; error_log $dir/error.log;
events { worker_connections 256; }
http { access_log off; sendfile on; keepalive_requests 1000000;
  client_body_temp_path $dir/b; proxy_temp_path $dir/p; fastcgi_temp_path $dir/f; uwsgi_temp_path $dir/u; scgi_temp_path $dir/s;
  server { listen 127.0.0.1:$PORT; root $dir; } }
CONF
nginx -p "$dir" -c "$dir/nginx.conf"
rate() { wrk -t1 -c8 -d"${DURATION}s" "http://127.0.0.1:$PORT/index.html" | awk '/Requests\/sec/ {print $2}'; }
wrk -t1 -c8 -d2s "http://127.0.0.1:$PORT/index.html" >/dev/null # warm up
base=$(rate)
go build -o "$dir/weft" ./cmd/weft
"$dir/weft" --exporter none --http-addr 127.0.0.1:0 2>"$dir/weft.log" &
weft=$!
for _ in $(seq 100); do grep -q "weft ready" "$dir/weft.log" && break; sleep 0.1; done
grep -q "weft ready" "$dir/weft.log" || { cat "$dir/weft.log"; exit 1; }
cpu0=$(awk '{print $14+$15}' /proc/$weft/stat)
traced=$(rate)
cpu1=$(awk '{print $14+$15}' /proc/$weft/stat)
tck=$(getconf CLK_TCK)
echo "nginx+wrk, ${DURATION}s, 8 connections: ${base} req/s without weft, ${traced} req/s with weft, ratio $(awk "BEGIN {printf \"%.3f\", $traced/$base}")"
echo "weft user-space CPU while tracing: $(awk "BEGIN {printf \"%.2f\", ($cpu1-$cpu0)/$tck/$DURATION}") cores"
