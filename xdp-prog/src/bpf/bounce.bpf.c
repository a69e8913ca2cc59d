// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * bounce.bpf.c: the in-kernel floor of a veth path, for benchmarks.
 *
 * Every untagged IPv4 UDP frame to the configured address is answered inside the driver: Ethernet and
 * IPv4 addresses and UDP ports swap places and the frame goes back out with XDP_TX. The IPv4 and UDP
 * checksums stay valid (one's-complement sums do not change when two fields swap). A round trip
 * through it costs the client's network stack and the wire (here: veth) and nothing of any server;
 * the AF_XDP reflector adds user space, the stacks add themselves. Everything else is passed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "parse.h"

/* Indices of the per-CPU `counters` array (src/bounce.rs mirrors them). */
#define BOUNCE_CTR_BOUNCED 0
#define BOUNCE_CTR_PASSED 1
#define BOUNCE_CTR_COUNT 2

/* The single value: the address to answer for, network byte order (0: none). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BOUNCE_CTR_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline int pass(void)
{
	__u32 index = BOUNCE_CTR_PASSED;
	__u64 *value = bpf_map_lookup_elem(&counters, &index);

	if (value)
		*value += 1; /* per-CPU: no other writer */
	return XDP_PASS;
}

SEC("xdp")
int xdp_bounce(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct hdr_cursor c = { .pos = data, .end = end };
	struct ethhdr *eth = data;
	struct iphdr *iph;
	struct udphdr *udp;
	__u32 zero = 0, index = BOUNCE_CTR_BOUNCED;
	__u32 *addr = bpf_map_lookup_elem(&config, &zero);
	__u64 *value;
	unsigned char mac[ETH_ALEN];
	__be32 ip;
	__be16 port;

	if (!addr || *addr == 0)
		return pass();
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return pass();
	c.pos = eth + 1;
	iph = parse_iphdr(&c);
	if (!iph || iph->protocol != IPPROTO_UDP || iph->daddr != *addr)
		return pass();
	udp = c.pos;
	if ((void *)(udp + 1) > end)
		return pass();

	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	ip = iph->saddr;
	iph->saddr = iph->daddr;
	iph->daddr = ip;
	port = udp->source;
	udp->source = udp->dest;
	udp->dest = port;

	value = bpf_map_lookup_elem(&counters, &index);
	if (value)
		*value += 1;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
