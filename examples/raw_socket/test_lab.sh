#!/usr/bin/env bash
# ctest examples.lab (label netns): the LVS tutorial's lab in every mode, IPv4 and IPv6, 200 real
# HTTP requests per family and client address. NAT and FullNAT run two workers (the steering of
# both directions to one worker is what they test); NAT also two-armed (--inside). Skipped (77)
# without root or the tools.
#   test_lab.sh BIN_DIR
set -uo pipefail
bin=$1
here=$(dirname "$0")
status=0
for run in "dr" "tun" "nat --workers 2" "nat --two-armed" "fullnat --workers 2"; do
  # shellcheck disable=SC2086
  timeout 240 "$here/lab.sh" $run --check --requests 200 --bin "$bin" 2>&1 |
    grep -v '^  -> \|^IP Virtual\|^Prot '
  rc=${PIPESTATUS[0]}
  [ "$rc" = 77 ] && { echo "examples.lab: skipped (needs root, ip, nft, ethtool, curl, python3)"; exit 77; }
  [ "$rc" = 0 ] || { echo "examples.lab: lab.sh $run failed ($rc)"; status=1; }
done
left=$(ip netns list | grep -c '^l4lb[0-9]' || true)
[ "$left" = 0 ] || { echo "examples.lab: $left namespaces left behind"; status=1; }
procs=$(pgrep -fc -- '--control /run/l4lb[0-9]+\.sock' || true)
[ "$procs" = 0 ] || { echo "examples.lab: $procs l4lb-director processes left behind"; status=1; }
exit $status
