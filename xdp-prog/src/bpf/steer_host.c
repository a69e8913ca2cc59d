// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * steer.h compiled for the host (by build.rs), not part of the XDP program. xdp-prog's unit tests
 * call these to check that the Rust mirror of steer.h (constants, struct layouts, flow hash) agrees
 * with the header the XDP program is built from.
 */
#include <stddef.h>

#include "steer.h"

__u32 steer_host_flow_hash(__u32 src, __u32 dst, __u8 proto, __u16 src_port, __u16 dst_port)
{
	return steer_flow_hash(src, dst, proto, src_port, dst_port);
}

struct steer_host_fact {
	const char *name;
	unsigned long long value;
};

#define FACT(x) { #x, (unsigned long long)(x) }

/* Every fact the Rust side relies on, ended by a NULL name. */
const struct steer_host_fact steer_host_facts[] = {
	FACT(STEER_XSKMAP_SIZE),
	FACT(ADDR_UNICAST),
	FACT(ADDR_BROADCAST),
	FACT(STEER_PROTO_TCP),
	FACT(STEER_PROTO_UDP),
	FACT(STEER_CTR_STEERED),
	FACT(STEER_CTR_PASSED),
	FACT(STEER_CTR_MALFORMED),
	FACT(STEER_CTR_NO_SOCKET),
	FACT(STEER_CTR_COUNT),
	FACT(sizeof(struct port_key)),
	FACT(offsetof(struct port_key, port)),
	FACT(offsetof(struct port_key, proto)),
	FACT(offsetof(struct port_key, pad)),
	FACT(sizeof(struct steer_config)),
	FACT(offsetof(struct steer_config, port_filter)),
	FACT(offsetof(struct steer_config, socks_per_queue)),
	{ NULL, 0 },
};
