#!/usr/bin/env bash
# ctest for l4lb-replay: the tutorial's scenario on the bundled capture (round robin alternates,
# the listing's counts, tshark checks MACs and checksums), NAT both ways, TUN, a bad rule file,
# a truncated capture, malformed frames accounted for, --verdicts comments, --at, determinism.
# Usage: test_replay.sh L4LB_REPLAY EXAMPLE_DIR DATA_DIR OUT_DIR [TSHARK]
set -euo pipefail
replay=$1 example=$2 data=$3 out=$4 tshark=${5:-}
rm -rf "$out" && mkdir -p "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }
pass=0
# tshark as root warns on stderr; only its output matters here.
if [ -n "$tshark" ]; then real_tshark=$tshark; tshark_q() { "$real_tshark" "$@" 2>/dev/null; }; tshark=tshark_q; fi
ok() { pass=$((pass + 1)); echo "ok - $*"; }

# 1. The tutorial: DR, rr over .12 and .13.
"$replay" --rules "$example/tutorial.rules" --in "$data/client-vip-http.pcap" --out "$out/dr.pcap" \
  --list --stats --conns > "$out/dr.txt"
grep -q '^frames in  *406$' "$out/dr.txt" || fail "frames in"
# 13 connections alternate: 7 to the first pick (.13, the last added), 6 to .12.
grep -Eq '^  -> 198\.18\.0\.12:80 +Route +1 ' "$out/dr.txt" || fail "listing row .12"
# The --stats rows: "  -> ADDR:PORT Conns InPkts OutPkts InBytes OutBytes".
conns13=$(awk '/-> 198.18.0.13:80/ && NF==7 {print $3; exit}' "$out/dr.txt")
conns12=$(awk '/-> 198.18.0.12:80/ && NF==7 {print $3; exit}' "$out/dr.txt")
[ "$conns13" = 7 ] && [ "$conns12" = 6 ] || fail "rr split: .13=$conns13 .12=$conns12 (want 7/6)"
ok "tutorial: 13 connections alternate 7/6 between .13 and .12"
# Accounting: in = forwarded + replies + passed + dropped + queued.
sum=$(awk '/^(forwarded|replies|passed|dropped|queued) / {s += $2} END {print s}' "$out/dr.txt")
[ "$sum" = 406 ] || fail "accounting: $sum != 406"
ok "every frame accounted for"
if [ -n "$tshark" ]; then
  # Every forwarded frame goes to a real server's derived MAC, with the VIP untouched.
  bad=$("$tshark" -r "$out/dr.pcap" -T fields -e eth.dst -e ip.dst 2>/dev/null \
        | awk '!/^02:00:c6:12:00:0[cd]\t198\.18\.0\.100$/' | wc -l)
  [ "$bad" = 0 ] || fail "DR frames with other MACs/destinations: $bad"
  badsum=$("$tshark" -r "$out/dr.pcap" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
           -Y 'ip.checksum.status == "Bad" || tcp.checksum.status == "Bad"' | wc -l)
  [ "$badsum" = 0 ] || fail "bad checksums in DR output: $badsum"
  ok "tshark: DR frames to .12/.13 MACs, checksums valid"
fi

# 2. Determinism: the same run twice gives the same bytes.
"$replay" --rules "$example/tutorial.rules" --in "$data/client-vip-http.pcap" --out "$out/dr2.pcap" --quiet
cmp -s "$out/dr.pcap" "$out/dr2.pcap" || fail "two runs differ"
ok "deterministic output"

# 3. NAT, both directions: the capture's answers from the VIP are made the real server's
#    (server_side.py), so the director rewrites requests to 198.18.0.12:8080 and answers back to
#    the VIP.
cat > "$out/nat.rules" <<'RULES'
-A -t 198.18.0.100:80 -s rr
-a -t 198.18.0.100:80 -r 198.18.0.12:8080 -m -w 1
RULES
python3 "$example/server_side.py" "$data/client-vip-http.pcap" "$out/nat-in.pcap" 198.18.0.100 80 198.18.0.12 8080
"$replay" --rules "$out/nat.rules" --in "$out/nat-in.pcap" --out "$out/nat.pcap" --conns > "$out/nat.txt"
grep -Eq '^  of them NAT replies +[1-9]' "$out/nat.txt" || fail "NAT: no replies rewritten"
grep -q 'TIME_WAIT\|CLOSE' "$out/nat.txt" || fail "NAT: connections did not close through both directions"
if [ -n "$tshark" ]; then
  req=$("$tshark" -r "$out/nat.pcap" -Y 'ip.dst == 198.18.0.12 && tcp.dstport == 8080' | wc -l)
  rep=$("$tshark" -r "$out/nat.pcap" -Y 'ip.src == 198.18.0.100 && tcp.srcport == 80' | wc -l)
  all=$("$tshark" -r "$out/nat.pcap" | wc -l)
  [ "$req" -gt 0 ] && [ "$rep" -gt 0 ] && [ $((req + rep)) = "$all" ] \
    || fail "NAT: $req requests + $rep replies of $all frames"
  badsum=$("$tshark" -r "$out/nat.pcap" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
           -Y 'ip.checksum.status == "Bad" || tcp.checksum.status == "Bad"' | wc -l)
  [ "$badsum" = 0 ] || fail "bad checksums in NAT output: $badsum"
  ok "tshark: NAT both ways ($req requests to 198.18.0.12:8080, $rep replies from the VIP), checksums valid"
else
  ok "NAT both ways"
fi

# 4. TUN (ipip, gue, gre): outer headers from the director's address.
for t in "ipip" "gue --tun-port 6080" "gre"; do
  name=${t%% *}
  printf -- '-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.0.12:80 -i -w 1 --tun-type %s\n' "$t" > "$out/tun-$name.rules"
  "$replay" --rules "$out/tun-$name.rules" --in "$data/client-vip-http.pcap" --out "$out/tun-$name.pcap" --quiet
  if [ -n "$tshark" ]; then
    n=$("$tshark" -r "$out/tun-$name.pcap" -Y 'ip.src == 198.18.0.1 && ip.dst == 198.18.0.12' | wc -l)
    all=$("$tshark" -r "$out/tun-$name.pcap" | wc -l)
    [ "$n" -gt 0 ] && [ "$n" = "$all" ] || fail "TUN $name: $n of $all frames with the outer header"
  fi
done
ok "TUN ipip/gue/gre"

# 4b. FullNAT (ours): requests leave from the director's local address toward 198.18.0.12:8080.
printf -- '-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.0.12:8080 --fullnat --local-address 198.18.0.1 -w 1\n' > "$out/fnat.rules"
"$replay" --rules "$out/fnat.rules" --in "$data/client-vip-http.pcap" --out "$out/fnat.pcap" > "$out/fnat.txt"
grep -Eq '^  fullnat +[1-9]' "$out/fnat.txt" || fail "FullNAT: nothing forwarded"
if [ -n "$tshark" ]; then
  n=$("$tshark" -r "$out/fnat.pcap" -Y 'ip.src == 198.18.0.1 && ip.dst == 198.18.0.12 && tcp.dstport == 8080' | wc -l)
  all=$("$tshark" -r "$out/fnat.pcap" | wc -l)
  badsum=$("$tshark" -r "$out/fnat.pcap" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
           -Y 'ip.checksum.status == "Bad" || tcp.checksum.status == "Bad"' | wc -l)
  [ "$n" -gt 0 ] && [ "$n" = "$all" ] && [ "$badsum" = 0 ] || fail "FullNAT: $n of $all frames, $badsum bad sums"
fi
ok "FullNAT requests from the local address"

# 5. IPv6: DR, NAT and TUN (ip6ip6) on the IPv6 capture.
for m in "-g" "-m" "-i"; do
  printf -- '-A -t [fd00:198:18::100]:80 -s rr\n-a -t [fd00:198:18::100]:80 -r [fd00:198:18::12]:8080 %s -w 1\n' "$m" > "$out/v6.rules"
  "$replay" --rules "$out/v6.rules" --in "$data/ipv6-http.pcap" --out "$out/v6$m.pcap" > "$out/v6$m.txt"
  grep -Eq '^forwarded +[1-9]' "$out/v6$m.txt" || fail "IPv6 $m: nothing forwarded"
  if [ -n "$tshark" ]; then
    n=$("$tshark" -r "$out/v6$m.pcap" -Y 'ipv6.dst == fd00:198:18::12 || ipv6.dst == fd00:198:18::100' | wc -l)
    all=$("$tshark" -r "$out/v6$m.pcap" | wc -l)
    [ "$n" = "$all" ] || fail "IPv6 $m: $n of $all frames where expected"
    if [ "$m" = "-m" ]; then
      badsum=$("$tshark" -r "$out/v6$m.pcap" -o tcp.check_checksum:TRUE -Y 'tcp.checksum.status == "Bad"' | wc -l)
      [ "$badsum" = 0 ] || fail "IPv6 NAT: $badsum bad TCP checksums"
    fi
  fi
done
ok "IPv6 DR, NAT, TUN"

# 5b. Malformed frames: every one accounted for, each drop named.
python3 - "$data/client-vip-http.pcap" "$out/bad-frames.pcap" <<'PY'
import struct, sys
raw = open(sys.argv[1], "rb").read()
e = "<" if raw[:4] == b"\xd4\xc3\xb2\xa1" else ">"
out, at, n = bytearray(raw[:24]), 24, 0
while at + 16 <= len(raw):
    ts, tf, incl, orig = struct.unpack(e + "IIII", raw[at:at + 16])
    f = bytearray(raw[at + 16:at + 16 + incl]); at += 16 + incl; n += 1
    if f[12:14] == b"\x08\x00":
        k = n % 5
        if k == 1: f[24] ^= 0xFF                 # bad IPv4 header checksum
        elif k == 2: f = f[:20]                  # truncated IPv4 header
        elif k == 3: f[14] = 0x43                # IHL below 5
        elif k == 4: f[16:18] = b"\xff\xff"      # total length past the frame
    out += struct.pack(e + "IIII", ts, tf, len(f), len(f)) + f
open(sys.argv[2], "wb").write(out)
PY
"$replay" --rules "$example/tutorial.rules" --in "$out/bad-frames.pcap" --out "$out/bad-out.pcap" > "$out/bad-frames.txt"
sum=$(awk '/^(forwarded|replies|passed|dropped|queued) / {s += $2} END {print s}' "$out/bad-frames.txt")
in=$(awk '/^frames in/ {print $3}' "$out/bad-frames.txt")
[ "$sum" = "$in" ] || fail "malformed frames: $sum accounted of $in"
for r in bad_ipv4_header_checksum truncated_ipv4 bad_ipv4_ihl ipv4_total_length_exceeds_frame; do
  grep -q "  $r " "$out/bad-frames.txt" || fail "malformed frames: no '$r' drops"
done
ok "malformed frames: all $in accounted for, drops named"

# 6. A rule file with a bad line: its error, status 2, no output file.
printf -- '-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.0.300:80 -g\n' > "$out/bad.rules"
set +e
"$replay" --rules "$out/bad.rules" --in "$data/client-vip-http.pcap" --out "$out/bad.pcap" 2> "$out/bad.err"
rc=$?
set -e
[ "$rc" = 2 ] || fail "bad rules: exit $rc, want 2"
grep -q 'line 2' "$out/bad.err" || fail "bad rules: no line number in: $(cat "$out/bad.err")"
[ ! -e "$out/bad.pcap" ] || fail "bad rules: output written"
ok "a bad rule line: exit 2, the line named, no output"

# 7. A truncated capture: an error naming the frame, what came before written and valid.
head -c 100000 "$data/client-vip-http.pcap" > "$out/cut.pcap"
set +e
"$replay" --rules "$example/tutorial.rules" --in "$out/cut.pcap" --out "$out/cut-out.pcap" > /dev/null 2> "$out/cut.err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "truncated capture: exit $rc, want 1"
grep -q 'frame [0-9]' "$out/cut.err" || fail "truncated capture: no frame named: $(cat "$out/cut.err")"
if [ -n "$tshark" ]; then "$tshark" -r "$out/cut-out.pcap" > /dev/null || fail "partial output unreadable"; fi
ok "a truncated capture: the frame named, the output valid"

# 8. --verdicts: every frame with its verdict as a comment.
"$replay" --rules "$example/tutorial.rules" --in "$data/client-vip-http.pcap" --out /dev/null \
  --verdicts "$out/v.pcapng" --quiet
if [ -n "$tshark" ]; then
  n=$("$tshark" -r "$out/v.pcapng" -Y 'frame.comment contains "forward dr 198.18.0.1"' | wc -l)
  p=$("$tshark" -r "$out/v.pcapng" -Y 'frame.comment contains "pass"' | wc -l)
  all=$("$tshark" -r "$out/v.pcapng" | wc -l)
  [ "$all" = 406 ] && [ "$n" -gt 0 ] && [ "$p" -gt 0 ] || fail "verdicts: $all frames, $n forward, $p pass"
  ok "tshark reads every verdict comment"
fi

# 8b. Other input formats: the pcapng just written, and the capture as Linux cooked (SLL, the
#     format of `tcpdump -i any`), give the same decisions.
"$replay" --rules "$example/tutorial.rules" --in "$out/v.pcapng" --out /dev/null > "$out/ng.txt"
grep -q '^frames in  *406$' "$out/ng.txt" && grep -Eq '^  dr +133$' "$out/ng.txt" || fail "pcapng input"
python3 - "$data/client-vip-http.pcap" "$out/sll.pcap" <<'PY'
import struct, sys
raw = open(sys.argv[1], "rb").read()
e = "<" if raw[:4] == b"\xd4\xc3\xb2\xa1" else ">"
hdr = bytearray(raw[:24]); hdr[20:24] = struct.pack(e + "I", 113)  # LINKTYPE_LINUX_SLL
out, at = hdr, 24
while at + 16 <= len(raw):
    ts, tf, incl, orig = struct.unpack(e + "IIII", raw[at:at + 16])
    f = raw[at + 16:at + 16 + incl]; at += 16 + incl
    sll = struct.pack("!HHH8sH", 0, 1, 6, f[6:12] + b"\0\0", struct.unpack("!H", f[12:14])[0])
    g = sll + f[14:]
    out += struct.pack(e + "IIII", ts, tf, len(g), len(g)) + g
open(sys.argv[2], "wb").write(out)
PY
"$replay" --rules "$example/tutorial.rules" --in "$out/sll.pcap" --out /dev/null > "$out/sll.txt"
grep -q '^frames in  *406$' "$out/sll.txt" && grep -Eq '^  dr +133$' "$out/sll.txt" || fail "SLL input"
ok "pcapng and Linux cooked (SLL) input"

# 9. --at: draining .13 after frame 100 sends every later connection to .12.
"$replay" --rules "$example/tutorial.rules" --in "$data/client-vip-http.pcap" --out /dev/null \
  --at "100:-e -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 0" --stats --quiet > "$out/at.txt"
grep -Eq '^  -> 198\.18\.0\.12:80 +[0-9]' "$out/at.txt" || fail "--at: no listing"
c12=$(awk '/-> 198.18.0.12:80/ && NF==7 {print $3; exit}' "$out/at.txt")
[ "$c12" -gt 6 ] || fail "--at: .12 got $c12 connections, want more than 6"
ok "--at drains a server mid-capture"

# 10. --mtu: the clients' packets carry DF, so over a 100-byte MTU they are answered with
#     ICMP fragmentation needed from the VIP (and written to OUT as replies).
"$replay" --rules "$example/tutorial.rules" --in "$data/client-vip-http.pcap" --out "$out/mtu.pcap" --mtu 100 > "$out/mtu.txt"
grep -Eq '^  too_big +[1-9]' "$out/mtu.txt" || fail "--mtu: no frag-needed answers"
if [ -n "$tshark" ]; then
  n=$("$tshark" -r "$out/mtu.pcap" -Y 'icmp.type == 3 && icmp.code == 4 && ip.src == 198.18.0.100 && icmp.mtu == 100' | wc -l)
  [ "$n" -gt 0 ] || fail "--mtu: tshark sees no frag-needed from the VIP with MTU 100"
fi
ok "--mtu answers DF packets over the MTU"

# 11. --capacity: a one-slot table shows the full-table policy. The capture's connections run one
# after another, so each new one evicts the finished (inactive) one before it: evictions are the
# connections inserted minus the capacity, nothing is refused, every frame is still forwarded.
full=$("$replay" --rules "$example/tutorial.rules" --in "$data/client-vip-http.pcap" --out /dev/null)
tiny=$("$replay" --rules "$example/tutorial.rules" --in "$data/client-vip-http.pcap" --out /dev/null --capacity 1)
inserted=$(awk '/^IPv4 connections:/ {gsub(",", ""); print $6}' <<<"$full")
read -r cap ins evicted refused < <(awk '/^IPv4 connections:/ {gsub(",", ""); print $4, $6, $12, $15}' <<<"$tiny")
[ "$cap" = 1 ] && [ "$ins" = "$inserted" ] && [ "$evicted" = $((inserted - 1)) ] && [ "$refused" = 0 ] ||
  fail "--capacity 1: capacity $cap, inserted $ins (want $inserted), evicted $evicted (want $((inserted - 1))), refused $refused"
[ "$(grep '^forwarded' <<<"$tiny")" = "$(grep '^forwarded' <<<"$full")" ] || fail "--capacity 1 forwarded less"
ok "--capacity 1: $evicted inactive connections evicted, none refused, every frame forwarded"

echo "$pass passed, 0 failed"
