package lab

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// PingStats counts the echo requests a Pinger sent and the replies it got.
type PingStats struct {
	Sent     int
	Received int
	Lost     []uint16 // sequence numbers of requests without a reply
}

func (s PingStats) String() string {
	return fmt.Sprintf("%d sent, %d received, %d lost", s.Sent, s.Received, len(s.Lost))
}

// Pinger sends ICMP echo requests from inside a network namespace at a fixed
// interval and matches replies by identifier and sequence number.
type Pinger struct {
	conn    net.PacketConn
	dst     net.Addr
	v6      bool
	id      uint16
	magic   []byte
	max     int // requests to send; 0 means until Stop
	stop    chan struct{}
	once    sync.Once
	stopped chan struct{}
	recvd   chan struct{} // signalled on every new reply

	mu       sync.Mutex
	sent     int
	received map[uint16]bool
	rdone    chan struct{}
}

// StartPinger opens a raw ICMP socket in ns and sends an echo request to dst
// every interval until Stop.
func StartPinger(ns netns.NsHandle, dst netip.Addr, interval time.Duration) (*Pinger, error) {
	return startPinger(ns, dst, interval, 0)
}

func startPinger(ns netns.NsHandle, dst netip.Addr, interval time.Duration, max int) (*Pinger, error) {
	if interval <= 0 {
		return nil, errors.New("ping: interval must be positive")
	}
	network := "ip4:icmp"
	if dst.Is6() && !dst.Is4In6() {
		network = "ip6:ipv6-icmp"
	}
	var conn net.PacketConn
	err := Do(ns, func() error {
		var err error
		conn, err = net.ListenPacket(network, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ping %s: open socket: %w", dst, err)
	}
	var idb [2]byte
	magic := make([]byte, 16)
	_, _ = rand.Read(idb[:])
	_, _ = rand.Read(magic)
	p := &Pinger{
		conn:     conn,
		dst:      &net.IPAddr{IP: net.IP(dst.Unmap().AsSlice())},
		v6:       network != "ip4:icmp",
		max:      max,
		id:       binary.BigEndian.Uint16(idb[:]),
		magic:    magic,
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
		recvd:    make(chan struct{}, 1),
		received: map[uint16]bool{},
		rdone:    make(chan struct{}),
	}
	go p.receive()
	go p.send(interval)
	return p, nil
}

func (p *Pinger) send(interval time.Duration) {
	defer close(p.stopped)
	t := time.NewTicker(interval)
	defer t.Stop()
	typ := uint8(icmp4EchoRequest)
	if p.v6 {
		typ = icmp6EchoRequest
	}
	for seq := uint16(0); ; seq++ {
		msg := marshalEcho(echo{Type: typ, ID: p.id, Seq: seq, Payload: p.magic}, p.v6)
		// A send never blocks the pinger for long (a full socket buffer
		// counts as a lost request).
		_ = p.conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, err := p.conn.WriteTo(msg, p.dst)
		_ = err // a failed send is a lost request
		p.mu.Lock()
		p.sent++
		p.mu.Unlock()
		if p.max > 0 && int(seq)+1 >= p.max {
			return
		}
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

func (p *Pinger) receive() {
	defer close(p.rdone)
	want := uint8(icmp4EchoReply)
	if p.v6 {
		want = icmp6EchoReply
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := p.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		m, err := parseEcho(buf[:n])
		if err != nil || m.Type != want || m.ID != p.id || !bytes.Equal(m.Payload, p.magic) {
			continue
		}
		p.mu.Lock()
		p.received[m.Seq] = true
		p.mu.Unlock()
		select {
		case p.recvd <- struct{}{}:
		default:
		}
	}
}

// Sent returns the number of requests sent (or attempted) so far.
func (p *Pinger) Sent() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

// Received returns the number of distinct replies so far.
func (p *Pinger) Received() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.received)
}

// Stop stops sending, waits up to wait for the replies still outstanding,
// closes the socket and returns the counts.
func (p *Pinger) Stop(wait time.Duration) PingStats {
	p.once.Do(func() { close(p.stop) })
	<-p.stopped
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for p.Received() < p.Sent() {
		select {
		case <-p.recvd:
		case <-deadline.C:
			goto done
		}
	}
done:
	p.conn.Close()
	<-p.rdone
	p.mu.Lock()
	defer p.mu.Unlock()
	st := PingStats{Sent: p.sent, Received: len(p.received)}
	for seq := 0; seq < p.sent; seq++ {
		if !p.received[uint16(seq)] {
			st.Lost = append(st.Lost, uint16(seq))
		}
	}
	sort.Slice(st.Lost, func(i, j int) bool { return st.Lost[i] < st.Lost[j] })
	return st
}

// Ping sends count echo requests from ns to dst, interval apart, waits up to
// timeout after the last one, and returns the counts. It fails if no reply
// arrived at all.
func Ping(ns netns.NsHandle, dst netip.Addr, count int, interval, timeout time.Duration) (PingStats, error) {
	if count <= 0 || count > 65536 {
		return PingStats{}, fmt.Errorf("ping %s: count %d out of range", dst, count)
	}
	p, err := startPinger(ns, dst, interval, count)
	if err != nil {
		return PingStats{}, err
	}
	<-p.stopped // the sender stops by itself after count requests
	st := p.Stop(timeout)
	if st.Received == 0 {
		return st, fmt.Errorf("ping %s: no reply (%s)", dst, st)
	}
	return st, nil
}
