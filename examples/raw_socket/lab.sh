#!/usr/bin/env bash
# The LVS tutorial's lab (shared/lvs-tutorial.md) in network namespaces, with l4lb-director in
# place of the kernel's IPVS and l4lbadm in place of ipvsadm.
#
#   lab.sh dr|nat|tun|fullnat|kernel [--family 4|6|both] [--requests N] [--workers N] [--check]
#                                    [--measure SECONDS] [--two-armed] [--bin DIR] [--hold]
#
# One LAN (a bridge in its own namespace): client 198.18.0.2, director 198.18.0.11 with the VIP
# 198.18.0.100, real servers 198.18.0.12 and .13 each serving "from <its ip>" over HTTP (and the
# same in fd00:198:18::/64). Per mode, as the tutorial sets its machines up:
#   dr       VIP on the real servers' loopback, arp_ignore=1, arp_announce=2;
#   nat      the real servers reach the client through the director (a host route);
#   tun      VIP on loopback as for DR; l4lb-decap takes the IPIP packets apart into a tun device
#            (this kernel has no ipip module);
#   fullnat  the director speaks to the servers from its local address 198.18.0.21;
#   kernel   no l4lb: the director's kernel balances by nftables DNAT (numgen inc, i.e. rr), the
#            real servers set up as for nat — the nearest kernel equivalent this machine has
#            (it has no IPVS), for comparison.
# --two-armed (nat): the classic LVS-NAT topology instead: the real servers on their own LAN
# (198.18.2.12 and .13, fd00:198:18:2::/64) behind the director's second interface, their default
# route through it (l4lb-director --inside eth1).
# Without --check: configures the director with l4lbadm as the tutorial does with ipvsadm, shows
# curl alternating between the two servers, and prints `l4lbadm -Ln` and `--stats`.
# With --check (the ctest): N requests per family, every one answered, the rr split exact; DR
# replies do not pass the director; weight 0 drains; -d keeps the kernel's behaviour; SIGHUP
# reloads the rule file keeping what it did not change; l4lbadm's refusals are ipvsadm's.
# With --measure: wrk from the client for SECONDS; requests/s, and CPU per request of the
# director process (/proc/PID/stat) and of the whole machine (/proc/stat).
# Everything is torn down on exit, Ctrl-C included. Needs root, ip, nft, ethtool, curl, python3.
set -euo pipefail

mode=${1:-}
shift || true
family=both requests=10 workers=1 check=0 hold=0 measure=0 two_armed=0
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/build/debug/examples/raw_socket  # a debug build's, else scripts/test's (ASan)
[ -x "$bin/l4lb-director" ] || bin=$root/build/asan/examples/raw_socket
while [ $# -gt 0 ]; do
  case $1 in
    --family) family=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --check) check=1; shift ;;
    --two-armed) two_armed=1; shift ;;
    --measure) measure=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --hold) hold=1; shift ;;
    *) echo "lab.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case $mode in dr|nat|tun|fullnat|kernel) ;; *) echo "usage: lab.sh dr|nat|tun|fullnat|kernel [options]" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "lab.sh: needs root (network namespaces)" >&2; exit 77; }
for tool in ip nft ethtool curl python3; do
  command -v $tool >/dev/null || { echo "lab.sh: $tool is missing (scripts/setup installs it)" >&2; exit 77; }
done
for b in l4lb-director l4lbadm l4lb-decap; do
  [ -x "$bin/$b" ] || { echo "lab.sh: $bin/$b not built" >&2; exit 2; }
done

id=l4lb$$
sw=$id-sw cl=$id-client dir=$id-dir rs1=$id-rs1 rs2=$id-rs2
ctl=/run/$id.sock
work=$(mktemp -d /tmp/$id.XXXX)
nodes=("$cl" "$dir" "$rs1" "$rs2")
fail=0

cleanup() {
  set +e
  for ns in "${nodes[@]}" "$sw"; do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] && kill $pids 2>/dev/null
  done
  sleep 0.3
  for ns in "${nodes[@]}" "$sw"; do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$work" "$ctl"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
adm() { "$bin/l4lbadm" --control "$ctl" "$@"; }
say() { printf '%s\n' "$*"; }
check_fail() { say "FAIL: $*"; fail=1; }

# ---------------------------------------------------------------- the LAN
ip netns add "$sw"
[ "$two_armed" = 1 ] && [ "$mode" != nat ] && { echo "lab.sh: --two-armed is for nat" >&2; exit 2; }
rs_net4=198.18.0 rs_net6=fd00:198:18:  # where the real servers are
[ "$two_armed" = 1 ] && rs_net4=198.18.2 rs_net6=fd00:198:18:2:
nsx "$sw" ip link add br0 type bridge
nsx "$sw" ip link add br1 type bridge
nsx "$sw" ip link set br0 up
nsx "$sw" ip link set br1 up
i=0
plug() {  # plug NS's interface IF into bridge BR
  local ns=$1 ifname=$2 br=$3
  nsx "$sw" ip link add p$i type veth peer name "$ifname" netns "$ns"
  nsx "$sw" ip link set p$i master "$br" up
  nsx "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 "net.ipv6.conf.$ifname.accept_dad=0"
  # veth hands super-packets and unfinished checksums along; a real NIC would not.
  nsx "$ns" ethtool -K "$ifname" tso off gso off gro off tx off >/dev/null 2>&1 || true
  nsx "$ns" ip link set "$ifname" up
  i=$((i + 1))
}
for ns in "${nodes[@]}"; do
  ip netns add "$ns"
  nsx "$ns" ip link set lo up
  br=br0
  [ "$two_armed" = 1 ] && [ "$ns" != "$cl" ] && [ "$ns" != "$dir" ] && br=br1
  plug "$ns" eth0 "$br"
done
addr() { nsx "$1" ip addr add "$2.$3/24" dev eth0; nsx "$1" ip -6 addr add "$4:$3/64" dev eth0 nodad; }
addr "$cl" 198.18.0 2 fd00:198:18:; addr "$dir" 198.18.0 11 fd00:198:18:
addr "$rs1" $rs_net4 12 $rs_net6; addr "$rs2" $rs_net4 13 $rs_net6
if [ "$two_armed" = 1 ]; then
  plug "$dir" eth1 br1
  nsx "$dir" ip addr add 198.18.2.1/24 dev eth1
  nsx "$dir" ip -6 addr add fd00:198:18:2::1/64 dev eth1 nodad
fi
# With several workers, a second client address: the steering puts .2 on worker 0 and .3 on
# worker 1 (README), so both directors carry connections.
sources=(2)
if [ "$workers" -gt 1 ]; then
  sources=(2 3)
  nsx "$cl" ip addr add 198.18.0.3/24 dev eth0
  nsx "$cl" ip -6 addr add fd00:198:18::3/64 dev eth0 nodad
fi
# The tutorial's `ifconfig eth0:8 VIP/24` on the director.
nsx "$dir" ip addr add 198.18.0.100/24 dev eth0
nsx "$dir" ip -6 addr add fd00:198:18::100/64 dev eth0 nodad
if [ "$mode" = fullnat ]; then
  nsx "$dir" ip addr add 198.18.0.21/24 dev eth0
  nsx "$dir" ip -6 addr add fd00:198:18::21/64 dev eth0 nodad
fi

for n in 1 2; do
  ns=$id-rs$n ip=$((11 + n))
  mkdir -p "$work/www$n"
  printf 'from %s.%s\n' $rs_net4 $ip >"$work/www$n/index.html"
  # A download for the drain checks: the server's name first, then 2 MiB.
  { printf 'from %s.%s\n' $rs_net4 $ip; head -c 2097152 /dev/zero; } >"$work/www$n/big.bin"
  case $mode in
    dr|tun)
      nsx "$ns" ip addr add 198.18.0.100/32 dev lo
      nsx "$ns" ip -6 addr add fd00:198:18::100/128 dev lo
      nsx "$ns" sysctl -qw net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.all.arp_ignore=1 \
        net.ipv4.conf.eth0.arp_announce=2 net.ipv4.conf.all.arp_announce=2 ;;
    nat|kernel)
      # Through the director, and stay so: an IPv6 forwarder that sends a packet out the way it
      # came redirects (there is no sysctl to stop it sending), so refuse redirects here.
      nsx "$ns" sysctl -qw net.ipv6.conf.all.accept_redirects=0 net.ipv6.conf.eth0.accept_redirects=0 \
        net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.eth0.accept_redirects=0
      if [ "$two_armed" = 1 ]; then
        nsx "$ns" ip route add default via 198.18.2.1
        nsx "$ns" ip -6 route add default via fd00:198:18:2::1
      else
        for c in 2 3; do
          nsx "$ns" ip route add 198.18.0.$c/32 via 198.18.0.11
          nsx "$ns" ip -6 route add fd00:198:18::$c/128 via fd00:198:18::11
        done
      fi ;;
  esac
  if [ "$mode" = tun ]; then
    nsx "$ns" ip tuntap add dev l4lbtun0 mode tun
    nsx "$ns" ip link set l4lbtun0 up
    nsx "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.l4lbtun0.rp_filter=0
    nsx "$ns" "$bin/l4lb-decap" --interface eth0 --tun l4lbtun0 2>"$work/decap$n.log" &
  fi
  nsx "$ns" python3 -m http.server 80 --bind :: --directory "$work/www$n" >/dev/null 2>&1 &
done

# ---------------------------------------------------------------- the director
if [ "$mode" = kernel ]; then
  nsx "$dir" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
    net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0
  nsx "$dir" nft -f - <<'NFT'
table inet lab {
  chain prerouting {
    type nat hook prerouting priority dstnat;
    ip daddr 198.18.0.100 tcp dport 80 dnat ip to numgen inc mod 2 map { 0 : 198.18.0.13, 1 : 198.18.0.12 }
    ip6 daddr fd00:198:18::100 tcp dport 80 dnat ip6 to numgen inc mod 2 map { 0 : fd00:198:18::13, 1 : fd00:198:18::12 }
  }
}
NFT
else
  extra=()
  [ "$mode" = fullnat ] && extra+=(--full-nat)
  [ "$two_armed" = 1 ] && extra+=(--inside eth1)
  : >"$work/lab.rules"  # --rules: SIGHUP reloads it (the check writes it later)
  nsx "$dir" "$bin/l4lb-director" --interface eth0 --control "$ctl" --workers "$workers" \
    --rules "$work/lab.rules" "${extra[@]}" 2>"$work/director.log" &
  for _ in $(seq 50); do [ -S "$ctl" ] && break; sleep 0.1; done
  [ -S "$ctl" ] || { cat "$work/director.log"; say "l4lb-director did not start"; exit 1; }
fi
for n in 1 2; do  # the servers answer on port 80 before anyone asks
  for _ in $(seq 50); do nsx "$id-rs$n" python3 -c "import socket; socket.create_connection(('::1', 80), 1)" 2>/dev/null && break; sleep 0.1; done
done

case $mode in dr) how=-g ;; nat) how=-m ;; tun) how=-i ;; fullnat) how=--fullnat ;; esac
families=()
case $family in 4) families=(4) ;; 6) families=(6) ;; both) families=(4 6) ;; esac
vip_of() { [ "$1" = 4 ] && echo 198.18.0.100 || echo '[fd00:198:18::100]'; }
# ipvsadm's syntax: an IPv6 address takes brackets only with a port.
rs_of() { [ "$1" = 4 ] && echo "$rs_net4.$2" || echo "$rs_net6:$2"; }
rs_port_of() { [ "$1" = 4 ] && echo "$rs_net4.$2:80" || echo "[$rs_net6:$2]:80"; }
local_of() { [ "$1" = 4 ] && echo 198.18.0.21 || echo fd00:198:18::21; }
for f in "${families[@]}"; do
  [ "$mode" = kernel ] && break
  vip=$(vip_of "$f")
  say "# l4lbadm -A -t $vip:80 -s rr"
  adm -A -t "$vip:80" -s rr
  for n in 12 13; do
    r=$(rs_of "$f" $n)
    [ "$mode" = nat ] && r=$(rs_port_of "$f" $n)
    more=()
    [ "$mode" = fullnat ] && more=(--local-address "$(local_of "$f")")
    say "# l4lbadm -a -t $vip:80 -r $r $how -w 1 ${more[*]}"
    adm -a -t "$vip:80" -r "$r" $how -w 1 "${more[@]}"
  done
done
[ "$mode" = kernel ] || adm -Ln

# ---------------------------------------------------------------- --measure
if [ "$measure" != 0 ]; then
  command -v wrk >/dev/null || { echo "lab.sh: --measure needs wrk (apt-get install wrk)" >&2; exit 2; }
  dpid=$(ip netns pids "$dir" | head -1)
  # user system irq softirq; not nice: background work run with nice (builds) stays out
  busy() { awk '/^cpu / {print $2 + $4 + $7 + $8}' /proc/stat; }
  proc_cpu() { [ -n "$dpid" ] && awk '{print $14 + $15}' "/proc/$dpid/stat" || echo 0; }
  hz=$(getconf CLK_TCK)
  m0=$(busy) p0=$(proc_cpu)
  out=$(nsx "$cl" wrk -t 2 -c 16 -d "${measure}s" --latency http://198.18.0.100/)
  m1=$(busy) p1=$(proc_cpu)
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  errors=$(awk '/Socket errors|Non-2xx/ {print}' <<<"$out")
  awk -v mode="$mode" -v w="$workers" -v n="$total" -v rps="$rps" -v p50="$p50" -v hz="$hz" \
      -v m="$((m1 - m0))" -v p="$((p1 - p0))" 'BEGIN {
    printf "measure %-7s workers %d: %d requests, %s req/s, p50 %s, director process %.1f us/request, machine %.1f us/request\n",
      mode, w, n, rps, p50, p * 1e6 / hz / n, m * 1e6 / hz / n }'
  [ -n "$errors" ] && say "  wrk: $errors"
fi

# ---------------------------------------------------------------- the tutorial's check
# 10 s: room for two lost SYNs (retransmitted after 1 s and 3 s) on a loaded machine, where
# the ASan director shares two cores with other tests. A failure says what the director held.
get() {
  local rc=0
  nsx "$cl" curl -s --max-time 10 "$@" || rc=$?
  [ "$rc" = 0 ] && return 0
  echo "lab.sh: GET $* failed (curl exit $rc); the director's connections:" >&2
  adm -Lnc >&2 || true
  return "$rc"
}
src_of() { [ "$1" = 4 ] && echo "198.18.0.$2" || echo "fd00:198:18::$2"; }
for f in "${families[@]}"; do
  for s in "${sources[@]}"; do
    vip=$(vip_of "$f") answers=$work/answers$f-$s
    say "== GET http://$vip/ x $requests (IPv$f, $mode, from $(src_of "$f" "$s"))"
    : >"$answers"
    if [ "$check" = 0 ]; then
      for i in $(seq "$requests"); do
        get --interface "$(src_of "$f" "$s")" "http://$vip/" || echo "no answer"
      done
      continue
    fi
    # Many requests: one process opening a new connection per request (a curl per request
    # costs more than the request).
    nsx "$cl" python3 - "$(src_of "$f" "$s")" "${vip//[\[\]]/}" "$requests" >"$answers" <<'PY'
import socket, sys
src, vip, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in vip else socket.AF_INET
failures = 0
for _ in range(n):
    if failures >= 10:  # ten in a row: the lab is broken, do not wait 3 s for each of the rest
        print("no answer: gave up")
        continue
    try:
        with socket.socket(fam, socket.SOCK_STREAM) as c:
            c.settimeout(3)
            # Port chosen at connect(), per destination, so it is not reused at once: a new SYN
            # on a 4-tuple whose old connection the director still holds open reuses that
            # connection and its server (IPVS's conn_reuse_mode), which would break rr's turns.
            c.setsockopt(socket.SOL_IP, getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24), 1)
            c.bind((src, 0))
            c.connect((vip, 80))
            c.sendall(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")
            data = b""
            while chunk := c.recv(65536):
                data += chunk
        print(data.split(b"\r\n\r\n", 1)[1].decode().strip())
        failures = 0
    except (OSError, IndexError) as e:
        print("no answer:", e)
        failures += 1
PY
    answered=$(grep -c '^from ' "$answers" || true)
    [ "$answered" = "$requests" ] || check_fail "IPv$f $mode: $answered of $requests requests answered"
    # rr with equal weights: every answer differs from the one before.
    repeats=$(uniq -d "$answers" | wc -l)
    [ "$repeats" = 0 ] || check_fail "IPv$f $mode: rr did not alternate ($repeats repeated answers)"
    say "IPv$f $mode: $answered/$requests answered, alternating"
  done
done

if [ "$check" = 1 ] && [ "$mode" = dr ]; then
  # DR: replies go from the real servers straight to the client, so the director counts
  # inbound packets only (OutPkts 0) — the tutorial's "the LVS server never saw the handshake".
  for f in "${families[@]}"; do
    vip=$(vip_of "$f")
    line=$(adm -Ln --stats | awk -v v="$vip:80" '$1 == "TCP" && $2 == v')
    inpkts=$(echo "$line" | awk '{print $4}') outpkts=$(echo "$line" | awk '{print $5}')
    [ "${outpkts:-x}" = 0 ] && [ "${inpkts:-0}" != 0 ] ||
      check_fail "IPv$f dr: the director saw replies (service line: $line)"
  done
  # Weight 0 drains: an open download from a quiesced server completes while new connections go
  # to the other one. -d as the kernel does it (ipvs-notes §3.8, expire_nodest_conn=0): new
  # connections go to the other server; the deleted server's connections stay listed and their
  # packets are dropped, so its open download stalls.
  f=${families[0]} vip=$(vip_of "${families[0]}")
  last=$(get "http://$vip/") ; next=13; [ "$last" = "from 198.18.0.13" ] && next=12
  other=$((25 - next))
  nsx "$cl" curl -s --limit-rate 400k --max-time 30 -o "$work/drain.bin" "http://$vip/big.bin" &
  dl=$!
  sleep 1
  adm -e -t "$vip:80" -r "$(rs_of "$f" $next)" -g -w 0
  for i in 1 2 3 4; do get "http://$vip/" >>"$work/drained"; done
  [ "$(grep -c "from 198.18.0.$other\$" "$work/drained")" = 4 ] || check_fail "weight 0: new connections still went to .$next"
  if wait $dl && [ "$(head -1 "$work/drain.bin")" = "from 198.18.0.$next" ] &&
     [ "$(stat -c %s "$work/drain.bin")" -gt 2097152 ]; then
    say "weight 0: the open download from .$next completed; new connections went to .$other"
  else
    check_fail "weight 0: the open download from .$next did not complete"
  fi
  adm -e -t "$vip:80" -r "$(rs_of "$f" $next)" -g -w 1
  # rr's cursor is wherever it was; find which server the next connection takes.
  last=$(get "http://$vip/"); next=13; [ "$last" = "from 198.18.0.13" ] && next=12
  other=$((25 - next))
  nsx "$cl" curl -s --limit-rate 200k --max-time 4 -o "$work/deleted.bin" "http://$vip/big.bin" &
  dl=$!
  sleep 1
  adm -d -t "$vip:80" -r "$(rs_of "$f" $next)"
  for i in 1 2 3 4; do get "http://$vip/" >>"$work/after-delete"; done
  [ "$(grep -c "from 198.18.0.$other\$" "$work/after-delete")" = 4 ] || check_fail "-d: new connections still went to .$next"
  conns=$(adm -Lnc)  # not piped into grep -q: l4lbadm would die of SIGPIPE under pipefail
  grep -q "198.18.0.$next:80" <<<"$conns" || check_fail "-d: the deleted server's connection is not listed"
  if wait $dl; then
    check_fail "-d: the deleted server's download completed (the kernel drops its packets)"
  else
    say "-d: new connections went to .$other; the deleted server's connection stayed listed and stalled, as IPVS's"
  fi

  # SIGHUP reloads --rules: the IPv6 service goes, .13 gets weight 2, the deleted server is back.
  dpid=$(ip netns pids "$dir" | head -1)
  printf '%s\n' "-A -t 198.18.0.100:80 -s rr" "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1" \
    "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 2" >"$work/lab.rules"
  kill -HUP "$dpid"
  for _ in $(seq 20); do grep -q reloaded "$work/director.log" && break; sleep 0.1; done
  [ "$(adm -Sn)" = "$(cat "$work/lab.rules")" ] || check_fail "SIGHUP: the rules are not the file's: $(adm -Sn)"
  printf '%s\n' "-A -t 198.18.0.100:80 -s rr" "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 99999" >"$work/lab.rules"
  kill -HUP "$dpid"
  for _ in $(seq 20); do grep -q "rules unchanged" "$work/director.log" && break; sleep 0.1; done
  grep -q "line 2" "$work/director.log" || check_fail "SIGHUP with a bad file: no error naming line 2"
  [ "$(adm -Sn | wc -l)" = 3 ] || check_fail "SIGHUP with a bad file changed the rules"
  say "SIGHUP: reloaded the file keeping what it did not change; a bad file named its line and changed nothing"

  # The rest of ipvsadm's commands through l4lbadm: -Z, --set / --timeout, -S | -C | -R, -E.
  adm -Z
  [ "$(adm -Ln --stats | awk '$1 == "TCP" {s += $3 + $4} END {print s + 0}')" = 0 ] || check_fail "-Z left counters"
  adm --set 900 120 300
  [ "$(adm -L --timeout)" = "Timeout (tcp tcpfin udp): 900 120 300" ] || check_fail "--set / --timeout: $(adm -L --timeout)"
  saved=$(adm -Sn)
  adm -C
  [ -z "$(adm -Sn)" ] || check_fail "-C left rules"
  adm -R <<<"$saved"
  [ "$(adm -Sn)" = "$saved" ] || check_fail "-S | -C | -R did not give the rules back"
  adm -E -t 198.18.0.100:80 -s wrr
  adm -Ln | grep -q "^TCP  198.18.0.100:80 wrr" || check_fail "-E did not change the scheduler"
  say "l4lbadm: -Z, --set, --timeout, -S, -C, -R, -E as ipvsadm"

  # l4lbadm's refusals are ipvsadm's: text and exit status.
  set +e
  err=$(adm -A -t 198.18.0.100:80 -s rr 2>&1); rc=$?
  set -e
  [ "$rc" = 255 ] && [ "$err" = "Service already exists" ] || check_fail "l4lbadm -A twice: '$err' (exit $rc)"
  # Clear errors at start: a missing interface, a missing privilege, a bad rule file.
  set +e
  e1=$(nsx "$dir" "$bin/l4lb-director" --interface nosuch0 --control "$work/x.sock" 2>&1); r1=$?
  e2=$(nsx "$dir" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
       "$bin/l4lb-director" --interface eth0 --control "$work/y.sock" 2>&1); r2=$?
  printf '%s\n' "-A -t 198.18.0.100:80 -s nosuch" >"$work/bad.rules"
  e3=$(nsx "$dir" "$bin/l4lb-director" --interface eth0 --rules "$work/bad.rules" --control "$work/z.sock" 2>&1); r3=$?
  set -e
  [ "$r1" != 0 ] && grep -q "interface 'nosuch0'" <<<"$e1" || check_fail "missing interface: '$e1'"
  [ "$r2" != 0 ] && grep -q "CAP_NET_RAW" <<<"$e2" || check_fail "missing privilege: '$e2'"
  [ "$r3" != 0 ] && grep -q "bad.rules: line 1" <<<"$e3" || check_fail "bad rule file: '$e3'"
  say "errors: $e1 | $e2 | $e3"
fi

if [ "$mode" != kernel ]; then
  say "# l4lbadm -Ln --stats"
  adm -Ln --stats
fi
if [ "$hold" = 1 ]; then say "holding the lab; Ctrl-C to tear it down"; while :; do sleep 1; done; fi
kill -TERM "$(ip netns pids "$dir" | head -1)" 2>/dev/null || true
sleep 0.3
if [ "$check" = 1 ] && [ "$mode" != kernel ]; then
  grep -q "stopped" "$work/director.log" || { cat "$work/director.log"; check_fail "the director did not stop cleanly"; }
  if [ "$workers" -gt 1 ]; then
    grep "^worker" "$work/director.log"
    idle=$(grep -c "^worker [0-9]*: 0 forwarded" "$work/director.log" || true)
    [ "$idle" = 0 ] || check_fail "$idle worker(s) forwarded nothing: the steering did not spread clients"
  fi
fi
if [ "$check" = 1 ]; then
  [ "$fail" = 0 ] && say "lab $mode: PASS" || { cat "$work/director.log" 2>/dev/null; say "lab $mode: FAIL"; }
fi
exit $fail
