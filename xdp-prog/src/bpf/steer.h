/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * steer.h: what the XDP steering program and user space agree on.
 *
 * Map keys and values, the address flags, the counter indices and the flow hash live here once.
 * The Rust side (xdp-prog/src/lib.rs) uses the skeleton's BTF-generated types for the structs and
 * mirrors the constants and flow_hash(); xdp-prog's tests compile this header for the host
 * (build.rs, src/bpf/steer_host.c) and check that every constant, layout and hash value agrees.
 *
 * Only <linux/types.h> is needed, so the header compiles both for -target bpf and for the host.
 */
#ifndef XDPSTACK_STEER_H
#define XDPSTACK_STEER_H

#include <linux/types.h>

/* Map sizes. XSKMAP index = rx_queue_index * socks_per_queue + flow_hash % socks_per_queue. */
#define STEER_XSKMAP_SIZE 64
#define STEER_ADDRS_SIZE 64
/* Every port of both protocols: a stack may bind them all (the map allocates per entry, see steer.bpf.c). */
#define STEER_PORTS_SIZE (2 * 65536)

/* Value flags of the `addrs` map (key: IPv4 address in network byte order). */
#define ADDR_UNICAST 1   /* an address of the stack */
#define ADDR_BROADCAST 2 /* a broadcast address the stack listens on */

/* IP protocol numbers used as port_key.proto (IANA). */
#define STEER_PROTO_TCP 6
#define STEER_PROTO_UDP 17

/* Key of the `ports` map: a local port of the stack; value: u8 (1). */
struct port_key {
	__u16 port;  /* host byte order */
	__u8 proto;  /* STEER_PROTO_TCP or STEER_PROTO_UDP */
	__u8 pad;    /* always 0 */
};

/* The single value of the `config` array. Fields are only ever appended, so an all-zero tail keeps
 * the old behaviour. */
struct steer_config {
	__u32 port_filter;     /* 0: the stack owns its addresses; 1: it shares them with the kernel */
	__u32 socks_per_queue; /* AF_XDP sockets per RX queue; 0 means 1 */
	/* Loss mode (tests): drop this many per million of the frames that would be steered, drawn
	 * from seeded per-CPU streams (loss.h). 0: no loss. */
	__u32 drop_ppm;
	__u32 loss_generation; /* bumped by user space on every loss change: restarts the streams */
	__u64 loss_seed;       /* seed of the streams */
	/* Stage timing (benchmarks): 1 puts bpf_ktime_get_ns() (CLOCK_MONOTONIC) into the 8 bytes of
	 * XDP metadata in front of every steered frame, where an AF_XDP reader finds it. */
	__u32 stamp;
	__u32 pad; /* always 0 */
};

/* Bytes of XDP metadata a stamped frame carries (a u64, native byte order). */
#define STEER_STAMP_LEN 8

/* Indices of the per-CPU `counters` array (u64 each). */
enum steer_counter {
	STEER_CTR_STEERED = 0,   /* redirected into an AF_XDP socket */
	STEER_CTR_PASSED = 1,    /* every XDP_PASS, whatever the reason */
	STEER_CTR_MALFORMED = 2, /* too short (or bad) for the headers the decision needs */
	STEER_CTR_NO_SOCKET = 3, /* meant for the stack, but its XSKMAP slot was empty */
	STEER_CTR_DROPPED = 4,   /* meant for the stack, dropped by the loss mode (XDP_DROP) */
	STEER_CTR_COUNT = 5,
};

/* The 32-bit finaliser of MurmurHash3 (public domain): every input bit flips each output bit with
 * probability close to 1/2, so `hash % n` spreads flows well for any n. */
static inline __attribute__((always_inline)) __u32 steer_mix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bU;
	h ^= h >> 13;
	h *= 0xc2b2ae35U;
	h ^= h >> 16;
	return h;
}

/*
 * The flow hash, over host-order values. Ports are 0 for ARP (whose "addresses" are the sender and
 * target protocol addresses, proto 0), for ICMP and for every IP fragment, so all frames of such a
 * flow land on one socket. Three mixing rounds: cheap (six multiplies) and order-sensitive.
 */
static inline __attribute__((always_inline)) __u32
steer_flow_hash(__u32 src, __u32 dst, __u8 proto, __u16 src_port, __u16 dst_port)
{
	__u32 h = 0x9e3779b9U ^ (__u32)proto;

	h = steer_mix32(h ^ src);
	h = steer_mix32(h ^ dst);
	h = steer_mix32(h ^ (((__u32)src_port << 16) | (__u32)dst_port));
	return h;
}

#endif /* XDPSTACK_STEER_H */
