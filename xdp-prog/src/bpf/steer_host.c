// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * The headers shared with Rust (steer.h, loss.h, lossy.h) compiled for the host by build.rs; not
 * part of any XDP program. xdp-prog's unit tests call these to check that the Rust side
 * (constants, struct layouts, flow hash, the model of the loss streams) agrees with the headers
 * the XDP programs are built from.
 */
#include <stddef.h>

#include "loss.h"
#include "lossy.h"
#include "steer.h"

__u32 steer_host_flow_hash(__u32 src, __u32 dst, __u8 proto, __u16 src_port, __u16 dst_port)
{
	return steer_flow_hash(src, dst, proto, src_port, dst_port);
}

int loss_host_draw(struct loss_state *st, __u32 drop_ppm, __u64 seed, __u32 generation, __u32 cpu)
{
	return loss_draw(st, drop_ppm, seed, generation, cpu);
}

struct steer_host_fact {
	const char *name;
	unsigned long long value;
};

#define FACT(x) { #x, (unsigned long long)(x) }

/* Every fact of steer.h the Rust side relies on, ended by a NULL name. */
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
	FACT(STEER_CTR_DROPPED),
	FACT(STEER_CTR_COUNT),
	FACT(sizeof(struct port_key)),
	FACT(offsetof(struct port_key, port)),
	FACT(offsetof(struct port_key, proto)),
	FACT(offsetof(struct port_key, pad)),
	FACT(sizeof(struct steer_config)),
	FACT(offsetof(struct steer_config, port_filter)),
	FACT(offsetof(struct steer_config, socks_per_queue)),
	FACT(offsetof(struct steer_config, drop_ppm)),
	FACT(offsetof(struct steer_config, loss_generation)),
	FACT(offsetof(struct steer_config, loss_seed)),
	FACT(offsetof(struct steer_config, stamp)),
	FACT(STEER_STAMP_LEN),
	{ NULL, 0 },
};

/* Every fact of loss.h and lossy.h the Rust side relies on, ended by a NULL name. */
const struct steer_host_fact loss_host_facts[] = {
	FACT(LOSS_PPM_ONE),
	FACT(sizeof(struct loss_state)),
	FACT(offsetof(struct loss_state, rng)),
	FACT(offsetof(struct loss_state, seed)),
	FACT(offsetof(struct loss_state, generation)),
	FACT(LOSSY_MATCH_PROTOCOL),
	FACT(LOSSY_MATCH_SRC),
	FACT(LOSSY_CTR_DROPPED),
	FACT(LOSSY_CTR_PASSED),
	FACT(LOSSY_CTR_UNMATCHED),
	FACT(LOSSY_CTR_COUNT),
	FACT(sizeof(struct lossy_config)),
	FACT(offsetof(struct lossy_config, drop_ppm)),
	FACT(offsetof(struct lossy_config, generation)),
	FACT(offsetof(struct lossy_config, seed)),
	FACT(offsetof(struct lossy_config, src)),
	FACT(offsetof(struct lossy_config, protocol)),
	FACT(offsetof(struct lossy_config, match_flags)),
	FACT(offsetof(struct lossy_config, pad)),
	{ NULL, 0 },
};
