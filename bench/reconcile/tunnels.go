package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/bpfvpn/bpfvpn/bench/internal/vethns"
	"github.com/bpfvpn/bpfvpn/control/kernel"
)

// benchTunnels times n st0 units (xfrm interface, /30 address, SA pair and
// six policies each) made by the reconciler and by ip -batch.
func benchTunnels(n, runs int) error {
	var bp, bs, ipt []time.Duration
	for i := 0; i < runs; i++ {
		links, sas, ip, err := tunnelsOnce(n)
		if err != nil {
			return err
		}
		bp, bs, ipt = append(bp, links), append(bs, sas), append(ipt, ip)
	}
	m := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	links, sas, ip := m(bp), m(bs), m(ipt)
	fmt.Printf("| st0 units | bpfvpn units+addresses | bpfvpn SA pairs+policies | bpfvpn total | ip -batch total | ratio ip/bpfvpn |\n")
	fmt.Printf("|---|---|---|---|---|---|\n")
	fmt.Printf("| %d | %s | %s | %s | %s | %.2f |\n", n, ms(links), ms(sas), ms(links+sas), ms(ip), float64(ip)/float64(links+sas))
	return nil
}

func unitAddr(i int) netip.Prefix {
	v := uint32(172)<<24 | uint32(16)<<16 | uint32(4*i+1)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 30)
}

func tunnelsOnce(n int) (links, sas, ip time.Duration, err error) {
	ctx := context.Background()
	ns, err := vethns.New()
	if err != nil {
		return 0, 0, 0, err
	}
	defer ns.Close()
	r, err := kernel.New(kernel.Options{NetNS: ns, NetNSSet: true})
	if err != nil {
		return 0, 0, 0, err
	}
	defer r.Close()
	var st kernel.State
	for i := 0; i < n; i++ {
		st.Tunnels = append(st.Tunnels, kernel.Tunnel{Unit: i, Underlay: "veth0", IPv4: unitAddr(i), RoutesWhenDown: true})
	}
	key := make([]byte, 36)
	_, _ = rand.Read(key)
	t0 := time.Now()
	if _, err := r.Reconcile(ctx, st); err != nil {
		return 0, 0, 0, err
	}
	links = time.Since(t0)
	t0 = time.Now()
	for i := 0; i < n; i++ {
		c := kernel.ChildSA{Unit: i, Local: netip.MustParseAddr("10.0.0.1"), Remote: netip.MustParseAddr("10.0.0.2"),
			InboundSPI: uint32(0x10000 + 2*i), OutboundSPI: uint32(0x10001 + 2*i), Encryption: "rfc4106(gcm(aes))",
			Inbound: kernel.Keys{Encryption: key}, Outbound: kernel.Keys{Encryption: key}, ReplayWindow: 64}
		if _, err := r.InstallChildSA(ctx, c); err != nil {
			return 0, 0, 0, err
		}
	}
	sas = time.Since(t0)

	ns2, err := vethns.New()
	if err != nil {
		return 0, 0, 0, err
	}
	defer ns2.Close()
	var b bytes.Buffer
	k := hex.EncodeToString(key)
	for i := 0; i < n; i++ {
		id, reqid := kernel.IfID(i), kernel.ReqID(i)
		fmt.Fprintf(&b, "link add st0.%d type xfrm dev veth0 if_id %d\nlink set st0.%d up\naddress add %s dev st0.%d\n", i, id, i, unitAddr(i), i)
		for _, d := range [][3]any{{"10.0.0.2", "10.0.0.1", 0x10000 + 2*i}, {"10.0.0.1", "10.0.0.2", 0x10001 + 2*i}} {
			fmt.Fprintf(&b, "xfrm state add src %s dst %s proto esp spi %d reqid %d mode tunnel if_id %d replay-window 64 flag af-unspec aead rfc4106(gcm(aes)) 0x%s 128\n",
				d[0], d[1], d[2], reqid, id, k)
		}
		for _, sel := range []string{"0.0.0.0/0", "::/0"} {
			fmt.Fprintf(&b, "xfrm policy add src %s dst %s dir out if_id %d tmpl src 10.0.0.1 dst 10.0.0.2 proto esp reqid %d mode tunnel\n", sel, sel, id, reqid)
			for _, dir := range []string{"in", "fwd"} {
				fmt.Fprintf(&b, "xfrm policy add src %s dst %s dir %s if_id %d tmpl src 10.0.0.2 dst 10.0.0.1 proto esp reqid %d mode tunnel\n", sel, sel, dir, id, reqid)
			}
		}
	}
	if ip, err = ipBatch(ns2, &b); err != nil {
		return 0, 0, 0, err
	}
	return links, sas, ip, nil
}
