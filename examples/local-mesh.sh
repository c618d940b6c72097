#!/usr/bin/env bash
# A local 3-node mesh and the shell commands between its nodes.
# Run from the repository after `npm install`:  bash examples/local-mesh.sh
set -euo pipefail
cd "$(dirname "$0")/.."
macula() { node bin/macula.js "$@"; }

dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

# Waits for a line matching $2 in log $1 (up to 15 s) and prints the first capture of sed -E expression $3.
await_line() {
  for _ in $(seq 150); do
    if grep -qE "$2" "$1" 2>/dev/null; then sed -nE "s/$3/\1/p" "$1" | head -1; return; fi
    sleep 0.1
  done
  echo "no '$2' in $1" >&2; cat "$1" >&2; exit 1
}

# Starts a node in the background (in this shell, so cleanup knows its pid) and sets $addr.
start_node() { # name [bootstrap]
  local extra=()
  [ -n "${2:-}" ] && extra=(--bootstrap "$2")
  # node itself in the background (not the shell function), so $! is the process to stop
  node bin/macula.js start --host 127.0.0.1 --port 0 --data-dir "$dir/$1" --status-interval 0 "${extra[@]}" > "$dir/$1.log" &
  pids+=($!)
  addr="127.0.0.1:$(await_line "$dir/$1.log" 'listening' '.*listening 127\.0\.0\.1:([0-9]+).*')"
}

start_node n1; n1=$addr
start_node n2 "$n1"; n2=$addr
start_node n3 "$n1"; n3=$addr
await_line "$dir/n2.log" 'joined the mesh' '(.*)' > /dev/null
await_line "$dir/n3.log" 'joined the mesh' '(.*)' > /dev/null
echo "--- three nodes: $n1 $n2 $n3"

echo "--- sub on node 1 (sensors.#), pub on node 3"
node bin/macula.js sub 'sensors.#' --node "$n1" --count 2 > "$dir/sub.out" 2> "$dir/sub.err" &
sub=$!
await_line "$dir/sub.err" 'subscribed' '(.*)' > /dev/null
# A new subscription reaches other nodes' subscriber caches within 5 s: retry until delivered.
for _ in $(seq 20); do
  macula pub sensors.kitchen.temp '21.5' --node "$n3" > /dev/null
  if [ -s "$dir/sub.out" ]; then break; fi
  sleep 0.5
done
macula pub sensors.hall.humidity '40' --node "$n3"
wait "$sub"
cat "$dir/sub.out"

echo "--- serve on node 2, call from node 3"
node bin/macula.js serve text.upper --node "$n2" -- tr a-z A-Z 2> "$dir/serve.err" &
pids+=($!)
await_line "$dir/serve.err" 'serving' '(.*)' > /dev/null
macula call text.upper '"hello mesh"' --node "$n3"

echo "--- stats of node 1"
macula stats --node "$n1" --interval 0
