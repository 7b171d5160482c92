package lab

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TCPSink is the receiving end of a TCP transfer between lab nodes: it
// listens inside a network namespace, accepts one connection and reads it
// to its end, counting what arrives.
type TCPSink struct {
	ln   net.Listener
	done chan TCPSinkResult
}

// TCPSinkResult is what a TCPSink's connection delivered.
type TCPSinkResult struct {
	Bytes   int64
	Elapsed time.Duration // from the accept (after the MSS read) to the end of the stream
	MSS     int           // TCP_MAXSEG of the accepted connection (0 if unreadable)
	Err     error
}

// StartTCPSink listens on addr (a free port) inside ns. The connection it
// accepts must end within timeout of its accept.
func StartTCPSink(ns netns.NsHandle, addr netip.Addr, timeout time.Duration) (*TCPSink, error) {
	var ln net.Listener
	if err := Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", addr.String()+":0")
		return err
	}); err != nil {
		return nil, fmt.Errorf("tcp sink on %s: %w", addr, err)
	}
	s := &TCPSink{ln: ln, done: make(chan TCPSinkResult, 1)}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			s.done <- TCPSinkResult{Err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		var mss int
		if raw, err := c.(*net.TCPConn).SyscallConn(); err == nil {
			raw.Control(func(fd uintptr) { mss, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG) })
		}
		start := time.Now()
		n, err := io.Copy(io.Discard, c)
		s.done <- TCPSinkResult{Bytes: n, Elapsed: time.Since(start), MSS: mss, Err: err}
	}()
	return s, nil
}

// Dial connects to the sink from inside ns.
func (s *TCPSink) Dial(ns netns.NsHandle, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := Do(ns, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", s.ln.Addr().String(), timeout)
		return err
	})
	return c, err
}

// Wait returns what the sink received, once its connection has ended (or
// the listener was closed before a connection came).
func (s *TCPSink) Wait() TCPSinkResult { return <-s.done }

// Close stops listening; a connection already accepted goes on.
func (s *TCPSink) Close() error { return s.ln.Close() }
