#!/usr/bin/env python3
"""Independent reference model of IPVS's hashing schedulers, written from the kernel's rules
(include/linux/hash.h, lib/siphash.c, net/netfilter/ipvs/ip_vs_{sh,dh,mh}.c as summarised in
shared/ipvs-notes.md), not from l4lb's C++. The expected values in hash_schedulers_test.cpp and
maglev_test.cpp that are not worked by hand in a comment were computed with it:

    python3 tests/sched/ipvs_hash_oracle.py

It checks itself against the kernel's hsiphash self-test vectors (lib/siphash_kunit.c) and the
derived vectors of ipvs-notes.md before printing anything."""
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
    a = [int(x) for x in s.split('.')]
    return (a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]


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


def self_check():
    key = (0x0706050403020100, 0x0f0e0d0c0b0a0908)
    first = [0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328]
    for n, want in enumerate(first):
        assert hsiphash(bytes(range(n)), *key) == want
    assert mh_hash(KEY1, ip('10.0.0.1'), 80, 0) == 0x439c0cbe
    assert mh_hash(KEY2, ip('10.0.0.1'), 80, 0) == 0x97b3dc47
    assert mh_hash(KEY1, ip('192.168.0.1'), 0, 0) % 4093 == 1278
    t = mh_build([(ip('10.0.0.1'), 80, 4), (ip('10.0.0.2'), 80, 3), (ip('10.0.0.3'), 80, 2)])
    assert [t.count(i) for i in range(3)] == [1820, 1365, 908]


if __name__ == '__main__':
    self_check()
    A, B, C = ip('10.0.0.1'), ip('10.0.0.2'), ip('10.0.0.3')
    client = ip('192.168.0.1')
    # mh, list order .1(4) .2(3) .3(2)
    t = mh_build([(A, 80, 4), (B, 80, 3), (C, 80, 2)])
    print('mh 4/3/2 slot 1278 ->', t[1278])
    t2 = mh_build([(C, 80, 2), (B, 80, 3), (A, 80, 4)])
    print('mh reversed shares', [t2.count(i) for i in range(3)])
    t3 = mh_build([(A, 80, 1), (B, 80, 1), (C, 80, 1)])
    print('mh equal shares', [t3.count(i) for i in range(3)])
    print('mh equal: client', hex(client), 'slot', mh_hash(KEY1, client, 0, 0) % 4093, '->', t3[mh_hash(KEY1, client, 0, 0) % 4093])
    print('mh port 12345 slot', mh_hash(KEY1, client, 12345, 0) % 4093)
