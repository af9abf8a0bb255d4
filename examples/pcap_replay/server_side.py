#!/usr/bin/env python3
"""Turns a client-side capture into what a NAT director sees: the VIP's answers (source
VIP:VPORT) become the real server's (source REAL:RPORT), checksums recomputed. Used by
test_replay.sh to replay NAT in both directions. Classic pcap, Ethernet, IPv4/TCP only.
usage: server_side.py IN OUT VIP VPORT REAL RPORT"""
import socket
import struct
import sys


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def main() -> None:
    src, dst, vip, vport, real, rport = sys.argv[1:7]
    vip_b, real_b = socket.inet_aton(vip), socket.inet_aton(real)
    vport, rport = int(vport), int(rport)
    raw = open(src, "rb").read()
    magic = raw[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out = bytearray(raw[:24])
    at = 24
    while at + 16 <= len(raw):
        ts, tf, incl, orig = struct.unpack(endian + "IIII", raw[at:at + 16])
        frame = bytearray(raw[at + 16:at + 16 + incl])
        at += 16 + incl
        if len(frame) >= 54 and frame[12:14] == b"\x08\x00" and frame[23] == 6:
            ihl = (frame[14] & 0xF) * 4
            l4 = 14 + ihl
            total = struct.unpack("!H", frame[16:18])[0]
            if frame[26:30] == vip_b and struct.unpack("!H", frame[l4:l4 + 2])[0] == vport:
                frame[26:30] = real_b
                frame[l4:l4 + 2] = struct.pack("!H", rport)
                frame[24:26] = b"\0\0"
                frame[24:26] = struct.pack("!H", csum(bytes(frame[14:14 + ihl])))
                seg = bytes(frame[l4:14 + total])
                seg = seg[:16] + b"\0\0" + seg[18:]
                pseudo = frame[26:34] + struct.pack("!BBH", 0, 6, len(seg))
                frame[l4 + 16:l4 + 18] = struct.pack("!H", csum(bytes(pseudo) + seg))
        out += struct.pack(endian + "IIII", ts, tf, len(frame), orig) + frame
    open(dst, "wb").write(out)


if __name__ == "__main__":
    main()
