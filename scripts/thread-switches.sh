#!/bin/bash
# Per-thread context switches and CPU of one echo server during a 1-connection
# 64-byte RPC run: which threads of the server wake per request.
# Usage: scripts/thread-switches.sh TASBENCH linux|gotas   (root; namespaces are
# unique and deleted by name, the server is ended by its pid)
set -euo pipefail
BIN=$1
STACK=$2
NS=gtthr$$
TMP=$(mktemp -d)
ip netns add ${NS}c; ip netns add ${NS}s
cleanup() {
	[ -n "${SPID:-}" ] && kill "$SPID" 2>/dev/null
	wait 2>/dev/null
	ip netns del ${NS}c
	ip netns del ${NS}s
	rm -rf "$TMP"
}
trap cleanup EXIT
ip link add c0 netns ${NS}c type veth peer name s0 netns ${NS}s
for n in c s; do ip -n ${NS}$n link set lo up; ip -n ${NS}$n link set ${n}0 up; done
ip -n ${NS}c addr add 10.232.0.1/24 dev c0
if [ "$STACK" = linux ]; then
  ip -n ${NS}s addr add 10.232.0.2/24 dev s0
  ip netns exec ${NS}s "$BIN" echo-server --stack=linux --bind 10.232.0.2 --port 7000 >/dev/null &
else
  ip netns exec ${NS}s "$BIN" echo-server --stack=gotas --ip-addr=10.232.0.2/24 --nic=afxdp:s0 --port 7000 >/dev/null &
fi
SPID=$!
sleep 2
snap() { for t in /proc/$SPID/task/*; do
  tid=${t##*/}
  v=$(awk '/^voluntary_ctxt/{print $2}' $t/status); iv=$(awk '/^nonvoluntary_ctxt/{print $2}' $t/status)
  cpu=$(awk '{s=$0; sub(/.*\) /,"",s); split(s,f," "); print f[12]+f[13]}' $t/stat)
  echo "$tid $v $iv $cpu"; done; }
snap > "$TMP/before"
out=$(ip netns exec ${NS}c "$BIN" echo-client --addr 10.232.0.2:7000 --conns 1 --duration 4s --warmup 0s --json)
snap > "$TMP/after"
reqs=$(echo "$out" | sed 's/.*"requests":\([0-9]*\).*/\1/')
echo "$STACK server, $reqs requests in 4 s (dial included)"
echo "tid  vol/req  invol/req  cpu-ticks  wchan-now"
join "$TMP/before" "$TMP/after" | awk -v r=$reqs -v pid=$SPID '{dv=$5-$2; di=$6-$3; dc=$7-$4; if (dv+di>0) { "cat /proc/" pid "/task/" $1 "/wchan 2>/dev/null" | getline w; close("cat /proc/" pid "/task/" $1 "/wchan 2>/dev/null"); printf "%s %.3f %.3f %d %s\n", $1, dv/r, di/r, dc, w; w="" } }' | sort -k2 -nr
