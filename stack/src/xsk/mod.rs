//! AF_XDP: the UMEM, its rings and sockets, and the frame pools. **All AF_XDP `unsafe` lives here**,
//! in a few single-purpose files:
//!
//! | file | what |
//! |---|---|
//! | `sys.rs` | `linux/if_xdp.h` constants and structs, thin syscall wrappers |
//! | `mmap.rs` | an owned mapping (UMEM area, socket rings), unmapped on drop |
//! | `ring.rs` | producer/consumer index logic, unit-tested over a fake region without a kernel |
//! | `umem.rs` | [`Umem`]: the frame area and its configuration |
//! | `pool.rs` | [`FramePool`]: per-worker free lists plus a shared global pool |
//! | `batch.rs` | [`RxBatch`]: received frames, owned until recycled |
//! | `socket.rs` | [`XskSocket`]: setup, bind, and the data path |
//! | `account.rs` | [`FrameAccount`]: the no-frame-lost check |
//!
//! # Frame ownership
//!
//! A frame address is in exactly one place at a time: a [`FramePool`] (free), a fill ring, an RX
//! ring or an [`RxBatch`] (receive side), a TX ring or a completion ring (transmit side). Addresses
//! move only through the methods of [`XskSocket`] and [`RxBatch`]; the pool does not hand them out
//! to callers. That invariant is what makes [`RxBatch::frame_mut`] and the buffer given to
//! [`XskSocket::transmit`]'s closure sound, and it is checked by counting:
//! [`FrameAccount::is_balanced`] holds whenever no frame was lost. Nothing here allocates on the data
//! path (batches and pools are sized when created).
//!
//! # Sharing
//!
//! One [`Umem`] serves every socket of a stack. The first socket ([`Share::First`]) registers it and
//! owns the fill and completion rings of its queue. A socket on another (interface, queue)
//! ([`Share::NewQueue`]) gets its own fill and completion rings. Further sockets on an already used
//! queue ([`Share::SameQueue`]) get none: the kernel allows one pair per queue (EINVAL otherwise),
//! so the queue's owner refills and reaps for all of them, and frames migrate between workers
//! through the global pool.
//!
//! # Why our own module (and not a crate)
//!
//! We need, together: one UMEM shared both across queues (each with its own fill/completion rings)
//! and among several sockets on one queue (where only the first owns them); explicit frame-ownership
//! accounting that a test can check; room for TX metadata (checksum offload, `tx_metadata_len` is
//! already in the registration struct); and all `unsafe` in a few small files with `// Safety:`
//! notes. Considered: the `xdp` crate 0.8 (MIT/Apache-2.0), and `xdpilone` (EUPL-1.2, a licence we
//! do not want to mix in). The AF_XDP ABI is small enough that owning it costs less than adapting
//! either to the sharing model above.
//!
//! # Example
//!
//! ```no_run
//! use xdpstack::xsk::{new_shared_pools, RxBatch, Share, SocketConfig, Umem, UmemConfig, XskSocket};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let umem = Umem::new(UmemConfig::default())?;
//! let mut pools = new_shared_pools(&umem, 1)?;
//! let mut sock = XskSocket::new(&umem, 2, 0, &SocketConfig::default(), Share::First)?;
//! let mut batch = RxBatch::new(&umem, 64);
//! sock.refill(&mut pools[0]);
//! sock.recv(&mut batch, 64);
//! for i in 0..batch.len() {
//!     let _frame: &mut [u8] = batch.frame_mut(i);
//! }
//! batch.recycle_into(&mut pools[0]);
//! sock.transmit(&mut pools[0], 1514, |buf| { buf[..60].fill(0); 60 })?;
//! sock.flush()?;
//! sock.reap(&mut pools[0]);
//! # Ok(()) }
//! ```

mod account;
mod batch;
mod error;
mod mmap;
mod pool;
mod ring;
mod socket;
mod sys;
mod umem;

pub use account::FrameAccount;
pub use batch::RxBatch;
pub use error::{TxError, XskError};
pub use pool::{new_shared_pools, new_shared_pools_with, FramePool, PoolConfig};
pub use socket::{BindMode, InFlight, Share, SocketConfig, SocketCounters, XskSocket};
pub(crate) use sys::statistics as sys_statistics;
pub use sys::{monotonic_ns, XdpStatistics, XDP_PACKET_HEADROOM};
pub use umem::{Umem, UmemConfig};
