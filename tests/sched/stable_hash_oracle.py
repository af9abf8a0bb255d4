#!/usr/bin/env python3
"""Reference model of include/l4lb/sched/stable_hash.hpp, written from the formulas in that
header's comment (not from its code). Prints the vectors pinned in weighted_maglev_test.cpp and
ring_test.cpp. With --properties it also models the ring and the wmh fill as documented in
consistent_hash_ring.hpp / weighted_maglev.hpp and prints the flow shares those tests bound, so
the addresses below can be seen to satisfy each test's property (takes a few seconds).

Addresses (benchmarking range only: 198.18.0.0/15 and fd00::/8):
  clients 198.18.0.x (nth_client: 198.18.0.0 + n/16), VIPs 198.19.0.x, real servers 198.18.1.x
  upwards; IPv6 client fd00::1, VIP fd00::100."""
import bisect
import ipaddress
import sys

M = (1 << 64) - 1
K0, K1, K2 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3
FLOW_SEED = int.from_bytes(b'l4lbflow', 'big')
OFFSET_SEED = int.from_bytes(b'l4lbmgof', 'big')
SKIP_SEED = int.from_bytes(b'l4lbmgsk', 'big')
RING_SEED = int.from_bytes(b'l4lbring', 'big')
GOLDEN = 0x9e3779b97f4a7c15
TCP, UDP = 6, 17

CLIENT = '198.18.0.1'            # the example client, port 12345
VIP = '198.19.0.100'             # the example VIP, port 80
OTHER_VIP = '198.19.0.200'       # another VIP (port 443) for the key tests
SERVER = '198.18.1.1'            # the first real server, port 80
CLIENT6, VIP6 = 'fd00::1', 'fd00::100'
SERVERS_FROM = int(ipaddress.IPv4Address(SERVER))   # numbered(): 198.18.1.1 upwards
NTH_CLIENT_BASE = int(ipaddress.IPv4Address('198.18.0.0'))  # hash_policy_fixtures.hpp
NTH_CLIENT_VIP = '198.18.0.100'  # nth_client's default VIP (hash_policy_fixtures.hpp)


def mix(a, b):
    p = (a & M) * (b & M)
    return (p & M) ^ (p >> 64)


def meta(sport, dport, proto, family):
    return sport | (dport << 16) | (proto << 32) | (family << 40)


def parts(family, src, dst, mt, seed):
    """src, dst: 16 address bytes (network order)."""
    le = lambda b: int.from_bytes(b, 'little')
    if family == 4:
        a = le(src[0:4]) | (le(dst[0:4]) << 32)
        h = mix(a ^ seed ^ K0, mt ^ K1)
    else:
        h = mix(le(src[0:8]) ^ seed ^ K0, le(dst[0:8]) ^ K1)
        h = mix(le(src[8:16]) ^ h ^ K2, le(dst[8:16]) ^ K0)
        h = mix(h ^ mt ^ K1, K2)
    return mix(h ^ K2, K1)


def addr16(text):
    a = ipaddress.ip_address(text)
    return (a.packed + bytes(16))[:16], a.version


def flow_hash(proto, src, sport, dst, dport, key='flow', seed=FLOW_SEED):
    s, fam = addr16(src)
    d, _ = addr16(dst)
    z = bytes(16)
    if key == 'flow':
        return parts(fam, s, d, meta(sport, dport, proto, fam), seed)
    if key == 'source_address':
        return parts(fam, s, z, meta(0, 0, 0, fam), seed)
    return parts(fam, s, z, meta(sport, 0, 0, fam), seed)


def endpoint_hash(address, port, seed):
    a, fam = addr16(address)
    return parts(fam, a, bytes(16), meta(port, 0, 0, fam), seed)


def splitmix64(x):
    x = (x + 0x9e3779b97f4a7c15) & M
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M
    return x ^ (x >> 31)


def reduce(h, n):
    return (h * n) >> 64


def v4(n):
    return str(ipaddress.IPv4Address(n))


# ---- models of the two consistent tables (for --properties) ----------------------------------

def nth_client_hash(n):
    """flow_hash of fixtures::nth_client(n): 198.18.0.0 + n/16, port 1024 + (n%16)*3001."""
    return flow_hash(TCP, v4(NTH_CLIENT_BASE + (n >> 4)), 1024 + (n & 15) * 3001,
                     NTH_CLIENT_VIP, 80)


def endpoint_order(servers):
    """Positions of the servers with a weight, by (address bytes, port), then position."""
    live = (i for i, s in enumerate(servers) if s[2] > 0)
    key = lambda i: (ipaddress.ip_address(servers[i][0]).packed, servers[i][1], i)
    return sorted(live, key=key)


def ring_build(servers, per_server=160):
    """servers: [(address, port, weight)] -> (sorted point hashes, owner list positions)."""
    order = endpoint_order(servers)
    total = sum(servers[i][2] for i in order)
    pts = []
    for rank, i in enumerate(order):
        a, port, w = servers[i]
        p = max(1, (2 * per_server * w * len(order) + total) // (2 * total))  # round half up
        e = endpoint_hash(a, port, RING_SEED)
        pts += [(splitmix64((e + k * GOLDEN) & M), rank) for k in range(p)]
    pts.sort()
    return [h for h, _ in pts], [order[r] for _, r in pts]


def ring_owner(ring, h):
    hashes, owners = ring
    i = bisect.bisect_left(hashes, h)
    return owners[i if i < len(hashes) else 0]


def wmh_build(servers, m=65537):
    """The documented fill, steps 1-4 of weighted_maglev.hpp."""
    order = endpoint_order(servers)
    n = len(order)
    total = sum(servers[i][2] for i in order)
    off = [endpoint_hash(servers[i][0], servers[i][1], OFFSET_SEED) % m for i in order]
    skip = [endpoint_hash(servers[i][0], servers[i][1], SKIP_SEED) % (m - 1) + 1 for i in order]
    quota = [m * servers[i][2] // total for i in order]
    rem = [m * servers[i][2] % total for i in order]
    for k in sorted(range(n), key=lambda k: (-rem[k], k))[:m - sum(quota)]:
        quota[k] += 1
    rounds = (m + n - 1) // n
    cum = lambda r, q: (r * q + rounds - 1) // rounds
    table, nxt = [None] * m, off[:]
    for r in range(1, rounds + 1):
        for k in range(n):
            for _ in range(cum(r - 1, quota[k]), cum(r, quota[k])):
                while table[nxt[k]] is not None:
                    nxt[k] = (nxt[k] + skip[k]) % m
                table[nxt[k]] = order[k]
    return table


def removal(build, owner, servers, removed, flows=100000):
    """(flows on the removed server, flows of the others that change server)."""
    before = build(servers)
    rest = servers[:removed] + servers[removed + 1:]
    after = build(rest)
    on_removed = moved = 0
    for k in range(flows):
        h = nth_client_hash(k)
        b, a = owner(before, h), owner(after, h)
        if b == removed:
            on_removed += 1
        elif servers[b][:2] != rest[a][:2]:
            moved += 1
    return on_removed, moved


def properties():
    ring_numbered = lambda n: [(v4(SERVERS_FROM + 3 * i), 80, 1) for i in range(n)]
    wmh_numbered = lambda n: [(v4(SERVERS_FROM + i), 80, 1) for i in range(n)]
    wmh_owner = lambda t, h: t[reduce(h, len(t))]

    on, mv = removal(ring_build, ring_owner, ring_numbered(50), 20)
    print(f'ring remove 20 of 50 equal: on_removed {on} (bounds 1000..4000), '
          f'moved {mv} (must be 0)')

    d = [(a, p, 1 + (i * 7919) % 10) for i, (a, p, _) in enumerate(ring_numbered(100))]
    mean = sum(s[2] for s in d) / len(d)
    delta = abs(d[50][2] - mean) / (mean * (len(d) - 1))
    on, mv = removal(ring_build, ring_owner, d, 50)
    print(f'ring remove 50 of 100 weighted: moved {mv / 100000:.4f} of flows '
          f'(bound delta + 0.005 = {delta + 0.005:.4f})')

    two = ring_build([(SERVER, 80, 1), ('198.18.1.2', 80, 3)])
    heavy = sum(ring_owner(two, nth_client_hash(k)) == 1 for k in range(100000))
    print(f'ring weights 1, 3: heavy {heavy} (bounds 65000..85000)')

    on, mv = removal(wmh_build, wmh_owner, wmh_numbered(100), 50)
    print(f'wmh remove 50 of 100: on_removed {on} (bounds 500..2000), moved {mv} '
          f'= {mv / 1000:.2f} % (bound < 1000)')


if __name__ == '__main__':
    assert FLOW_SEED == 0x6c346c62666c6f77
    h = flow_hash(TCP, CLIENT, 12345, VIP, 80)
    print(f'flow v4 {CLIENT}:12345 -> {VIP}:80', hex(h), 'slot65537', reduce(h, 65537))
    print('source_address v4', hex(flow_hash(TCP, CLIENT, 12345, VIP, 80, 'source_address')))
    print('source_address_and_port v4', hex(flow_hash(TCP, CLIENT, 12345, VIP, 80, 'sap')))
    g = flow_hash(TCP, CLIENT, 999, OTHER_VIP, 443)
    print(f'flow v4 {CLIENT}:999 -> {OTHER_VIP}:443', hex(g), 'differs from the one above:', g != h)
    print(f'source_address v4 {CLIENT}:999 -> {OTHER_VIP}:443',
          hex(flow_hash(TCP, CLIENT, 999, OTHER_VIP, 443, 'source_address')))
    print(f'flow v6 [{CLIENT6}]:53000 -> [{VIP6}]:53',
          hex(flow_hash(UDP, CLIENT6, 53000, VIP6, 53)))
    o = endpoint_hash(SERVER, 80, OFFSET_SEED)
    s = endpoint_hash(SERVER, 80, SKIP_SEED)
    print(f'endpoint offset {SERVER}:80', hex(o), 'offset65537', o % 65537)
    print(f'endpoint skip {SERVER}:80', hex(s), 'skip65537', s % 65536 + 1)
    e = endpoint_hash(SERVER, 80, RING_SEED)
    print(f'ring E {SERVER}:80', hex(e), 'points k=0..2',
          [hex(splitmix64((e + k * GOLDEN) & M)) for k in range(3)],
          'sorted', [hex(p) for p in sorted(splitmix64((e + k * GOLDEN) & M) for k in range(3))])
    print('splitmix64(0)', hex(splitmix64(0)))
    if '--properties' in sys.argv[1:]:
        properties()
