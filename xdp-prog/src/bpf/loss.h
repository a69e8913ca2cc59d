/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * loss.h: seeded, reproducible frame loss for tests, shared by the steering program's loss mode
 * (steer.bpf.c) and the stand-alone lossy program (lossy.bpf.c).
 *
 * bpf_get_prandom_u32() cannot be seeded, so each CPU draws from its own SplitMix64 stream kept in
 * a per-CPU map (struct loss_state). A stream starts from the configured seed and the CPU id, and
 * restarts whenever the configured seed or generation differs from the one it was started with;
 * user space bumps the generation on every change of the loss settings, so setting the same seed
 * again replays the same pattern. (Comparing the seed too means a draw that read a half-written
 * configuration is followed by a restart with the complete one.) A frame is dropped when the next
 * draw's upper 32 bits r satisfy r / 2^32 < drop_ppm / 10^6: exactly 0 for 0 ppm and 1 for 10^6.
 *
 * Only <linux/types.h> is needed: xdp-prog's tests compile this for the host (steer_host.c) and
 * check the Rust model of the streams (src/loss_model.rs) against it.
 */
#ifndef XDPSTACK_LOSS_H
#define XDPSTACK_LOSS_H

#include <linux/types.h>

#define LOSS_PPM_ONE 1000000U                /* drop_ppm that drops every candidate frame */
#define LOSS_GOLDEN 0x9e3779b97f4a7c15ULL    /* SplitMix64's increment: 2^64 / golden ratio */

/* The value of a per-CPU loss state map (one slot). All zero before the first draw. */
struct loss_state {
	__u64 rng;        /* SplitMix64 state */
	__u64 seed;       /* the configured seed the stream was started from */
	__u32 generation; /* the configured generation it was started at */
	__u32 pad;
};

/* SplitMix64's output function (Steele, Lea, Flood, OOPSLA 2014). */
static inline __attribute__((always_inline)) __u64 loss_mix64(__u64 z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The state a CPU's stream starts from: the seed moved by CPU id steps of the increment, mixed. */
static inline __attribute__((always_inline)) __u64 loss_stream_start(__u64 seed, __u32 cpu)
{
	return loss_mix64(seed + (__u64)cpu * LOSS_GOLDEN);
}

static inline __attribute__((always_inline)) __u32 loss_next32(__u64 *rng)
{
	*rng += LOSS_GOLDEN;
	return (__u32)(loss_mix64(*rng) >> 32);
}

/* r / 2^32 < drop_ppm / 10^6, in exact integer arithmetic. */
static inline __attribute__((always_inline)) int loss_hit(__u32 r, __u32 drop_ppm)
{
	return (__u64)r * LOSS_PPM_ONE < ((__u64)drop_ppm << 32);
}

/* Whether to drop the next candidate frame on CPU `cpu`. With drop_ppm 0 nothing is drawn. */
static inline __attribute__((always_inline)) int
loss_draw(struct loss_state *st, __u32 drop_ppm, __u64 seed, __u32 generation, __u32 cpu)
{
	if (!drop_ppm)
		return 0;
	if (st->generation != generation || st->seed != seed) {
		st->rng = loss_stream_start(seed, cpu);
		st->seed = seed;
		st->generation = generation;
	}
	return loss_hit(loss_next32(&st->rng), drop_ppm);
}

#endif /* XDPSTACK_LOSS_H */
