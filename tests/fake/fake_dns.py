#!/usr/bin/env python3
# A DNS responder on 127.0.0.1 for test_network.sh: answers A queries for
# the names given as NAME=IP arguments (TTL 60), NXDOMAIN for any other
# name, and prints its port on the first line.  Logs each question on stderr.
import socket, struct, sys

names = dict(a.split("=", 1) for a in sys.argv[1:])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
while True:
    msg, peer = s.recvfrom(4096)
    if len(msg) < 12:
        continue
    qid, flags, qd = struct.unpack(">HHH", msg[:6])
    i, labels = 12, []
    while i < len(msg) and msg[i]:
        labels.append(msg[i + 1:i + 1 + msg[i]].decode("ascii", "replace"))
        i += 1 + msg[i]
    qtype, qclass = struct.unpack(">HH", msg[i + 1:i + 5])
    question = msg[12:i + 5]
    name = ".".join(labels).lower()
    print("query", name, qtype, file=sys.stderr, flush=True)
    ip = names.get(name)
    rd = flags & 0x0100
    if ip is None:
        hdr = struct.pack(">HHHHHH", qid, 0x8080 | rd | 3, 1, 0, 0, 0)
        s.sendto(hdr + question, peer)
        continue
    answers = b""
    if qtype == 1:
        answers = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
    hdr = struct.pack(">HHHHHH", qid, 0x8080 | rd, 1, 1 if answers else 0, 0, 0)
    s.sendto(hdr + question + answers, peer)
