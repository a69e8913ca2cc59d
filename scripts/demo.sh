#!/usr/bin/env bash
# The main job, on one machine with no NIC: build, make a veth testbed, run the stack on it with the
# echo, discard and HTTP services, then use it from the kernel side (ping, a kernel UDP client, curl,
# bulk transfers both ways) and look at it with its own tools (ss, ping from the stack, stat).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p xdpstack
bin=target/release/xdpstack
name="demo$(( $$ % 100000 ))"
stack_pid=""
cleanup() {
  [ -n "$stack_pid" ] && kill -INT "$stack_pid" 2>/dev/null && wait "$stack_pid" || true
  "$bin" testbed down --name "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$bin" testbed up --name "$name"
ip netns exec "$name-s" "$bin" run --iface "xs${name}s" --addr 10.77.0.2/24 --name "$name" \
  --service echo-udp:7 --service discard-udp:9 --service echo-tcp:7 --service discard-tcp:9 --service http:80 &
stack_pid=$!

echo "== ping (the kernel's ping against the stack)"
for _ in $(seq 50); do ip netns exec "$name-p" ping -c1 -W1 10.77.0.2 >/dev/null 2>&1 && break; sleep 0.1; done
ip netns exec "$name-p" ping -c 5 -i 0.2 10.77.0.2

echo "== a kernel UDP client against echo-udp:7"
ip netns exec "$name-p" python3 scripts/udp_echo_client.py 10.77.0.2 7 2000 1472
echo "== a 4000-byte datagram (fragmented by the kernel, reassembled and echoed by the stack)"
ip netns exec "$name-p" python3 scripts/udp_echo_client.py 10.77.0.2 7 20 4000

echo "== curl against the stack's HTTP service"
ip netns exec "$name-p" curl -s http://10.77.0.2/ | head -3
echo "== a bulk transfer: 1 GiB from the stack to the kernel's curl"
ip netns exec "$name-p" curl -s -o /dev/null \
  -w "1 GiB in %{time_total} s: %{speed_download} bytes/s\n" http://10.77.0.2/bytes/1073741824
echo "== a bulk transfer the other way: 1 GiB from the kernel to discard-tcp:9"
ip netns exec "$name-p" python3 - <<'PY'
import socket, time
s = socket.create_connection(("10.77.0.2", 9)); buf = b"x" * (1 << 20); t = time.monotonic()
for _ in range(1024): s.sendall(buf)
s.shutdown(socket.SHUT_WR); s.recv(1); dt = time.monotonic() - t
print(f"1 GiB in {dt:.2f} s: {8 * (1 << 30) / dt / 1e9:.2f} Gbit/s")
PY

echo "== the stack's own tools: its socket table (ss), a ping from its raw ICMP socket, counters (stat)"
ip netns exec "$name-p" bash -c 'exec 3<>/dev/tcp/10.77.0.2/7; sleep 2' &
client_pid=$!
sleep 0.5
"$bin" ss -a -i --name "$name"
"$bin" ping -c 3 -i 0.2 --name "$name" 10.77.0.1
"$bin" stat --name "$name" | head -8
wait "$client_pid"

echo "== stopping the stack (it prints its counters)"
kill -INT "$stack_pid"; wait "$stack_pid"; stack_pid=""
