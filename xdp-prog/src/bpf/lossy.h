/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * lossy.h: what the lossy XDP program (lossy.bpf.c) and user space (src/lossy.rs) agree on.
 * The Rust side checks every constant and layout against this header compiled for the host.
 */
#ifndef XDPSTACK_LOSSY_H
#define XDPSTACK_LOSSY_H

#include <linux/types.h>

/* lossy_config.match_flags: which filters apply (none: every IPv4 frame is a candidate). */
#define LOSSY_MATCH_PROTOCOL 1 /* only IPv4 with this IP protocol */
#define LOSSY_MATCH_SRC 2      /* only IPv4 from this source address */

/* The single value of the `config` array; all zero (no loss) until user space sets it. */
struct lossy_config {
	__u32 drop_ppm;   /* drop this many candidate frames per million (0 to LOSS_PPM_ONE) */
	__u32 generation; /* bumped by user space on every change: restarts the random streams */
	__u64 seed;       /* seed of the per-CPU random streams (loss.h) */
	__be32 src;       /* with LOSSY_MATCH_SRC: the source address, network byte order */
	__u8 protocol;    /* with LOSSY_MATCH_PROTOCOL: the IP protocol (6 TCP, 17 UDP, 1 ICMP) */
	__u8 match_flags; /* LOSSY_MATCH_* */
	__u16 pad;        /* always 0 */
};

/* Indices of the per-CPU `counters` array (u64 each). */
enum lossy_counter {
	LOSSY_CTR_DROPPED = 0,   /* candidates dropped */
	LOSSY_CTR_PASSED = 1,    /* candidates passed */
	LOSSY_CTR_UNMATCHED = 2, /* frames that are no candidate (not IPv4, filtered out): passed */
	LOSSY_CTR_COUNT = 3,
};

#endif /* XDPSTACK_LOSSY_H */
