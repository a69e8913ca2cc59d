//! Async sockets on tokio (cargo feature `tokio`): [`TcpListener`], [`TcpStream`] (`AsyncRead` /
//! `AsyncWrite`) and [`UdpSocket`], shaped like `tokio::net`'s.
//!
//! No polling loop and no timers: every socket already has an eventfd that the workers write when its
//! readiness changes (see `socket/event.rs`), but only while somebody waits on it. An async socket
//! counts as a permanent waiter for as long as it lives, so every notification writes the eventfd, and
//! a duplicate of that eventfd is registered with tokio's reactor through [`AsyncFd`]. An operation
//! tries the non-blocking call; on `WouldBlock` it waits for the eventfd to become readable, clears
//! tokio's readiness, drains the eventfd, and tries again. Clearing before draining before retrying
//! means that a notification can only come after the retry (then it writes the eventfd again and wakes
//! the task) or before it (then the retry sees its effect): none is lost.
//!
//! The one wait that does not go through a socket's eventfd is a full worker command queue on a UDP
//! send (a rare overload of the worker): the task yields to the runtime and tries again.
//!
//! Run-to-completion stacks (`Config::inline`) are refused: nothing would move them while tasks wait.
//! The constructors register with the reactor of the current tokio runtime, so they must be called from
//! within one (as with `tokio::net`).

use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use ::tokio::io::unix::AsyncFd;
use ::tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

use crate::socket::poll::sealed::Source;
use crate::{sys, Stack};

/// Which readiness of the eventfd a waiter uses: readers and writers keep their own waker.
#[derive(Debug, Clone, Copy)]
enum Dir {
    Read,
    Write,
}

/// A socket's eventfd on tokio's reactor, with the socket counted as a waiter while it lives.
#[derive(Debug)]
struct Wakeup {
    fd: AsyncFd<OwnedFd>,
}

impl Wakeup {
    fn new(source: &impl Source) -> io::Result<Wakeup> {
        if source.stack().is_inline() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the tokio integration needs worker threads; start the stack without `inline`",
            ));
        }
        let fd = source.event().fd()?.try_clone_to_owned()?;
        // Edge-triggered on both interests: every write of the eventfd reports it readable and writable.
        let fd = sys::async_fd(fd, Interest::READABLE | Interest::WRITABLE)?;
        // From now on every notify writes the eventfd (undone in `release`).
        source.event().register();
        Ok(Wakeup { fd })
    }

    /// Run `op` until it does not say `WouldBlock`, sleeping on the eventfd in between.
    fn poll_op<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Dir,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return Poll::Ready(r),
            }
            let mut guard = match dir {
                Dir::Read => ready!(self.fd.poll_read_ready(cx))?,
                Dir::Write => ready!(self.fd.poll_write_ready(cx))?,
            };
            guard.clear_ready();
            self.drain();
        }
    }

    /// As [`Wakeup::poll_op`], as a future.
    async fn op<R>(&self, mut op: impl FnMut() -> io::Result<R>) -> io::Result<R> {
        loop {
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return r,
            }
            let mut guard = self.fd.readable().await?;
            guard.clear_ready();
            self.drain();
        }
    }

    /// Consume pending signals (the duplicate shares the eventfd's counter).
    fn drain(&self) {
        // Nothing pending (EAGAIN) is as good as drained.
        let _ = sys::eventfd_read(self.fd.get_ref().as_fd());
    }

    fn release(&self, source: &impl Source) {
        source.event().unregister();
    }
}

/// An async TCP listener.
#[derive(Debug)]
pub struct TcpListener {
    inner: crate::TcpListener,
    wakeup: Wakeup,
}

impl TcpListener {
    /// Bind and listen (the default backlog). Waits briefly for the workers to take the listener.
    pub fn bind(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        TcpListener::from_std(crate::TcpListener::bind(stack, addr)?)
    }

    /// Wrap a listener (made non-blocking).
    pub fn from_std(inner: crate::TcpListener) -> io::Result<TcpListener> {
        inner.set_nonblocking(true)?;
        let wakeup = Wakeup::new(&inner)?;
        Ok(TcpListener { inner, wakeup })
    }

    /// Accept a connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, peer) = self.wakeup.op(|| self.inner.accept()).await?;
        Ok((TcpStream::from_std(s)?, peer))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        self.wakeup.release(&self.inner);
    }
}

/// An async TCP connection: `AsyncRead` + `AsyncWrite` (`poll_shutdown` sends our FIN).
#[derive(Debug)]
pub struct TcpStream {
    inner: crate::TcpStream,
    wakeup: Wakeup,
}

impl TcpStream {
    /// Connect to `addr` (the SYN leaves at once; the future completes when the handshake does).
    pub async fn connect(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let inner = crate::TcpSocket::new(stack).start_connect(addr)?;
        inner.set_nonblocking(true)?;
        let wakeup = Wakeup::new(&inner)?;
        let stream = TcpStream { inner, wakeup };
        let status =
            || stream.inner.connect_status().unwrap_or_else(|| Err(io::ErrorKind::WouldBlock.into()));
        stream.wakeup.op(status).await?;
        Ok(stream)
    }

    /// Wrap a connection (made non-blocking).
    pub fn from_std(inner: crate::TcpStream) -> io::Result<TcpStream> {
        inner.set_nonblocking(true)?;
        let wakeup = Wakeup::new(&inner)?;
        Ok(TcpStream { inner, wakeup })
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Our address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// TCP_NODELAY.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on)
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let (inner, wakeup) = (&mut this.inner, &this.wakeup);
        let n = ready!(wakeup.poll_op(cx, Dir::Read, || {
            use std::io::Read;
            inner.read(buf.initialize_unfilled())
        }))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let (inner, wakeup) = (&mut this.inner, &this.wakeup);
        wakeup.poll_op(cx, Dir::Write, || {
            use std::io::Write;
            inner.write(data)
        })
    }

    /// Bytes go to the stack as they are written: nothing to flush.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner.shutdown(std::net::Shutdown::Write))
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        self.wakeup.release(&self.inner);
    }
}

/// An async UDP socket.
#[derive(Debug)]
pub struct UdpSocket {
    inner: crate::UdpSocket,
    wakeup: Wakeup,
}

impl UdpSocket {
    /// Bind to `addr` (waits briefly for the workers to take the socket).
    pub fn bind(stack: &Stack, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        UdpSocket::from_std(crate::UdpSocket::bind(stack, addr)?)
    }

    /// Wrap a socket (made non-blocking).
    pub fn from_std(inner: crate::UdpSocket) -> io::Result<UdpSocket> {
        inner.set_nonblocking(true)?;
        let wakeup = Wakeup::new(&inner)?;
        Ok(UdpSocket { inner, wakeup })
    }

    /// Receive one datagram.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.wakeup.op(|| self.inner.recv_from(buf)).await
    }

    /// Send one datagram. A full worker queue (overload) makes the task yield and try again.
    pub async fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let dst = crate::socket::first_v4(addr)?;
        loop {
            match self.inner.send_to(buf, dst) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => YieldNow(false).await,
                r => return r,
            }
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        self.wakeup.release(&self.inner);
    }
}

/// Give the runtime one turn (wake ourselves, return pending once).
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
