//! Initial sequence numbers (RFC 6528) and SYN cookies (RFC 4987 §3.6).
//!
//! Both are keyed hashes of the connection's 4-tuple under a secret drawn once from the kernel, with
//! time supplied by the caller: nothing here reads a clock.
//!
//! - [`IsnGenerator`]: `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)`, RFC 6528 §3,
//!   with `M` a timer ticking every 4 microseconds and `F` SipHash-2-4 truncated to 32 bits.
//! - [`SynCookies`]: a listener under SYN flood answers with a SYN-ACK whose ISN encodes what it needs to
//!   rebuild the connection from the final ACK, and keeps no state. See [`SynCookies`] for the layout.
//! - [`encode_ts_options`] / [`decode_ts_options`]: the options a cookie has no room for (window scale,
//!   SACK-permitted) ride in the low bits of our timestamp value and come back in the client's echo.

use std::fmt;
use std::net::SocketAddrV4;

use siphasher::sip::SipHasher24;

use crate::wire::TcpSeqNumber;

/// The 4-tuple as hash input: local address and port, remote address and port, network byte order.
fn tuple_bytes(local: SocketAddrV4, remote: SocketAddrV4) -> [u8; 12] {
    let mut b = [0; 12];
    b[0..4].copy_from_slice(&local.ip().octets());
    b[4..6].copy_from_slice(&local.port().to_be_bytes());
    b[6..10].copy_from_slice(&remote.ip().octets());
    b[10..12].copy_from_slice(&remote.port().to_be_bytes());
    b
}

/// A 128-bit key from the kernel's random source.
fn secret_from_entropy() -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&crate::rand::secret_u64().to_ne_bytes());
    key[8..].copy_from_slice(&crate::rand::secret_u64().to_ne_bytes());
    key
}

/// Chooses initial sequence numbers for active opens and for listeners that are not using cookies.
pub struct IsnGenerator {
    key: SipHasher24,
}

impl IsnGenerator {
    /// A generator keyed with `secret` (tests use a fixed one; the stack uses [`from_entropy`](Self::from_entropy)).
    pub fn new(secret: [u8; 16]) -> IsnGenerator {
        IsnGenerator { key: SipHasher24::new_with_key(&secret) }
    }

    /// A generator keyed from getrandom(2).
    pub fn from_entropy() -> IsnGenerator {
        IsnGenerator::new(secret_from_entropy())
    }

    /// The ISN for a connection from `local` to `remote` at time `clock_us` (microseconds on any
    /// monotonic clock; only differences matter). RFC 6528 §3: `ISN = M + F(...)`, `M = clock_us / 4`
    /// modulo 2^32 (it wraps every 4.77 hours), `F` = SipHash-2-4 of the 4-tuple, low 32 bits.
    pub fn isn(&self, clock_us: u64, local: SocketAddrV4, remote: SocketAddrV4) -> TcpSeqNumber {
        let m = (clock_us / 4) as u32;
        let f = self.key.hash(&tuple_bytes(local, remote)) as u32;
        TcpSeqNumber(m.wrapping_add(f))
    }

    /// The offset of a connection's timestamp clock (RFC 7323 §7.1): SipHash-2-4 of the 4-tuple
    /// and a tag, so unrelated connections' TSvals reveal nothing about each other's, while every
    /// incarnation of one 4-tuple uses the same offset on the same clock, and its TSvals keep
    /// growing from one connection to the next (which RFC 6191 needs to reopen a 4-tuple that is in
    /// TIME-WAIT).
    pub fn ts_offset(&self, local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
        let mut b = [0u8; 13];
        b[..12].copy_from_slice(&tuple_bytes(local, remote));
        b[12] = b'T';
        self.key.hash(&b) as u32
    }
}

impl fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IsnGenerator { .. }") // never print the secret
    }
}

/// Seconds per tick of the cookie time counter.
pub const COOKIE_TICK_SECS: u64 = 64;

/// How many ticks before the current one a cookie is still accepted from: a cookie made in tick `t`
/// checks out in ticks `t` and `t + 1`, so it lives at least 64 and at most 128 seconds.
pub const COOKIE_MAX_AGE: u32 = 1;

/// The MSS values a cookie can carry (3 bits): the IPv4 default, common tunnel and PPPoE sizes,
/// Ethernet, and 9000-byte jumbo frames.
pub const COOKIE_MSS: [u16; 8] = [536, 1220, 1360, 1400, 1440, 1452, 1460, 8960];

const TIME_SHIFT: u32 = 27;
const MSS_SHIFT: u32 = 24;
const MAC_MASK: u32 = (1 << MSS_SHIFT) - 1;

/// SYN cookies: the listener's ISN when it keeps no state for a SYN (RFC 4987 §3.6).
///
/// Layout of the 32-bit cookie (the layout RFC 4987 §3.6 describes):
///
/// ```text
///  31      27 26  24 23                                              0
/// +----------+------+-------------------------------------------------+
/// | t mod 32 | mss  | MAC: 24 bits of SipHash-2-4 over (local, remote, |
/// |  5 bits  | idx  | client ISN, t, mss idx) under the cookie secret  |
/// +----------+------+-------------------------------------------------+
/// ```
///
/// `t` is a tick of [`COOKIE_TICK_SECS`] seconds ([`tick`](Self::tick)); the MAC covers the whole `t`, so a
/// cookie 32 ticks old does not pass for a current one. `mss idx` indexes [`COOKIE_MSS`]. A forged
/// cookie passes with probability `(COOKIE_MAX_AGE + 1) / 32 * 2^-24`, about 4 in 10^9.
///
/// Use: on a SYN, `make` the ISN of the SYN-ACK. On the final ACK, `check` with the client ISN
/// `seq - 1` and the cookie `ack - 1`; `Some(mss)` means the handshake is genuine and recent.
pub struct SynCookies {
    key: SipHasher24,
}

impl SynCookies {
    /// Cookies keyed with `secret` (use a different secret from the [`IsnGenerator`]'s).
    pub fn new(secret: [u8; 16]) -> SynCookies {
        SynCookies { key: SipHasher24::new_with_key(&secret) }
    }

    /// Cookies keyed from getrandom(2).
    pub fn from_entropy() -> SynCookies {
        SynCookies::new(secret_from_entropy())
    }

    /// The tick of a time in microseconds (the same clock as [`IsnGenerator::isn`] will do).
    pub fn tick(clock_us: u64) -> u32 {
        (clock_us / (COOKIE_TICK_SECS * 1_000_000)) as u32
    }

    /// The index of the largest table MSS not above `client_mss` (0, that is 536, when all are above:
    /// the connection then uses 536 bytes, as Linux does). A SYN without an MSS option means 536
    /// (RFC 9293 §3.7.1).
    fn mss_index(client_mss: u16) -> usize {
        COOKIE_MSS.iter().rposition(|&m| m <= client_mss).unwrap_or(0)
    }

    fn mac(
        &self,
        tick: u32,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        client_isn: TcpSeqNumber,
        mss: u32,
    ) -> u32 {
        let mut input = [0; 21];
        input[..12].copy_from_slice(&tuple_bytes(local, remote));
        input[12..16].copy_from_slice(&client_isn.0.to_be_bytes());
        input[16..20].copy_from_slice(&tick.to_be_bytes());
        input[20] = mss as u8;
        self.key.hash(&input) as u32 & MAC_MASK
    }

    /// The cookie (our ISN) for a SYN from `remote` to `local` carrying `client_isn` and `client_mss`, in
    /// tick `tick`.
    pub fn make(
        &self,
        tick: u32,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        client_isn: TcpSeqNumber,
        client_mss: u16,
    ) -> TcpSeqNumber {
        let mss = Self::mss_index(client_mss) as u32;
        let mac = self.mac(tick, local, remote, client_isn, mss);
        TcpSeqNumber(((tick & 31) << TIME_SHIFT) | (mss << MSS_SHIFT) | mac)
    }

    /// The MSS encoded in `cookie` if it was made by [`make`](Self::make) for this tuple and client ISN
    /// in tick `now_tick` or up to [`COOKIE_MAX_AGE`] ticks before; `None` otherwise.
    pub fn check(
        &self,
        now_tick: u32,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        client_isn: TcpSeqNumber,
        cookie: TcpSeqNumber,
    ) -> Option<u16> {
        let age = now_tick.wrapping_sub(cookie.0 >> TIME_SHIFT) & 31;
        if age > COOKIE_MAX_AGE {
            return None;
        }
        let mss = (cookie.0 >> MSS_SHIFT) & 7;
        let mac = self.mac(now_tick.wrapping_sub(age), local, remote, client_isn, mss);
        (cookie.0 & MAC_MASK == mac).then(|| COOKIE_MSS[mss as usize])
    }
}

impl fmt::Debug for SynCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SynCookies { .. }") // never print the secret
    }
}

/// Low bits of a timestamp value that carry options: 4 bits of window scale, 1 bit of SACK-permitted.
const TS_OPTION_BITS: u32 = 5;
const TS_WSCALE_NONE: u32 = 0xf;
const TS_SACK: u32 = 1 << 4;

/// A timestamp value for a cookie SYN-ACK that carries the client's window scale (`None` when it sent
/// none; shifts above 14 count as 14, RFC 7323 §2.3) and SACK-permitted (RFC 2018) in its low 5 bits.
///
/// The result is at most 31 below `tsval` and never above it (modulo 2^32), so our timestamps do not run
/// ahead of the clock. Only usable when the client's SYN carried a timestamp; its ACK then echoes the
/// value, and [`decode_ts_options`] reads the options back. The MAC does not cover them: a client can
/// only change the options of its own connection.
pub fn encode_ts_options(tsval: u32, wscale: Option<u8>, sack: bool) -> u32 {
    let mask = (1 << TS_OPTION_BITS) - 1;
    let wscale = wscale.map_or(TS_WSCALE_NONE, |s| u32::from(s.min(14)));
    let options = wscale | if sack { TS_SACK } else { 0 };
    let ts = (tsval & !mask) | options;
    if (ts.wrapping_sub(tsval) as i32) > 0 {
        ts.wrapping_sub(1 << TS_OPTION_BITS)
    } else {
        ts
    }
}

/// The window scale and SACK-permitted that [`encode_ts_options`] put into the echoed timestamp `tsecr`.
pub fn decode_ts_options(tsecr: u32) -> (Option<u8>, bool) {
    let wscale = tsecr & 0xf;
    ((wscale != TS_WSCALE_NONE).then_some(wscale as u8), tsecr & TS_SACK != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::Rng;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const LOCAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 80);
    const REMOTE: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 40000);
    const CLIENT_ISN: TcpSeqNumber = TcpSeqNumber(0x1234_5678);

    fn addr(ip: u32, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(ip), port)
    }

    #[test]
    fn isns_differ_per_tuple_and_secret() {
        let gen = IsnGenerator::new([7; 16]);
        let t = 123_456_789;
        let base = gen.isn(t, LOCAL, REMOTE);
        let others = [
            gen.isn(t, addr(0x0a00_0003, 80), REMOTE),
            gen.isn(t, addr(0x0a00_0001, 81), REMOTE),
            gen.isn(t, LOCAL, addr(0x0a00_0003, 40000)),
            gen.isn(t, LOCAL, addr(0x0a00_0002, 40001)),
            gen.isn(t, REMOTE, LOCAL),
            IsnGenerator::new([8; 16]).isn(t, LOCAL, REMOTE),
        ];
        for (i, isn) in others.iter().enumerate() {
            assert_ne!(*isn, base, "variant {i}");
        }
        assert_eq!(gen.isn(t, LOCAL, REMOTE), base, "same inputs, same ISN");
    }

    #[test]
    fn timestamp_offsets_differ_per_tuple_and_from_the_isn() {
        let g = IsnGenerator::new([7; 16]);
        let (a, b, c) = (addr(0x0a000001, 80), addr(0x0a000002, 40000), addr(0x0a000002, 40001));
        assert_eq!(g.ts_offset(a, b), g.ts_offset(a, b));
        assert_ne!(g.ts_offset(a, b), g.ts_offset(a, c));
        assert_ne!(g.ts_offset(a, b), g.isn(0, a, b).0);
    }

    #[test]
    fn isn_advances_one_per_4_microseconds() {
        let gen = IsnGenerator::new([7; 16]);
        let t = 4 * 1_000_000;
        let isn = gen.isn(t, LOCAL, REMOTE);
        assert_eq!(gen.isn(t + 3, LOCAL, REMOTE), isn);
        assert_eq!(gen.isn(t + 4, LOCAL, REMOTE) - isn, 1);
        assert_eq!(gen.isn(t + 4_000_000, LOCAL, REMOTE) - isn, 1_000_000);
        assert!(gen.isn(t + 4_000_000, LOCAL, REMOTE) > isn);
    }

    #[test]
    fn isn_wraps_cleanly() {
        let gen = IsnGenerator::new([7; 16]);
        // M wraps from 2^32 - 5 to 5 between these two times.
        let before = 4 * ((1u64 << 32) - 5);
        let (a, b) = (gen.isn(before, LOCAL, REMOTE), gen.isn(before + 40, LOCAL, REMOTE));
        assert_eq!(b - a, 10);
        assert!(b > a);
        // The timer is taken modulo 2^32 ticks: 4.77 hours later, the same ISN.
        assert_eq!(gen.isn(12345 + (4 << 32), LOCAL, REMOTE), gen.isn(12345, LOCAL, REMOTE));
        assert_eq!(gen.isn(u64::MAX, LOCAL, REMOTE) - gen.isn(u64::MAX - 4, LOCAL, REMOTE), 1);
    }

    #[test]
    fn cookie_carries_the_largest_table_mss_not_above_the_clients() {
        let c = SynCookies::new([1; 16]);
        for (client, expect) in [
            (1460, 1460),
            (1500, 1460),
            (1459, 1452),
            (9000, 8960),
            (8959, 1460),
            (1220, 1220),
            (1000, 536),
            (536, 536),
            (100, 536),
            (u16::MAX, 8960),
        ] {
            let cookie = c.make(1000, LOCAL, REMOTE, CLIENT_ISN, client);
            assert_eq!(c.check(1000, LOCAL, REMOTE, CLIENT_ISN, cookie), Some(expect), "client MSS {client}");
        }
    }

    #[test]
    fn cookie_lives_for_the_current_and_the_previous_tick() {
        let c = SynCookies::new([1; 16]);
        for made in [0, 31, 1000, u32::MAX] {
            let cookie = c.make(made, LOCAL, REMOTE, CLIENT_ISN, 1460);
            let at = |now: u32| c.check(now, LOCAL, REMOTE, CLIENT_ISN, cookie);
            assert_eq!(at(made), Some(1460));
            assert_eq!(at(made.wrapping_add(1)), Some(1460));
            assert_eq!(at(made.wrapping_add(2)), None, "too old");
            assert_eq!(at(made.wrapping_add(32)), None, "same low bits, 32 ticks later");
            assert_eq!(at(made.wrapping_add(33)), None);
            assert_eq!(at(made.wrapping_sub(1)), None, "from the future");
        }
        // From tick to tick counts as the clock runs: 64 s per tick.
        assert_eq!(SynCookies::tick(63_999_999), 0);
        assert_eq!(SynCookies::tick(64_000_000), 1);
    }

    #[test]
    fn tampered_cookies_are_rejected() {
        let c = SynCookies::new([1; 16]);
        let cookie = c.make(500, LOCAL, REMOTE, CLIENT_ISN, 1460);
        let check = |local, remote, isn, cookie| c.check(500, local, remote, isn, cookie);
        assert_eq!(check(LOCAL, REMOTE, CLIENT_ISN, cookie), Some(1460));
        assert_eq!(check(addr(0x0a00_0009, 80), REMOTE, CLIENT_ISN, cookie), None);
        assert_eq!(check(addr(0x0a00_0001, 8080), REMOTE, CLIENT_ISN, cookie), None);
        assert_eq!(check(LOCAL, addr(0x0a00_0009, 40000), CLIENT_ISN, cookie), None);
        assert_eq!(check(LOCAL, addr(0x0a00_0002, 40001), CLIENT_ISN, cookie), None);
        assert_eq!(check(REMOTE, LOCAL, CLIENT_ISN, cookie), None);
        assert_eq!(check(LOCAL, REMOTE, CLIENT_ISN + 1, cookie), None);
        assert_eq!(SynCookies::new([2; 16]).check(500, LOCAL, REMOTE, CLIENT_ISN, cookie), None);
        for bit in 0..32 {
            let flipped = TcpSeqNumber(cookie.0 ^ (1 << bit));
            assert_eq!(check(LOCAL, REMOTE, CLIENT_ISN, flipped), None, "bit {bit} flipped");
        }
    }

    /// A forged cookie passes only if its time bits fall in the window (2 of 32 values) and its 24-bit
    /// MAC matches: p = 2/32 * 2^-24 ≈ 3.7e-9 a try, so 100,000 tries pass with probability ≈ 4e-4. The
    /// seed is fixed, so the test is deterministic; one with a broken MAC check would accept thousands.
    #[test]
    fn random_cookies_are_rejected() {
        let c = SynCookies::new([3; 16]);
        let mut rng = Rng::with_seed(42);
        let (mut timely, mut accepted) = (0, 0);
        for _ in 0..100_000 {
            let cookie = TcpSeqNumber(rng.next_u64() as u32);
            timely += u32::from(7u32.wrapping_sub(cookie.0 >> TIME_SHIFT) & 31 <= COOKIE_MAX_AGE);
            accepted += u32::from(c.check(7, LOCAL, REMOTE, CLIENT_ISN, cookie).is_some());
        }
        assert!(timely > 5000, "about 1 in 16 random cookies has a current time counter: {timely}");
        assert_eq!(accepted, 0);
    }

    proptest! {
        #[test]
        fn cookies_check_out_only_for_their_own_handshake(
            secret: [u8; 16],
            local_ip: u32, local_port: u16, remote_ip: u32, remote_port: u16,
            isn: u32, client_mss: u16, tick: u32, age in 0..=COOKIE_MAX_AGE,
            which in 0..6usize, delta in 1..u32::MAX,
        ) {
            let c = SynCookies::new(secret);
            let (local, remote, isn) = (addr(local_ip, local_port), addr(remote_ip, remote_port), TcpSeqNumber(isn));
            let cookie = c.make(tick, local, remote, isn, client_mss);
            let now = tick.wrapping_add(age);
            let mss = c.check(now, local, remote, isn, cookie);
            // The largest table entry not above the client's MSS (the smallest if all are above).
            let i = COOKIE_MSS.iter().position(|&m| Some(m) == mss);
            prop_assert!(i.is_some(), "{:?} is not a table entry", mss);
            let i = i.unwrap_or(0);
            prop_assert!(COOKIE_MSS[i] <= client_mss || i == 0);
            prop_assert!(COOKIE_MSS.get(i + 1).is_none_or(|&next| next > client_mss));
            // Change one input and the cookie is worthless.
            let (mut l, mut r, mut i, mut k) = (local, remote, isn, cookie);
            match which {
                0 => l.set_ip(Ipv4Addr::from(local_ip ^ delta)),
                1 => l.set_port(local_port ^ (delta as u16 | 1)),
                2 => r.set_ip(Ipv4Addr::from(remote_ip ^ delta)),
                3 => r.set_port(remote_port ^ (delta as u16 | 1)),
                4 => i = TcpSeqNumber(isn.0 ^ delta),
                _ => k = TcpSeqNumber(cookie.0 ^ delta),
            }
            prop_assert_eq!(c.check(now, l, r, i, k), None);
        }

        #[test]
        fn timestamp_options_round_trip(tsval: u32, wscale in proptest::option::of(0u8..=20), sack: bool) {
            let ts = encode_ts_options(tsval, wscale, sack);
            prop_assert_eq!(decode_ts_options(ts), (wscale.map(|s| s.min(14)), sack));
            prop_assert!(tsval.wrapping_sub(ts) < 32, "{ts} is not just below {tsval}");
        }
    }
}
