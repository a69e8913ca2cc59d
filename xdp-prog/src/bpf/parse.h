/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * parse.h: bounds-checked header parsing for the XDP programs (steer.bpf.c, lossy.bpf.c).
 *
 * A cursor walks the frame. Each parse_* helper checks that its header lies inside the frame, moves
 * the cursor past it and returns it, or returns NULL (or -1) when the frame is too short, so that
 * the verifier sees every access checked against data_end. BPF only (needs bpf_endian.h).
 */
#ifndef XDPSTACK_PARSE_H
#define XDPSTACK_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Not in the uapi headers used here. */
#define ETH_P_8021Q_TAG 0x8100 /* IEEE 802.1Q */

struct hdr_cursor {
	void *pos;
	void *end;
};

struct vlan_tag {
	__be16 tci;
	__be16 ether_type;
};

static __always_inline void *cursor_take(struct hdr_cursor *c, __u32 len)
{
	void *hdr = c->pos;

	if (hdr + len > c->end)
		return NULL;
	c->pos = hdr + len;
	return hdr;
}

/* Ethernet II with at most one 802.1Q tag; returns the inner EtherType in host order, or -1. */
static __always_inline int parse_ethhdr(struct hdr_cursor *c)
{
	struct ethhdr *eth = cursor_take(c, sizeof(*eth));
	struct vlan_tag *tag;

	if (!eth)
		return -1;
	if (eth->h_proto != bpf_htons(ETH_P_8021Q_TAG))
		return bpf_ntohs(eth->h_proto);
	tag = cursor_take(c, sizeof(*tag));
	if (!tag)
		return -1;
	return bpf_ntohs(tag->ether_type);
}

/* An IPv4 header with its options: version 4, IHL >= 5, all of it inside the frame. */
static __always_inline struct iphdr *parse_iphdr(struct hdr_cursor *c)
{
	struct iphdr *iph = c->pos;
	__u32 len;

	if ((void *)(iph + 1) > c->end)
		return NULL;
	if (iph->version != 4 || iph->ihl < 5)
		return NULL;
	len = iph->ihl * 4;
	if (c->pos + len > c->end)
		return NULL;
	c->pos += len;
	return iph;
}

#endif /* XDPSTACK_PARSE_H */
