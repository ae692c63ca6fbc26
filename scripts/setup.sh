#!/usr/bin/env bash
# Installs what gotas's demo and tests need on a fresh Debian machine:
# iproute2 for namespaces, Linux peer tools for interop tests, wrk for
# tasbench matrix's HTTP cells, Go modules.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
pkgs=(iproute2 procps iputils-ping ethtool iperf3 sockperf curl tcpdump wrk)
missing=()
for p in "${pkgs[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
export PATH=$PATH:/usr/local/go/bin
go mod download
