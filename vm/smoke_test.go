package vm

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// espSite is one end of the smoke test: a network namespace with the
// underlay veth end and an st0.0 XFRM interface (if_id 1).
type espSite struct {
	ns       netns.NsHandle
	h        *netlink.Handle
	underlay net.IP // veth address, the SA endpoint
	tunnel   net.IP // st0.0 address
	out, in  *netlink.XfrmState
}

const smokeIfID = 1

// newESPPair builds two namespaces joined by veth, each with st0.0, a pair
// of rfc4106(gcm(aes)) ESP SAs and 0/0 policies bound to if_id 1.
func newESPPair(t *testing.T) (a, b *espSite) {
	t.Helper()
	a = &espSite{underlay: net.IPv4(10, 99, 0, 1).To4(), tunnel: net.IPv4(10, 200, 0, 1).To4()}
	b = &espSite{underlay: net.IPv4(10, 99, 0, 2).To4(), tunnel: net.IPv4(10, 200, 0, 2).To4()}
	for _, s := range []*espSite{a, b} {
		ns, err := newNetns()
		if err != nil {
			t.Fatalf("new netns: %v", err)
		}
		t.Cleanup(func() { ns.Close() })
		h, err := netlink.NewHandleAt(ns)
		if err != nil {
			t.Fatalf("netlink handle: %v", err)
		}
		t.Cleanup(h.Close)
		s.ns, s.h = ns, h
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: "vmsmoke0"},
		PeerName:      "vmsmoke1",
		PeerNamespace: netlink.NsFd(int(b.ns)),
	}
	if err := a.h.LinkAdd(veth); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	spiAB, spiBA := 0x1000+randUint16(t), 0x2000+randUint16(t)
	keyAB, keyBA := randKey(t), randKey(t)
	for _, c := range []struct {
		s, peer   *espSite
		link      string
		outSPI    int
		inSPI     int
		outK, inK []byte
	}{
		{a, b, "vmsmoke0", spiAB, spiBA, keyAB, keyBA},
		{b, a, "vmsmoke1", spiBA, spiAB, keyBA, keyAB},
	} {
		s := c.s
		under, err := s.h.LinkByName(c.link)
		if err != nil {
			t.Fatalf("veth %s: %v", c.link, err)
		}
		mustAddr(t, s.h, under, s.underlay, 24)
		st := &netlink.Xfrmi{LinkAttrs: netlink.LinkAttrs{Name: "st0.0"}, Ifid: smokeIfID}
		if err := s.h.LinkAdd(st); err != nil {
			t.Fatalf("add xfrm interface st0.0: %v", err)
		}
		stLink, err := s.h.LinkByName("st0.0")
		if err != nil {
			t.Fatalf("st0.0: %v", err)
		}
		mustAddr(t, s.h, stLink, s.tunnel, 24)
		for _, l := range []netlink.Link{under, stLink} {
			if err := s.h.LinkSetUp(l); err != nil {
				t.Fatalf("set %s up: %v", l.Attrs().Name, err)
			}
		}
		s.out = espState(s.underlay, c.peer.underlay, c.outSPI, c.outK)
		s.in = espState(c.peer.underlay, s.underlay, c.inSPI, c.inK)
		for _, sa := range []*netlink.XfrmState{s.out, s.in} {
			if err := s.h.XfrmStateAdd(sa); err != nil {
				t.Fatalf("add SA spi 0x%x: %v", sa.Spi, err)
			}
		}
		any4 := &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
		for _, p := range []*netlink.XfrmPolicy{
			{Src: any4, Dst: any4, Dir: netlink.XFRM_DIR_OUT, Ifid: smokeIfID, Tmpls: []netlink.XfrmPolicyTmpl{
				{Src: s.underlay, Dst: c.peer.underlay, Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Reqid: 1},
			}},
			{Src: any4, Dst: any4, Dir: netlink.XFRM_DIR_IN, Ifid: smokeIfID, Tmpls: []netlink.XfrmPolicyTmpl{
				{Src: c.peer.underlay, Dst: s.underlay, Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Reqid: 1},
			}},
		} {
			if err := s.h.XfrmPolicyAdd(p); err != nil {
				t.Fatalf("add policy %s: %v", p.Dir, err)
			}
		}
	}
	return a, b
}

func espState(src, dst net.IP, spi int, key []byte) *netlink.XfrmState {
	return &netlink.XfrmState{
		Src: src, Dst: dst, Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL,
		Spi: spi, Reqid: 1, Ifid: smokeIfID, ReplayWindow: 32,
		Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: key, ICVLen: 128},
	}
}

// packets returns the packet counter of SA sa in site s.
func (s *espSite) packets(sa *netlink.XfrmState) (uint64, error) {
	got, err := s.h.XfrmStateGet(sa)
	if err != nil {
		return 0, fmt.Errorf("get SA spi 0x%x: %w", sa.Spi, err)
	}
	return got.Statistics.Packets, nil
}

// espCarriesPing pings dst (an address of b) from a and checks that all
// four SAs counted packets: the proof that ESP carried the ping.
func espCarriesPing(a, b *espSite, dst net.IP) error {
	type counter struct {
		s  *espSite
		sa *netlink.XfrmState
		n  uint64
	}
	counters := []*counter{{s: a, sa: a.out}, {s: b, sa: b.in}, {s: b, sa: b.out}, {s: a, sa: a.in}}
	for _, c := range counters {
		n, err := c.s.packets(c.sa)
		if err != nil {
			return err
		}
		c.n = n
	}
	if err := ping(a.ns, dst, 10*time.Second); err != nil {
		return err
	}
	for _, c := range counters {
		n, err := c.s.packets(c.sa)
		if err != nil {
			return err
		}
		if n <= c.n {
			return fmt.Errorf("SA %s->%s spi 0x%x: %d packets before and %d after the ping: %w",
				c.sa.Src, c.sa.Dst, c.sa.Spi, c.n, n, errNotCounted)
		}
	}
	return nil
}

func TestVMXfrmInterfaceESP(t *testing.T) {
	RequireKernelIPsec(t)
	if unix.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	a, b := newESPPair(t)
	t.Run("PingCarriedByESP", func(t *testing.T) {
		if err := espCarriesPing(a, b, b.tunnel); err != nil {
			t.Fatalf("ping through st0.0: %v", err)
		}
	})
	t.Run("PlainPathNotCounted", func(t *testing.T) {
		// The underlay ping gets through but bypasses ESP: the check
		// must tell it apart from a tunnelled one.
		err := espCarriesPing(a, b, b.underlay)
		if !errors.Is(err, errNotCounted) {
			t.Fatalf("check of an unencrypted ping: %v, want %v", err, errNotCounted)
		}
	})
	t.Run("NoSAsNoPing", func(t *testing.T) {
		for _, s := range []*espSite{a, b} {
			for _, sa := range []*netlink.XfrmState{s.out, s.in} {
				if err := s.h.XfrmStateDel(sa); err != nil {
					t.Fatalf("delete SA spi 0x%x: %v", sa.Spi, err)
				}
			}
		}
		err := espCarriesPing(a, b, b.tunnel)
		if err == nil {
			t.Fatal("the ESP check passed with the SAs removed")
		}
		if err := ping(a.ns, b.tunnel, 2*time.Second); err == nil {
			t.Fatal("ping through st0.0 got an answer without SAs")
		}
	})
}

// newNetns creates an unnamed network namespace without leaving the
// calling thread in it.
func newNetns() (netns.NsHandle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return 0, err
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		return 0, err
	}
	if err := netns.Set(orig); err != nil {
		ns.Close()
		return 0, fmt.Errorf("return to the original netns: %w", err)
	}
	return ns, nil
}

// socketIn opens a socket inside network namespace ns.
func socketIn(ns netns.NsHandle, domain, typ, proto int) (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return -1, err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		return -1, err
	}
	fd, serr := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
	if err := netns.Set(orig); err != nil {
		if serr == nil {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("return to the original netns: %w", err)
	}
	return fd, serr
}

var (
	errNoReply    = errors.New("no echo reply")
	errNotCounted = errors.New("SA did not count the ping")
)

// ping sends ICMP echo requests from namespace ns to dst, one per 250 ms,
// until a matching reply arrives or the deadline passes.
func ping(ns netns.NsHandle, dst net.IP, within time.Duration) error {
	fd, err := socketIn(ns, unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
	if err != nil {
		return fmt.Errorf("icmp socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("icmp socket timeout: %w", err)
	}
	var to unix.SockaddrInet4
	copy(to.Addr[:], dst.To4())
	id := uint16(time.Now().UnixNano())
	deadline := time.Now().Add(within)
	buf := make([]byte, 1500)
	for seq := uint16(1); time.Now().Before(deadline); seq++ {
		if err := unix.Sendto(fd, echoRequest(id, seq), 0, &to); err != nil {
			return fmt.Errorf("send echo to %s: %w", dst, err)
		}
		next := time.Now().Add(250 * time.Millisecond)
		for time.Now().Before(next) {
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue // EAGAIN on the receive timeout
			}
			src, ok := from.(*unix.SockaddrInet4)
			if !ok || !net.IP(src.Addr[:]).Equal(dst) || n < 20 {
				continue
			}
			ihl := int(buf[0]&0x0f) * 4
			if n < ihl+8 {
				continue
			}
			icmp := buf[ihl:n]
			if icmp[0] == 0 && binary.BigEndian.Uint16(icmp[4:]) == id {
				return nil
			}
		}
	}
	return fmt.Errorf("ping %s for %s: %w", dst, within, errNoReply)
}

func echoRequest(id, seq uint16) []byte {
	m := make([]byte, 16)
	m[0] = 8 // echo request
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[6:], seq)
	copy(m[8:], "bpfvpnvm")
	var sum uint32
	for i := 0; i < len(m); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(m[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(m[2:], ^uint16(sum))
	return m
}

func mustAddr(t *testing.T, h *netlink.Handle, l netlink.Link, ip net.IP, bits int) {
	t.Helper()
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, 32)}}
	if err := h.AddrAdd(l, addr); err != nil {
		t.Fatalf("add %s to %s: %v", addr, l.Attrs().Name, err)
	}
}

func randKey(t *testing.T) []byte {
	k := make([]byte, 20) // AES-128 key + 4-byte salt
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func randUint16(t *testing.T) int {
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return int(binary.BigEndian.Uint16(b[:]) & 0x0fff)
}
