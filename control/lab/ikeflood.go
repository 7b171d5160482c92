package lab

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/bpfvpn/bpfvpn/ike/ikev2"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// IKEFlood describes a bounded flood of IKEv2 IKE_SA_INIT requests with
// spoofed source addresses, sent through a raw socket from inside a
// namespace. Every request is well formed and offers the reference IKE
// proposal (aes-256-cbc, sha-256, group19) with a valid KE value, so a
// responder that accepts it spends a Diffie-Hellman computation and a
// half-open SA on it.
type IKEFlood struct {
	Target netip.AddrPort
	// Sources are the spoofed source addresses, used round robin.
	Sources []netip.Addr
	// Count bounds the number of requests (all sources together).
	Count int
	// Rate is the total requests per second (0: as fast as the socket takes them).
	Rate float64
	// Duration bounds the flood in time.
	Duration time.Duration
}

// ikeInitTemplate is an IKE_SA_INIT request whose SPIi (bytes 0..8) and
// nonce (the last nonceLen bytes) are replaced per packet.
func ikeInitTemplate() ([]byte, error) {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	pub := priv.PublicKey().Bytes()[1:] // RFC 5903: x || y without the point format byte
	sa := &ikev2.SA{Proposals: []ikev2.Proposal{{Num: 1, Protocol: ikev2.ProtoIKE, Transforms: []ikev2.Transform{
		{Type: uint8(suite.TransformENCR), ID: uint16(suite.EncrAESCBC), KeyLen: 256},
		{Type: uint8(suite.TransformPRF), ID: uint16(suite.PRFHMACSHA2256)},
		{Type: uint8(suite.TransformINTEG), ID: uint16(suite.IntegHMACSHA2256128)},
		{Type: uint8(suite.TransformKE), ID: uint16(suite.ECP256)},
	}}}}
	m := &ikev2.Message{
		Header:   ikev2.Header{SPIi: 1, Version: 0x20, Exchange: ikev2.IKE_SA_INIT, Flags: ikev2.FlagInitiator},
		Payloads: []ikev2.Payload{sa, &ikev2.KE{Group: uint16(suite.ECP256), Data: pub}, &ikev2.Nonce{Data: make([]byte, nonceLen)}},
	}
	return m.Encode(), nil
}

const nonceLen = 32

// maxCatchUp bounds the burst of a paced flood that fell behind.
const maxCatchUp = 20

// Send runs the flood inside ns and returns how many requests went out. It
// stops at Count, after Duration or when ctx ends, whichever comes first.
func (f IKEFlood) Send(ctx context.Context, ns netns.NsHandle) (int, error) {
	if len(f.Sources) == 0 || f.Count <= 0 || f.Duration <= 0 {
		return 0, errors.New("ike flood: sources, count and duration must be set")
	}
	tmpl, err := ikeInitTemplate()
	if err != nil {
		return 0, fmt.Errorf("ike flood: %w", err)
	}
	var fd int
	if err := Do(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		return err
	}); err != nil {
		return 0, fmt.Errorf("ike flood: raw socket: %w", err)
	}
	defer unix.Close(fd)
	dst := &unix.SockaddrInet4{Addr: f.Target.Addr().As4()}
	pkt := make([]byte, 28+len(tmpl))
	rnd := make([]byte, 8+nonceLen)
	start := time.Now()
	deadline := start.Add(f.Duration)
	sent := 0
	for sent < f.Count {
		if ctx.Err() != nil || time.Now().After(deadline) {
			break
		}
		if f.Rate > 0 {
			// Paced. A sender that fell behind (timers of a busy VM fire
			// late) catches up with at most maxCatchUp requests back to
			// back, well inside the XDP limit's burst of 100, and drops
			// the rest of its debt.
			interval := time.Duration(float64(time.Second) / f.Rate)
			due := start.Add(time.Duration(sent) * interval)
			if d := time.Until(due); d > 0 {
				select {
				case <-ctx.Done():
					return sent, nil
				case <-time.After(d):
				}
			} else if -d > maxCatchUp*interval {
				start = start.Add(-d - maxCatchUp*interval)
			}
		}
		src := f.Sources[sent%len(f.Sources)]
		rand.Read(rnd)
		copy(pkt[28:], tmpl)
		copy(pkt[28:36], rnd[:8])
		copy(pkt[len(pkt)-nonceLen:], rnd[8:])
		buildIPv4UDP(pkt, src, f.Target.Addr(), uint16(500+sent%1000), f.Target.Port())
		if err := unix.Sendto(fd, pkt, 0, dst); err != nil {
			if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return sent, fmt.Errorf("ike flood: send from %s: %w", src, err)
		}
		sent++
	}
	return sent, nil
}

// buildIPv4UDP writes an IPv4 and a UDP header (UDP checksum 0: none) in
// front of the payload that starts at pkt[28:].
func buildIPv4UDP(pkt []byte, src, dst netip.Addr, sport, dport uint16) {
	ip := pkt[:20]
	ip[0], ip[1] = 0x45, 0
	binary.BigEndian.PutUint16(ip[2:], uint16(len(pkt)))
	binary.BigEndian.PutUint16(ip[4:], 0)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8], ip[9] = 64, unix.IPPROTO_UDP
	ip[10], ip[11] = 0, 0
	s, d := src.As4(), dst.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := pkt[20:28]
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(pkt)-20))
	binary.BigEndian.PutUint16(udp[6:], 0)
}
