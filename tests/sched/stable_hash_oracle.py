#!/usr/bin/env python3
"""Reference model of include/l4lb/sched/stable_hash.hpp, written from the formulas in that
header's comment (not from its code). Prints the vectors pinned in weighted_maglev_test.cpp."""
import ipaddress

M = (1 << 64) - 1
K0, K1, K2 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3
FLOW_SEED = int.from_bytes(b'l4lbflow', 'big')
OFFSET_SEED = int.from_bytes(b'l4lbmgof', 'big')
SKIP_SEED = int.from_bytes(b'l4lbmgsk', 'big')
RING_SEED = int.from_bytes(b'l4lbring', 'big')


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


if __name__ == '__main__':
    assert FLOW_SEED == 0x6c346c62666c6f77
    h = flow_hash(6, '192.168.0.1', 12345, '10.0.0.100', 80)
    print('flow v4', hex(h), 'slot65537', reduce(h, 65537))
    print('source_address v4', hex(flow_hash(6, '192.168.0.1', 12345, '10.0.0.100', 80, 'source_address')))
    print('source_address_and_port v4', hex(flow_hash(6, '192.168.0.1', 12345, '10.0.0.100', 80, 'sap')))
    print('flow v6', hex(flow_hash(17, '2001:db8::1', 53000, '2001:db8::100', 53)))
    print('endpoint offset 10.0.0.1:80', hex(endpoint_hash('10.0.0.1', 80, OFFSET_SEED)), endpoint_hash('10.0.0.1', 80, OFFSET_SEED) % 65537)
    print('endpoint skip 10.0.0.1:80', hex(endpoint_hash('10.0.0.1', 80, SKIP_SEED)), endpoint_hash('10.0.0.1', 80, SKIP_SEED) % 65536 + 1)
    e = endpoint_hash('10.0.0.1', 80, RING_SEED)
    print('ring E', hex(e), 'points', [hex(splitmix64((e + k * 0x9e3779b97f4a7c15) & M)) for k in range(3)])
    print('splitmix64(0)', hex(splitmix64(0)))
