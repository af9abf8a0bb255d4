#!/usr/bin/env bash
# Requests/s and CPU per request of the lab in DR and NAT with l4lb-director, next to the same
# lab with the director's kernel balancing by nftables DNAT, in one run (lab.sh --measure).
#   measure.sh [SECONDS] [BIN_DIR]     (BIN_DIR: a release build, e.g. build/release/examples/raw_socket)
# Method: wrk in the client namespace, 2 threads, 16 connections, HTTP/1.0 (a new connection per
# request: the balancer's work); CPU from /proc/PID/stat (the l4lb-director process) and
# /proc/stat (the whole machine: the kernel's DNAT runs in softirq, which no process owns, so the
# machine's total is the comparable figure). Run it on an otherwise idle machine.
set -euo pipefail
seconds=${1:-10}
here=$(cd "$(dirname "$0")" && pwd)
bin=${2:-$here/../../build/release/examples/raw_socket}
echo "# $(date -u +%FT%TZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
for run in "kernel" "dr" "nat" "dr --workers 2" "nat --workers 2"; do
  # shellcheck disable=SC2086
  "$here/lab.sh" $run --family 4 --requests 1 --measure "$seconds" --bin "$bin" 2>&1 | grep -E '^measure|wrk:'
done
