#!/bin/bash
# hold-mem.sh: memory per idle connection, gotas vs Linux (docs/PERF.md,
# "Connections held and memory per idle connection").
#
# Two namespaces over a veth: the server side (svc) runs a gotas echo
# server (AF_XDP on s0, default configuration) and Linux echo servers; the
# client side (peer) runs Linux `tasbench hold` processes. The file limit
# here is 20000 per process (and cannot be raised), so the client is
# split over several processes, each dialling from its own source address
# (one address has ~28k ephemeral ports), and the Linux server over as
# many processes on consecutive ports.
#
# Usage: scripts/hold-mem.sh TASBENCH [TOTAL_CONNS] [PROCS] [HOLD_SECONDS]
# (SKIP_LINUX=1: the gotas half only)
set -u
TB=${1:?tasbench binary}
TOTAL=${2:-100000}
PROCS=${3:-6}
HOLD=${4:-40}
PER=$(( (TOTAL + PROCS - 1) / PROCS ))
NS=memh$$
SVC=$NS-svc PEER=$NS-peer
GOTAS_IP=10.99.0.2 LINUX_IP=10.99.0.1

cleanup() {
	for p in $(ip netns pids $SVC 2>/dev/null) $(ip netns pids $PEER 2>/dev/null); do kill $p 2>/dev/null; done
	sleep 0.5
	ip netns del $SVC 2>/dev/null
	ip netns del $PEER 2>/dev/null
}
trap cleanup EXIT
ip netns add $SVC && ip netns add $PEER
ip link add name s0 netns $SVC type veth peer name p0 netns $PEER
ip -n $SVC link set s0 up; ip -n $PEER link set p0 up
ip -n $SVC link set lo up; ip -n $PEER link set lo up
ip -n $SVC addr add $LINUX_IP/16 dev s0
for i in $(seq 1 $PROCS); do ip -n $PEER addr add 10.99.1.$i/16 dev p0; done
ip netns exec $PEER sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
ip netns exec $SVC sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535

kb() { awk -v f="$2:" '$1==f {print $2}' /proc/$1/status; }
slab() { awk '$1=="Slab:" {print $2}' /proc/meminfo; }
show() { # label pid
	echo "$1: VmRSS $(kb $2 VmRSS) kB (RssAnon $(kb $2 RssAnon), RssShmem $(kb $2 RssShmem)); smaps_rollup Rss $(awk '$1=="Rss:" {print $2}' /proc/$2/smaps_rollup) kB; Slab $(slab) kB"
}
hold() { # port-base (0: all to gotas): starts PROCS clients
	for i in $(seq 1 $PROCS); do
		local addr=$GOTAS_IP:7000
		[ "$1" != 0 ] && addr=$LINUX_IP:$(( $1 + i ))
		ip netns exec $PEER $TB hold --addr $addr --conns $PER --src 10.99.1.$i --duration ${HOLD}s --parallel 32 > /tmp/$NS-hold$i.log 2>&1 &
	done
}
wait_done() { # waits until every client has printed its result
	for t in $(seq 1 900); do
		n=$(grep -l "still open" /tmp/$NS-hold*.log 2>/dev/null | wc -l)
		[ "$n" -ge $PROCS ] && return 0
		sleep 1
	done
	return 1
}
wait_opened() { # waits until every client log says it is holding
	for t in $(seq 1 600); do
		n=$(grep -l "holding for" /tmp/$NS-hold*.log 2>/dev/null | wc -l)
		[ "$n" -ge $PROCS ] && return 0
		sleep 1
	done
	return 1
}

echo "== gotas echo server (default config), $PROCS clients x $PER conns"
ip netns exec $SVC $TB echo-server --stack=gotas --ip-addr=$GOTAS_IP/16 --nic=afxdp:s0 --port 7000 --bulk-port 7001 --stats-every 5s > /tmp/$NS-gsrv.log 2>&1 &
GPID=$!
sleep 3
echo "one bulk stream into the idle gotas stack:"
ip netns exec $PEER $TB bulk --addr $GOTAS_IP:7001 --duration 5s
sleep 2
show "gotas before" $GPID
S0=$(slab)
G0=$(kb $GPID VmRSS)
hold 0
wait_opened || echo "clients did not all finish opening"
sleep 5
show "gotas holding" $GPID
G1=$(kb $GPID VmRSS); S1=$(slab)
echo "one bulk stream into the same gotas stack while it holds them:"
ip netns exec $PEER $TB bulk --addr $GOTAS_IP:7001 --duration 5s
cat /tmp/$NS-hold*.log | grep -v "^hold: .* after" | sort | uniq -c
grep -h "holding for" /tmp/$NS-hold*.log | awk '{n+=$2; f+=$4} END {print "total open " n ", failed " f}'
wait_done
grep -h "still open" /tmp/$NS-hold*.log | awk '{n+=$1; o+=$5} END {print "total opened " n ", still open at the end " o}'
for t in 5 10 20 30 60; do # ring pages are punched out as connections are freed
	sleep $(( t - ${prev:-0} )); prev=$t
	show "gotas ${t}s after the clients closed" $GPID
done
echo "gotas: VmRSS delta $(( G1 - G0 )) kB for the connections; Linux client-side slab delta $(( S1 - S0 )) kB"
grep -A1 "^stats:" /tmp/$NS-gsrv.log | tail -2
kill $GPID; sleep 3; kill -9 $GPID 2>/dev/null; wait $GPID 2>/dev/null
rm -f /tmp/$NS-hold*.log

[ -n "${SKIP_LINUX:-}" ] && exit 0
echo "== Linux echo servers ($PROCS processes), same clients"
lpids=()
for i in $(seq 1 $PROCS); do
	ip netns exec $SVC $TB echo-server --stack=linux --bind $LINUX_IP --port $(( 7100 + i )) > /dev/null 2>&1 &
	lpids+=($!)
done
sleep 2
sumrss() { local s=0; for p in "${lpids[@]}"; do s=$(( s + $(kb $p VmRSS) )); done; echo $s; }
L0=$(sumrss); T0=$(slab)
echo "linux before: servers' VmRSS $L0 kB, Slab $T0 kB"
hold 7100
wait_opened || echo "clients did not all finish opening"
sleep 5
L1=$(sumrss); T1=$(slab)
echo "linux holding: servers' VmRSS $L1 kB, Slab $T1 kB"
grep -h "holding for" /tmp/$NS-hold*.log | awk '{n+=$2; f+=$4} END {print "total open " n ", failed " f}'
echo "linux: servers' RSS delta $(( L1 - L0 )) kB, slab delta (both ends) $(( T1 - T0 )) kB"
wait_done
rm -f /tmp/$NS-hold*.log
