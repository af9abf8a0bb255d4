#!/usr/bin/env python3
"""Independent reference model of IPVS's hashing schedulers, written from the kernel's rules
(include/linux/hash.h, lib/siphash.c, net/netfilter/ipvs/ip_vs_{sh,dh,mh,lblc}.c as summarised in
shared/ipvs-notes.md), not from l4lb's C++. The expected values in hash_schedulers_test.cpp,
maglev_test.cpp and lblc_test.cpp that depend on an address were computed with it; it prints each
of them, labelled with the test that asserts it:

    python3 tests/sched/ipvs_hash_oracle.py

It checks itself against the kernel's hsiphash self-test vectors (lib/siphash_kunit.c) and the
derived vectors of ipvs-notes.md before printing anything.

Addresses used by the tests (198.18.0.0/15 and fd00::/8 only):
  clients              198.18.0.x (main client 198.18.0.85, second client 198.18.0.1), fd00::99
  VIPs / destinations  198.19.0.x (VIP 198.19.0.100; dh VIPs 198.19.0.2, .3; lblc destinations
                       198.19.0.1-3 and 198.19.1.0-39), fd00::1, fd00::100
  real servers         198.18.1.x (A .1, B .2, C .3, D .4; .1-.10 for ten), 198.18.2.x for 252,
                       fd00::3b12:101 (folds to 198.18.1.1)"""
import ipaddress
from math import gcd

M64 = (1 << 64) - 1


def rol(x, b):
    return ((x << b) | (x >> (64 - b))) & M64


def sipround(v):
    v0, v1, v2, v3 = v
    v0 = (v0 + v1) & M64; v1 = rol(v1, 13); v1 ^= v0; v0 = rol(v0, 32)
    v2 = (v2 + v3) & M64; v3 = rol(v3, 16); v3 ^= v2
    v0 = (v0 + v3) & M64; v3 = rol(v3, 21); v3 ^= v0
    v2 = (v2 + v1) & M64; v1 = rol(v1, 17); v1 ^= v2; v2 = rol(v2, 32)
    return [v0, v1, v2, v3]


def hsiphash(data, k0, k1):
    """64-bit kernels: SipHash-1-3 with 64-bit key words, low 32 bits of v0^v1^v2^v3."""
    v = [0x736f6d6570736575 ^ k0, 0x646f72616e646f6d ^ k1,
         0x6c7967656e657261 ^ k0, 0x7465646279746573 ^ k1]
    n = len(data)
    full = n - n % 8
    for i in range(0, full, 8):
        m = int.from_bytes(data[i:i + 8], 'little')
        v[3] ^= m; v = sipround(v); v[0] ^= m
    b = ((n << 56) & M64) | int.from_bytes(data[full:], 'little')
    v[3] ^= b; v = sipround(v); v[0] ^= b; v[2] ^= 0xff
    for _ in range(3):
        v = sipround(v)
    return (v[0] ^ v[1] ^ v[2] ^ v[3]) & 0xffffffff


KEY1 = (2654435761, 2654435761)
KEY2 = (2654446892, 2654446892)
PRIMES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071]


def ip(s):
    """IPv4 text -> the address as a host-order integer (what IPVS folds an IPv4 address to)."""
    return int(ipaddress.IPv4Address(s))


def fold(s):
    """IPVS's address fold: IPv4 in host order; IPv6 = XOR of its four 32-bit words (host order)."""
    a = ipaddress.ip_address(s)
    if a.version == 4:
        return int(a)
    n = int(a)
    return (n >> 96 ^ n >> 64 ^ n >> 32 ^ n) & 0xffffffff


def hash_32(v, bits):
    return ((v * 0x61C88647) & 0xffffffff) >> (32 - bits)


def mh_hash(key, fold, port, offset):
    v = (offset + port + fold) & 0xffffffff
    return hsiphash(v.to_bytes(4, 'little'), *key)


def mh_build(dests, index=12):
    """dests: [(fold, port, last_weight)] in kernel list order -> slot -> list position."""
    M = PRIMES[index - 8]
    g = 0
    for _, _, w in dests:
        if w > 0:
            g = gcd(w, g) if g > 0 else w
    table = [None] * M
    if g < 1:
        return table
    rshift = max(0, (max(w for _, _, w in dests) // g).bit_length() - index // 2)
    ds = []
    for f, p, lw in dests:
        t = (lw // g) >> rshift
        if t == 0:
            t = 1 if lw != 0 else 0
        ds.append([mh_hash(KEY1, f, p, 0) % M, mh_hash(KEY2, f, p, 0) % (M - 1) + 1, t])
    taken = [False] * M
    n = dt = 0
    while True:
        i = 0
        while i < len(ds):
            d = ds[i]
            if d[2] < 1:
                i += 1
                continue
            while taken[d[0]]:
                d[0] = (d[0] + d[1]) % M
            taken[d[0]] = True
            table[d[0]] = i
            n += 1
            if n == M:
                return table
            dt += 1
            if dt >= d[2]:
                dt = 0
                i += 1


def mh_pick(table, usable, fold, port, fallback):
    M = len(table)
    ih = mh_hash(KEY1, fold, port, 0) % M
    d = table[ih]
    if d is None:
        return None
    if usable[d]:
        return d
    if not fallback:
        return None
    for o in range(M):
        d = table[mh_hash(KEY1, fold, port, (o + ih) % M) % M]
        if d is None:
            return None
        if usable[d]:
            return d
    return None


def sh_build(weights, bits=8):
    if not weights:
        return [None] * (1 << bits)
    t, p, c = [], 0, 0
    for _ in range(1 << bits):
        t.append(p)
        c += 1
        if c >= weights[p]:
            p, c = (p + 1) % len(weights), 0
    return t


def sh_pick(t, usable, fold, port, fallback, bits=8):
    mask = (1 << bits) - 1
    h = hash_32((port + fold) & 0xffffffff, bits)
    ih = h & mask
    d = t[ih]
    if d is None:
        return None
    if usable[d]:
        return d
    if not fallback:
        return None
    for o in range(1 << bits):
        d = t[(((o + ih) & mask) + h) & mask]
        if d is None:
            return None
        if usable[d]:
            return d
    return None


def dh_pick(n, usable, daddr_fold, bits=8):
    """dh: bucket i holds list position i mod n (weights ignored); key hash_32(fold(daddr))."""
    if n == 0:
        return None
    d = hash_32(daddr_fold, bits) % n
    return d if usable[d] else None


def lblc_bucket(daddr_fold, bits=10):
    return hash_32(daddr_fold, bits)


def self_check():
    key = (0x0706050403020100, 0x0f0e0d0c0b0a0908)
    first = [0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328]
    for n, want in enumerate(first):
        assert hsiphash(bytes(range(n)), *key) == want
    # ipvs-notes.md's worked example inputs (mh section), kept as integers: its three real servers
    # (port 80) and its client (port 0). These are the notes' own vectors, the external truth.
    notes_servers = (0x0A000001, 0x0A000002, 0x0A000003)
    notes_client = 0xC0A80001
    assert mh_hash(KEY1, notes_servers[0], 80, 0) == 0x439c0cbe
    assert mh_hash(KEY2, notes_servers[0], 80, 0) == 0x97b3dc47
    perms = [(mh_hash(KEY1, a, 80, 0) % 4093, mh_hash(KEY2, a, 80, 0) % 4092 + 1)
             for a in notes_servers]
    assert perms == [(3167, 700), (1231, 3544), (1631, 3453)]
    assert mh_hash(KEY1, notes_client, 0, 0) == 0x8334668e
    assert mh_hash(KEY1, notes_client, 0, 0) % 4093 == 1278
    t = mh_build([(a, 80, w) for a, w in zip(notes_servers, (4, 3, 2))])
    assert [t.count(i) for i in range(3)] == [1820, 1365, 908]


def product(v):
    """The low 32 bits of v * GOLDEN_RATIO_32, whose top bits hash_32 keeps."""
    return (v * 0x61C88647) & 0xffffffff


def hx(v):
    return f'{v:#010x}'


def show(label, value):
    print(f'  {label}: {value}')


# The tests' addresses (see the docstring).
CLIENT, CLIENT2 = ip('198.18.0.85'), ip('198.18.0.1')
VIP = ip('198.19.0.100')
A, B, C = ip('198.18.1.1'), ip('198.18.1.2'), ip('198.18.1.3')
# hash_policy_fixtures.hpp's nth_client_address(n): client 198.18.0.0 + n, port 0 for mh.
FIXTURE_CLIENTS = [ip('198.18.0.0') + n for n in range(100000)]


def hash_schedulers_values():
    print('hash_schedulers_test.cpp')
    dh1, dh2 = ip('198.19.0.2'), ip('198.19.0.3')
    for name, v in (('198.19.0.2', dh1), ('198.19.0.3', dh2), ('198.18.0.85', CLIENT)):
        show(f'hash_32 {name} = {hx(v)}',
             f'v * 0x61C88647 = {hx(product(v))}, 8 bits {hash_32(v, 8)}, 10 bits {hash_32(v, 10)}')
    for a in ('198.18.0.1', 'fd00::1', 'fd00:1:2:3:fd00:1:2:3'):
        show(f'fold {a}', hx(fold(a)))
    show('client_key_of 198.18.0.85:12345 -> 198.19.0.100:80',
         f'source fold {hx(CLIENT)}, inverse (destination) fold {hx(VIP)}')

    # dh: servers added A, B, C -> list C, B, A (positions 0, 1, 2); adding D -> D, C, B, A.
    v6 = fold('fd00::1')
    for name, v in (('198.19.0.2', dh1), ('198.19.0.3', dh2), ('fd00::1', v6)):
        show(f'dh {name}', f'v * 0x61C88647 = {hx(product(v))}, bucket {hash_32(v, 8)} -> position'
             f' {dh_pick(3, [True] * 3, v)} of 3, {dh_pick(4, [True] * 4, v)} of 4')
    show('dh 198.19.0.2, position 2 unusable', dh_pick(3, [True, True, False], dh1))
    pos = hash_32(dh1, 8) % 3  # a table built for 3 servers, then a list of 2 handed in
    show('dh 198.19.0.2, 3-server table, 2 servers',
         f'position {pos} -> {pos if pos < 2 else None}')

    # sh: list A(4), B(3), C(2).
    t, tq = sh_build([4, 3, 2]), sh_build([0, 3, 2])
    show('sh 4/3/2 shares', [t.count(i) for i in range(3)])
    show('sh 0/3/2 (A quiesced) shares', [tq.count(i) for i in range(3)])
    every = [True] * 3
    no_a, no_b, no_c = [False, True, True], [True, False, True], [True, True, False]
    h = hash_32(CLIENT, 8)
    show('sh 198.18.0.85', f'bucket {h} -> {sh_pick(t, every, CLIENT, 0, False)}')
    show('sh 198.18.0.1', f'v * 0x61C88647 = {hx(product(CLIENT2))}, bucket {hash_32(CLIENT2, 8)}'
         f' -> {sh_pick(t, every, CLIENT2, 0, False)}')
    v = (CLIENT + 12345) & 0xffffffff
    show('sh-port 198.18.0.85:12345', f'v = {hx(v)}, v * 0x61C88647 = {hx(product(v))},'
         f' bucket {hash_32(v, 8)} -> {sh_pick(t, every, CLIENT, 12345, False)}')
    show('sh-port, ICMP from 198.18.0.85 (port 0)', sh_pick(t, every, CLIENT, 0, False))
    show('sh 198.18.0.85, A overloaded, no fallback', sh_pick(t, no_a, CLIENT, 0, False))
    show('sh 198.18.0.1, A overloaded, no fallback', sh_pick(t, no_a, CLIENT2, 0, False))
    probes = [(2 * h + o) % 256 for o in range(3)]
    show('sh-fallback 198.18.0.85, A overloaded', f'probes {probes} -> {[t[b] for b in probes]},'
         f' pick {sh_pick(t, no_a, CLIENT, 0, True)}')
    show('sh-fallback 198.18.0.85, A quiesced (A BBB CC)', f'bucket {h} -> {tq[h]}, probe'
         f' {probes[0]} -> {tq[probes[0]]}, pick {sh_pick(tq, no_a, CLIENT, 0, True)}')
    v = (CLIENT + 80) & 0xffffffff
    k = hash_32(v, 8)
    from_2k, from_k = [(2 * k + o) % 256 for o in range(2)], [(k + o) % 256 for o in range(3)]
    show('sh-fallback + sh-port 198.18.0.85:80, C overloaded',
         f'v = {hx(v)}, v * 0x61C88647 = {hx(product(v))}, key {k} -> {t[k]}; probes {from_2k}'
         f' -> {[t[b] for b in from_2k]} (from the key they would be {from_k} ->'
         f' {[t[b] for b in from_k]}), pick {sh_pick(t, no_c, CLIENT, 80, True)}')
    show('sh-fallback 198.18.0.85, all overloaded', sh_pick(t, [False] * 3, CLIENT, 0, True))
    show('sh 198.18.0.85, B overloaded', sh_pick(t, no_b, CLIENT, 0, False))
    t41 = sh_build([4, 3, 1])
    show('sh after C -> weight 1 (AAAABBBC), 198.18.0.85, B overloaded',
         sh_pick(t41, no_b, CLIENT, 0, False))
    show('sh after C -> weight 1, 198.18.0.1', sh_pick(t41, every, CLIENT2, 0, False))
    ts = sh_build([4, 3, 2], bits=2)
    show('sh 4 buckets',
         f'table {ts}, 198.18.0.1 -> {sh_pick(ts, every, CLIENT2, 0, False, bits=2)}')


def maglev_values():
    print('maglev_test.cpp')
    show('198.18.1.1:80', f'v = {hx(A + 80)}, H1 {hx(mh_hash(KEY1, A, 80, 0))},'
         f' H2 {hx(mh_hash(KEY2, A, 80, 0))}')
    for name, a in (('198.18.1.1', A), ('198.18.1.2', B), ('198.18.1.3', C)):
        h1, h2 = mh_hash(KEY1, a, 80, 0), mh_hash(KEY2, a, 80, 0)
        show(f'permutation {name}:80', f'H1 {hx(h1)} H2 {hx(h2)}; M 4093: offset {h1 % 4093}'
             f' skip {h2 % 4092 + 1}; M 251: offset {h1 % 251} skip {h2 % 250 + 1}')
    h = mh_hash(KEY1, CLIENT, 0, 0)
    slot = h % 4093
    show('client 198.18.0.85, port 0', f'H1 {hx(h)}, slot {slot}')

    t = mh_build([(A, 80, 4), (B, 80, 3), (C, 80, 2)])
    show('A4 B3 C2 shares', [t.count(i) for i in range(3)])
    show('A4 B3 C2 first 16 slots', t[:16])
    tr = mh_build([(C, 80, 2), (B, 80, 3), (A, 80, 4)])
    show('C2 B3 A4 (reversed list) shares', [tr.count(i) for i in range(3)])
    t1 = mh_build([(A, 80, 1), (B, 80, 1), (C, 80, 1)])
    show('A1 B1 C1 shares', [t1.count(i) for i in range(3)])
    t251 = mh_build([(A, 80, 1), (B, 80, 1)], index=8)
    oa, sa = mh_hash(KEY1, A, 80, 0) % 251, mh_hash(KEY2, A, 80, 0) % 250 + 1
    ob, a2 = mh_hash(KEY1, B, 80, 0) % 251, (oa + sa) % 251
    show('table 251, A1 B1', f'slot {oa} -> {t251[oa]}, slot {ob} -> {t251[ob]}, A continues at'
         f' ({oa} + {sa}) mod 251 = {a2} -> {t251[a2]}; shares {[t251.count(i) for i in range(2)]}')
    tbig = mh_build([(A, 80, 1000), (B, 80, 1)])
    show('A1000 B1 shares', [tbig.count(i) for i in range(2)])

    show('pick 198.18.0.85 (no port)', f'slot {slot} -> {t[slot]}')
    sp = mh_hash(KEY1, CLIENT, 12345, 0) % 4093
    show('pick 198.18.0.85:12345 (mh-port)', f'v = {hx(CLIENT + 12345)}, slot {sp} -> {t[sp]}')
    f6 = fold('fd00::3b12:101')
    show('fold fd00::3b12:101', f'{hx(f6)} (198.18.1.1: {f6 == A})')
    usable = [False, True, True]  # A quiesced; the table keeps its slots (last_weight 4)
    chain = [mh_hash(KEY1, CLIENT, 0, (o + slot) % 4093) % 4093 for o in range(3)]
    show('A quiesced, 198.18.0.85, no fallback', mh_pick(t, usable, CLIENT, 0, False))
    show('A quiesced, 198.18.0.85, mh-fallback', f'probes o = 0, 1, 2: slots {chain} ->'
         f' {[t[c] for c in chain]}, pick {mh_pick(t, usable, CLIENT, 0, True)}')
    slots = [mh_hash(KEY1, c, 0, 0) % 4093 for c in FIXTURE_CLIENTS]
    show('nth_client_address(0 .. 99999) on A', sum(t[sl] == 0 for sl in slots))

    # Ten servers 198.18.1.1 .. 198.18.1.10 (weight 1); the fourth (index 3) removed.
    ten = [(A + i, 80, 1) for i in range(10)]
    nine = ten[:3] + ten[4:]
    before, after = mh_build(ten), mh_build(nine)

    def moved(sl):
        return before[sl] != 3 and ten[before[sl]][0] != nine[after[sl]][0]
    n_moved = sum(moved(sl) for sl in range(4093))
    show('10 servers, the 4th removed: slots', f'{before.count(3)} on the removed one, {n_moved}'
         f' ({100 * n_moved / 4093:.1f} %) moved between the others')
    show('10 servers, the 4th removed: nth_client_address(0 .. 99999)',
         f'{sum(before[sl] == 3 for sl in slots)} on the removed one,'
         f' {sum(moved(sl) for sl in slots)} moved between the others')


def lblc_values():
    print('lblc_test.cpp')
    bulk = [ip(f'198.19.1.{i}') for i in range(40)]
    b = [lblc_bucket(a, 1) for a in bulk]
    show('table_bits 1, 198.19.1.0 .. 39', f'bucket 1: {b.count(1)}, bucket 0: {b.count(0)}')
    for i in range(4):
        show(f'198.19.1.{i} = {hx(bulk[i])}', f'v * 0x61C88647 = {hx(product(bulk[i]))} -> bucket'
             f' {b[i]}')
    for a in ('fd00:1:2:3:fd00:1:2:3', 'fd00:5:6:7:fd00:5:6:7', 'fd00::1'):
        show(f'fold {a}', f'{hx(fold(a))}, bucket (10 bits) {lblc_bucket(fold(a))}')


if __name__ == '__main__':
    self_check()
    hash_schedulers_values()
    maglev_values()
    lblc_values()
