package lab

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// InitReplies counts the IKEv2 IKE_SA_INIT responses a responder sends, as
// seen on one link of a namespace (a packet socket: the responder's own
// counters are not trusted for this). Replies are split into COOKIE
// requests (RFC 7296 §2.6) and others.
type InitReplies struct {
	fd      int
	from    netip.Addr
	cookies atomic.Int64
	others  atomic.Int64
	stop    atomic.Bool
	wg      sync.WaitGroup
}

// WatchInitReplies starts counting the IKE_SA_INIT responses from
// responder (UDP port 500) that cross link inside ns.
func WatchInitReplies(ns netns.NsHandle, link string, responder netip.Addr) (*InitReplies, error) {
	w := &InitReplies{from: responder}
	err := Do(ns, func() error {
		ifi, err := net.InterfaceByName(link)
		if err != nil {
			return err
		}
		proto := htons(unix.ETH_P_IP)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(proto))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		w.fd = fd
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("watch IKE replies on %s: %w", link, err)
	}
	w.wg.Add(1)
	go w.run()
	return w, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (w *InitReplies) run() {
	defer w.wg.Done()
	buf := make([]byte, 2048)
	for !w.stop.Load() {
		n, _, err := unix.Recvfrom(w.fd, buf, 0)
		if err != nil {
			continue // timeout (SO_RCVTIMEO) or EINTR: check stop
		}
		switch classifyInitReply(buf[:n], w.from) {
		case replyCookie:
			w.cookies.Add(1)
		case replyOther:
			w.others.Add(1)
		}
	}
}

type replyKind int

const (
	replyNone replyKind = iota
	replyCookie
	replyOther
)

// classifyInitReply looks at an IPv4 packet: is it an IKE_SA_INIT
// response from responder's UDP port 500, and does it ask for a COOKIE?
func classifyInitReply(p []byte, responder netip.Addr) replyKind {
	if len(p) < 20 || p[0]>>4 != 4 || p[9] != unix.IPPROTO_UDP {
		return replyNone
	}
	ihl := int(p[0]&0xf) * 4
	if src, _ := netip.AddrFromSlice(p[12:16]); src != responder || len(p) < ihl+8+28 {
		return replyNone
	}
	if binary.BigEndian.Uint16(p[ihl:]) != 500 {
		return replyNone
	}
	ike := p[ihl+8:]
	const exchangeSAInit, flagResponse, payloadNotify, notifyCookie = 34, 0x20, 41, 16390
	if ike[17]>>4 != 2 || ike[18] != exchangeSAInit || ike[19]&flagResponse == 0 {
		return replyNone
	}
	if ike[16] == payloadNotify && len(ike) >= 28+8 && binary.BigEndian.Uint16(ike[28+6:]) == notifyCookie {
		return replyCookie
	}
	return replyOther
}

// Cookies is the number of COOKIE requests seen so far.
func (w *InitReplies) Cookies() int64 { return w.cookies.Load() }

// Others is the number of other IKE_SA_INIT responses seen so far.
func (w *InitReplies) Others() int64 { return w.others.Load() }

// Close stops counting.
func (w *InitReplies) Close() {
	w.stop.Store(true)
	w.wg.Wait()
	unix.Close(w.fd)
}
