#!/usr/bin/env python3
"""A kernel UDP client for the echo service: sends COUNT datagrams of random sizes (1..MAX bytes),
keeps at most WINDOW unanswered, and checks that every byte comes back. Exit status 0 only if all do."""
import os, random, socket, sys, time

host, port = sys.argv[1], int(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
maxlen = int(sys.argv[4]) if len(sys.argv) > 4 else 1472
window = 32

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.connect((host, port))
s.settimeout(2.0)
rng = random.Random(1)
pending = {}
sent = got = 0
start = time.monotonic()
while got < count:
    while sent < count and len(pending) < window:
        n = rng.randint(8, maxlen)
        payload = sent.to_bytes(8, "big") + os.urandom(n - 8)
        pending[sent] = payload
        s.send(payload)
        sent += 1
    try:
        data = s.recv(65536)
    except socket.timeout:
        print(f"udp_echo_client: timed out with {len(pending)} datagrams unanswered ({got}/{count} back)")
        sys.exit(1)
    seq = int.from_bytes(data[:8], "big")
    if pending.get(seq) != data:
        print(f"udp_echo_client: datagram {seq} came back wrong or twice")
        sys.exit(1)
    del pending[seq]
    got += 1
dt = time.monotonic() - start
print(f"udp_echo_client: {count} datagrams of 8..{maxlen} bytes echoed intact in {dt:.2f}s")
