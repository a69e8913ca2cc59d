// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * lossy.bpf.c: seeded packet loss on a real path, for tests.
 *
 * Attached to any interface (typically the kernel peer's veth end, so that loss also hits the
 * direction the stack's own XDP program never sees), it drops a configured fraction of the IPv4
 * frames that match its filter: optionally one IP protocol, optionally one source address. Which
 * frames are dropped comes from seeded per-CPU streams (loss.h), so a run can be replayed. Every
 * other frame (ARP, IPv6, IPv4 filtered out or too short to parse) is passed untouched and counted
 * UNMATCHED. Nothing here modifies a frame.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "loss.h"
#include "lossy.h"
#include "parse.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lossy_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOSSY_CTR_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct loss_state);
} loss_states SEC(".maps");

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &index);

	if (value)
		*value += 1; /* per-CPU: no other writer */
}

/* Whether the frame is a loss candidate: IPv4 passing the configured filters. */
static __always_inline int matches(struct hdr_cursor *c, const struct lossy_config *cfg)
{
	struct iphdr *iph;

	if (parse_ethhdr(c) != ETH_P_IP)
		return 0;
	iph = parse_iphdr(c);
	if (!iph)
		return 0;
	if ((cfg->match_flags & LOSSY_MATCH_PROTOCOL) && iph->protocol != cfg->protocol)
		return 0;
	if ((cfg->match_flags & LOSSY_MATCH_SRC) && iph->saddr != cfg->src)
		return 0;
	return 1;
}

SEC("xdp")
int xdp_lossy(struct xdp_md *ctx)
{
	struct hdr_cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	__u32 zero = 0;
	struct lossy_config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct loss_state *st = bpf_map_lookup_elem(&loss_states, &zero);

	if (!cfg || !st || !matches(&c, cfg)) { /* the lookups cannot fail: array slots exist */
		count(LOSSY_CTR_UNMATCHED);
		return XDP_PASS;
	}
	if (loss_draw(st, cfg->drop_ppm, cfg->seed, cfg->generation, bpf_get_smp_processor_id())) {
		count(LOSSY_CTR_DROPPED);
		return XDP_DROP;
	}
	count(LOSSY_CTR_PASSED);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
