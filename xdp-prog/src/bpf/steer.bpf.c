// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * steer.bpf.c: the xdpstack XDP program.
 *
 * Frames for the stack go to an AF_XDP socket through the `xsks` XSKMAP; everything else goes to the
 * kernel (XDP_PASS). "For the stack" means:
 *   - ARP (RFC 826, Ethernet/IPv4) whose target address is a unicast address of the stack, unless the
 *     stack shares its address with the kernel (port-filter mode), in which case the kernel owns ARP;
 *   - IPv4 (RFC 791) to a unicast address of the stack: every packet, or in port-filter mode only
 *     unfragmented TCP/UDP to a listed port, and ICMP errors (RFC 792) about a listed local port;
 *   - IPv4 to a broadcast address of the stack: unfragmented UDP to a listed port.
 * The socket is slot rx_queue_index * socks_per_queue + flow_hash % socks_per_queue (see steer.h).
 * A frame too short for the headers the decision needs is counted MALFORMED and passed (the kernel
 * drops it). Nothing here modifies a frame, and nothing is dropped unless the loss mode is on
 * (steer_config.drop_ppm, for tests): then a seeded fraction of the frames that would be steered
 * is dropped and counted DROPPED (loss.h). Frames for the kernel are never dropped.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "loss.h"
#include "parse.h"
#include "steer.h"

/* Not in the uapi headers used here. */
#define ARP_HTYPE_ETHER 1      /* RFC 826 hardware type for Ethernet */
#define IP_MF 0x2000           /* RFC 791: more fragments */
#define IP_OFFSET 0x1fff       /* RFC 791: fragment offset, in 8-byte units */
#define ICMP_DEST_UNREACH 3    /* RFC 792 error types */
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, STEER_XSKMAP_SIZE);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STEER_ADDRS_SIZE);
	__type(key, __u32); /* IPv4 address, network byte order */
	__type(value, __u32); /* ADDR_UNICAST or ADDR_BROADCAST */
} addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STEER_PORTS_SIZE);
	/* Entries are allocated when userspace adds a port (never on the packet path), so room for every
	 * port costs nothing until the ports are bound. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct port_key);
	__type(value, __u8);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct steer_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STEER_CTR_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* The loss mode's random stream, one per CPU (loss.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct loss_state);
} loss_states SEC(".maps");

/* RFC 826 for hardware type Ethernet and protocol type IPv4: 28 bytes. */
struct arp_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 oper;
	__u8 sha[ETH_ALEN];
	__be32 spa;
	__u8 tha[ETH_ALEN];
	__be32 tpa;
} __attribute__((packed));

/* RFC 792: every ICMP message starts with these 8 bytes (<linux/icmp.h> drags in libc headers). */
struct icmp_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest;
};

/* The first four bytes of TCP and UDP alike. */
struct l4_ports {
	__be16 src;
	__be16 dst;
};

/* The flow a steered frame belongs to, in host byte order, as steer_flow_hash() takes it. */
struct flow {
	__u32 src;
	__u32 dst;
	__u16 src_port;
	__u16 dst_port;
	__u8 proto;
};

enum verdict {
	VERDICT_PASS,
	VERDICT_MALFORMED,
	VERDICT_STEER,
};

/* The ports of a TCP or UDP header, requiring the whole fixed header (20 or 8 bytes). */
static __always_inline struct l4_ports *parse_l4hdr(struct hdr_cursor *c, __u8 proto)
{
	if (proto == IPPROTO_TCP)
		return cursor_take(c, sizeof(struct tcphdr));
	return cursor_take(c, sizeof(struct udphdr));
}

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &index);

	if (value)
		*value += 1; /* per-CPU: no other writer */
}

static __always_inline __u32 addr_flags(__be32 addr)
{
	__u32 *flags = bpf_map_lookup_elem(&addrs, &addr);

	return flags ? *flags : 0;
}

static __always_inline int port_listed(__u8 proto, __u16 port)
{
	struct port_key key = { .port = port, .proto = proto, .pad = 0 };

	return bpf_map_lookup_elem(&ports, &key) != NULL;
}

static __always_inline int is_fragment(const struct iphdr *iph)
{
	return (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET)) != 0;
}

static __always_inline enum verdict decide_arp(struct hdr_cursor *c,
					       const struct steer_config *cfg, struct flow *f)
{
	struct arp_ipv4 *arp = cursor_take(c, sizeof(*arp));

	if (!arp)
		return VERDICT_MALFORMED;
	if (arp->htype != bpf_htons(ARP_HTYPE_ETHER) || arp->ptype != bpf_htons(ETH_P_IP) ||
	    arp->hlen != ETH_ALEN || arp->plen != 4)
		return VERDICT_PASS;
	/* In port-filter mode the kernel holds the same address and answers ARP for both. */
	if (cfg->port_filter || !(addr_flags(arp->tpa) & ADDR_UNICAST))
		return VERDICT_PASS;
	f->src = bpf_ntohl(arp->spa);
	f->dst = bpf_ntohl(arp->tpa);
	return VERDICT_STEER;
}

/* Port-filter mode: an ICMP error is for the stack when the datagram it quotes (RFC 792: its IP
 * header and first 64 bits) was sent from a listed port, i.e. belongs to a flow of the stack. */
static __always_inline enum verdict decide_icmp_error(struct hdr_cursor *c)
{
	struct icmp_hdr *icmp = cursor_take(c, sizeof(*icmp));
	struct iphdr *quoted;
	struct l4_ports *ports;

	if (!icmp)
		return VERDICT_MALFORMED;
	if (icmp->type != ICMP_DEST_UNREACH && icmp->type != ICMP_TIME_EXCEEDED &&
	    icmp->type != ICMP_PARAMETERPROB)
		return VERDICT_PASS;
	quoted = parse_iphdr(c);
	if (!quoted)
		return VERDICT_MALFORMED;
	if (quoted->frag_off & bpf_htons(IP_OFFSET)) /* a later fragment quotes no ports */
		return VERDICT_PASS;
	if (quoted->protocol != IPPROTO_TCP && quoted->protocol != IPPROTO_UDP)
		return VERDICT_PASS;
	ports = cursor_take(c, sizeof(*ports));
	if (!ports)
		return VERDICT_MALFORMED;
	return port_listed(quoted->protocol, bpf_ntohs(ports->src)) ? VERDICT_STEER : VERDICT_PASS;
}

static __always_inline enum verdict decide_ipv4(struct hdr_cursor *c,
						const struct steer_config *cfg, struct flow *f)
{
	struct iphdr *iph = parse_iphdr(c);
	int has_ports;
	__u32 flags;

	if (!iph)
		return VERDICT_MALFORMED;
	flags = addr_flags(iph->daddr);
	if (!flags)
		return VERDICT_PASS;

	f->src = bpf_ntohl(iph->saddr);
	f->dst = bpf_ntohl(iph->daddr);
	f->proto = iph->protocol;
	/* Fragments hash without ports so that all pieces of a datagram meet on one socket. */
	has_ports = !is_fragment(iph) &&
		    (iph->protocol == IPPROTO_TCP || iph->protocol == IPPROTO_UDP);
	if (has_ports) {
		struct l4_ports *l4 = parse_l4hdr(c, iph->protocol);

		if (!l4)
			return VERDICT_MALFORMED;
		f->src_port = bpf_ntohs(l4->src);
		f->dst_port = bpf_ntohs(l4->dst);
	}

	if (flags & ADDR_UNICAST) {
		if (!cfg->port_filter)
			return VERDICT_STEER;
		if (has_ports)
			return port_listed(f->proto, f->dst_port) ? VERDICT_STEER : VERDICT_PASS;
		if (iph->protocol == IPPROTO_ICMP && !is_fragment(iph))
			return decide_icmp_error(c);
		return VERDICT_PASS;
	}
	if (flags & ADDR_BROADCAST) {
		if (has_ports && f->proto == IPPROTO_UDP && port_listed(IPPROTO_UDP, f->dst_port))
			return VERDICT_STEER;
	}
	return VERDICT_PASS;
}

/* Loss mode: whether to drop a frame that would be steered. */
static __always_inline int loss_drops(const struct steer_config *cfg)
{
	__u32 zero = 0;
	struct loss_state *st;

	if (!cfg->drop_ppm)
		return 0;
	st = bpf_map_lookup_elem(&loss_states, &zero);
	if (!st) /* cannot happen: a per-CPU array slot always exists */
		return 0;
	return loss_draw(st, cfg->drop_ppm, cfg->loss_seed, cfg->loss_generation,
			 bpf_get_smp_processor_id());
}

/* Stage timing: the time the program saw the frame, in XDP metadata in front of it. A driver
 * without metadata support refuses the adjustment; the frame then goes without. */
static __always_inline void stamp(struct xdp_md *ctx)
{
	__u64 *meta;

	if (bpf_xdp_adjust_meta(ctx, -(int)STEER_STAMP_LEN))
		return;
	meta = (void *)(long)ctx->data_meta;
	if ((void *)(meta + 1) > (void *)(long)ctx->data)
		return;
	*meta = bpf_ktime_get_ns();
}

static __always_inline int steer(struct xdp_md *ctx, const struct steer_config *cfg,
				 const struct flow *f)
{
	__u32 spq = cfg->socks_per_queue ? cfg->socks_per_queue : 1;
	__u32 hash = steer_flow_hash(f->src, f->dst, f->proto, f->src_port, f->dst_port);
	__u32 index = ctx->rx_queue_index * spq + hash % spq;
	long action;

	if (cfg->stamp)
		stamp(ctx);
	action = bpf_redirect_map(&xsks, index, XDP_PASS);

	if (action == XDP_PASS) {
		count(STEER_CTR_NO_SOCKET);
		count(STEER_CTR_PASSED);
	} else {
		count(STEER_CTR_STEERED);
	}
	return action;
}

SEC("xdp")
int xdp_steer(struct xdp_md *ctx)
{
	struct hdr_cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	struct flow f = {};
	__u32 zero = 0;
	struct steer_config *cfg = bpf_map_lookup_elem(&config, &zero);
	enum verdict verdict = VERDICT_PASS;
	int ether_type;

	if (!cfg) /* cannot happen: an array slot always exists */
		goto pass;

	ether_type = parse_ethhdr(&c);
	if (ether_type < 0)
		verdict = VERDICT_MALFORMED;
	else if (ether_type == ETH_P_ARP)
		verdict = decide_arp(&c, cfg, &f);
	else if (ether_type == ETH_P_IP)
		verdict = decide_ipv4(&c, cfg, &f);

	if (verdict == VERDICT_STEER) {
		if (loss_drops(cfg)) {
			count(STEER_CTR_DROPPED);
			return XDP_DROP;
		}
		return steer(ctx, cfg, &f);
	}
	if (verdict == VERDICT_MALFORMED)
		count(STEER_CTR_MALFORMED);
pass:
	count(STEER_CTR_PASSED);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
