// Package udp runs an ike.Engine over UDP sockets: port 500 carries plain
// IKE, port 4500 carries IKE behind the 4-byte non-ESP marker (RFC 3948 §2.2)
// next to UDP-encapsulated ESP, which the kernel consumes when the socket has
// UDP_ENCAP_ESPINUDP set.
package udp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
)

// Listener describes one socket to open.
type Listener struct {
	Addr netip.AddrPort
	// NATT marks a NAT-T socket (non-ESP marker on IKE messages).
	NATT bool
	// EncapESP asks the kernel to decapsulate ESP-in-UDP on this socket
	// (UDP_ENCAP_ESPINUDP). Failure is logged, not fatal: kernels without
	// ESP still run IKE.
	EncapESP bool
	// ReceiveBuffer is the socket receive buffer in bytes: 0 means
	// DefaultReceiveBuffer, negative leaves the kernel default.
	ReceiveBuffer int
}

// DefaultReceiveBuffer holds a burst of a few thousand IKE datagrams: with
// the kernel default (~208 KiB, a few hundred small datagrams on loopback)
// a burst of IKE_SA_INIT requests overflows the queue and every loss costs
// the peer a retransmission timeout.
const DefaultReceiveBuffer = 4 << 20

// DefaultListeners are UDP 500 and 4500 on addr.
func DefaultListeners(addr netip.Addr) []Listener {
	return []Listener{
		{Addr: netip.AddrPortFrom(addr, ike.PortIKE)},
		{Addr: netip.AddrPortFrom(addr, ike.PortNATT), NATT: true, EncapESP: true},
	}
}

type socket struct {
	conn  *net.UDPConn
	raw   syscall.RawConn // conn's, for receive
	local netip.AddrPort
	natt  bool
}

// Runner owns the sockets of one engine.
type Runner struct {
	log     *slog.Logger
	sockets []*socket
	wake    chan struct{}
	// TickInterval bounds the timer resolution; timers due earlier than the
	// engine's NextTimer are never delayed by more than this.
	TickInterval time.Duration
	// Readers is the number of receive goroutines per socket (1); more let
	// an engine that works outside its lock use several cores.
	Readers int
	bufPool sync.Pool
}

// Listen opens the sockets.
func Listen(log *slog.Logger, ls []Listener) (*Runner, error) {
	if log == nil {
		log = slog.Default()
	}
	r := &Runner{log: log, wake: make(chan struct{}, 1), TickInterval: 100 * time.Millisecond}
	r.bufPool.New = func() any { b := make([]byte, 65536); return &b }
	for _, l := range ls {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(l.Addr))
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("listen IKE %v: %w", l.Addr, err)
		}
		if l.ReceiveBuffer >= 0 {
			size := l.ReceiveBuffer
			if size == 0 {
				size = DefaultReceiveBuffer
			}
			if err := setReceiveBuffer(c, size); err != nil {
				log.Warn("cannot size IKE socket receive buffer", "addr", l.Addr, "bytes", size, "err", err)
			}
		}
		if l.EncapESP {
			if err := setEncap(c); err != nil {
				log.Warn("ESP-in-UDP decapsulation unavailable on this socket", "addr", l.Addr, "err", err)
			}
		}
		local := c.LocalAddr().(*net.UDPAddr).AddrPort()
		raw, err := c.SyscallConn()
		if err != nil {
			c.Close()
			r.Close()
			return nil, fmt.Errorf("listen IKE %v: %w", l.Addr, err)
		}
		r.sockets = append(r.sockets, &socket{conn: c, raw: raw, local: netip.AddrPortFrom(local.Addr().Unmap(), local.Port()), natt: l.NATT})
	}
	return r, nil
}

func setEncap(c *net.UDPConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	const solUDP, udpEncap, udpEncapESPInUDP = 17, 100, 2
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), solUDP, udpEncap, udpEncapESPInUDP)
	}); err != nil {
		return err
	}
	return serr
}

// setReceiveBuffer asks for size bytes: SO_RCVBUFFORCE (CAP_NET_ADMIN)
// passes net.core.rmem_max, plain SO_RCVBUF is capped by it.
func setReceiveBuffer(c *net.UDPConn, size int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, size); serr != nil {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		}
	}); err != nil {
		return err
	}
	return serr
}

// LocalAddrs are the bound addresses (useful with port 0 in tests).
func (r *Runner) LocalAddrs() []netip.AddrPort {
	out := make([]netip.AddrPort, len(r.sockets))
	for i, s := range r.sockets {
		out[i] = s.local
	}
	return out
}

// Close closes every socket.
func (r *Runner) Close() error {
	var errs []error
	for _, s := range r.sockets {
		errs = append(errs, s.conn.Close())
	}
	return errors.Join(errs...)
}

func (r *Runner) socketFor(local netip.AddrPort) *socket {
	var byPort *socket
	for _, s := range r.sockets {
		if s.local == local {
			return s
		}
		if s.local.Port() == local.Port() && (byPort == nil || s.local.Addr().IsUnspecified()) {
			byPort = s
		}
	}
	return byPort
}

// Send implements ike.Sender. A one-byte 0xFF datagram is a NAT-T keepalive
// (RFC 3948 §2.3) and goes out without the non-ESP marker.
func (r *Runner) Send(d ike.Datagram) error {
	s := r.socketFor(d.Local)
	if s == nil {
		return fmt.Errorf("send IKE to %v: no socket for local %v", d.Remote, d.Local)
	}
	data := d.Data
	if s.natt && !(len(data) == 1 && data[0] == 0xff) {
		bp := r.bufPool.Get().(*[]byte)
		defer r.bufPool.Put(bp)
		buf := append((*bp)[:0], 0, 0, 0, 0)
		data = append(buf, data...)
	}
	if _, err := s.conn.WriteToUDPAddrPort(data, d.Remote); err != nil {
		return fmt.Errorf("send IKE to %v: %w", d.Remote, err)
	}
	return nil
}

// Run feeds received datagrams and timer ticks to eng until ctx ends.
func (r *Runner) Run(ctx context.Context, eng ike.Engine) error {
	var wg sync.WaitGroup
	for _, s := range r.sockets {
		for i := 0; i < max(1, r.Readers); i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.readLoop(ctx, s, eng)
			}()
		}
	}
	stop := context.AfterFunc(ctx, func() {
		for _, s := range r.sockets {
			s.conn.SetReadDeadline(time.Unix(1, 0))
		}
	})
	defer stop()
	t := time.NewTimer(r.TickInterval)
	defer t.Stop()
	for {
		next := r.TickInterval
		if at, ok := eng.NextTimer(); ok {
			if d := time.Until(at); d < next {
				next = max(d, time.Millisecond)
			}
		}
		t.Reset(next)
		select {
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		case <-r.wake:
		case now := <-t.C:
			eng.Tick(now)
		}
	}
}

// receive reads one datagram of s into a buffer from the pool, which it
// takes only once the socket is readable: a reader waiting for traffic
// holds no buffer. (A daemon has a listener per local address, two sockets
// each; with one address per tunnel, a 64 KiB buffer per idle reader was
// most of its memory per tunnel.) The caller returns *bp to the pool.
func (r *Runner) receive(s *socket) (bp *[]byte, n int, from netip.AddrPort, err error) {
	var rerr error
	err = s.raw.Read(func(fd uintptr) bool {
		bp = r.bufPool.Get().(*[]byte)
		var sa syscall.Sockaddr
		n, sa, rerr = syscall.Recvfrom(int(fd), *bp, syscall.MSG_DONTWAIT)
		if rerr == syscall.EAGAIN || rerr == syscall.EINTR {
			r.bufPool.Put(bp)
			bp = nil
			return false // wait until readable again
		}
		if rerr == nil {
			from = addrPortOf(sa)
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		if bp != nil {
			r.bufPool.Put(bp)
		}
		return nil, 0, netip.AddrPort{}, err
	}
	return bp, n, from, nil
}

// addrPortOf is the address and port of an AF_INET or AF_INET6 sockaddr.
func addrPortOf(sa syscall.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *syscall.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}

func (r *Runner) readLoop(ctx context.Context, s *socket, eng ike.Engine) {
	for {
		bp, n, from, err := r.receive(s)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			r.log.Warn("IKE socket read failed", "local", s.local, "err", err)
			return
		}
		data := (*bp)[:n]
		if s.natt {
			if n == 1 && data[0] == 0xff {
				r.bufPool.Put(bp)
				continue // NAT-T keepalive
			}
			if n < 4 || data[0]|data[1]|data[2]|data[3] != 0 {
				r.bufPool.Put(bp)
				continue // ESP (SPI != 0) not consumed by the kernel, or runt
			}
			data = data[4:]
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		local := s.local
		d := ike.Datagram{Local: local, Remote: from, Data: append([]byte(nil), data...)}
		r.bufPool.Put(bp)
		eng.HandleDatagram(time.Now(), d)
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}
