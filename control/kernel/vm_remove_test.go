package kernel

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// ownedSAs counts bpfvpn's SAs by tunnel (upKey) and the SAs that are not
// bpfvpn's.
func ownedSAs(t *testing.T, h *netlink.Handle) (owned map[int]int, foreign int) {
	t.Helper()
	states, err := h.XfrmStateList(netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	owned = map[int]int{}
	for _, s := range states {
		if u, p, ok := tunnelOfXfrm(s.Ifid, s.Reqid); ok {
			owned[upKey(u, p)]++
		} else {
			foreign++
		}
	}
	return owned, foreign
}

// TestVMRemoveTunnels removes tunnels with SAs: the Reconciler that
// installed them (a retiring SA of a rekey included) dumps nothing, a new
// Reconciler (a restarted daemon, which installed nothing) dumps once for
// all its removals; each removal deletes exactly its tunnel's SAs and
// policies, and SAs bpfvpn does not own survive.
func TestVMRemoveTunnels(t *testing.T) {
	a, b := newVMPair(t)
	ctx := context.Background()
	const n = 5
	st := State{Addresses: a.state.Addresses}
	for u := range n {
		st.Tunnels = append(st.Tunnels, Tunnel{Unit: u, Underlay: "wan0",
			IPv4: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 150, byte(u), 1}), 30)})
	}
	a.state = st
	a.reconcile(t)
	pairs := map[int]ChildSA{}
	for u := range n {
		pa, _ := saPairOn(t, a, b, gcm256, u)
		install(t, a, pa)
		pairs[u] = pa
	}
	// Unit 1 rekeyed: its old inbound SA lingers for a minute.
	next, _ := saPairOn(t, a, b, gcm256, 1)
	if _, err := a.r.RekeyChildSA(ctx, pairs[1], next, time.Minute); err != nil {
		t.Fatal(err)
	}
	key := randKey(t, 36)
	for _, s := range []*netlink.XfrmState{
		{Src: net.ParseIP("10.99.0.1"), Dst: net.ParseIP("10.99.0.2"), Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL,
			Spi: 0x9999, Reqid: 5, Ifid: 99, Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: key, ICVLen: 128}},
		// Unit 2's if_id with another reqid: not bpfvpn's.
		{Src: net.ParseIP("10.99.0.1"), Dst: net.ParseIP("10.99.0.2"), Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL,
			Spi: 0x7777, Reqid: 7, Ifid: int(IfID(2)), Aead: &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: key, ICVLen: 128}},
	} {
		if err := a.h.XfrmStateAdd(s); err != nil {
			t.Fatal(err)
		}
	}
	owned, foreign := ownedSAs(t, a.h)
	if owned[1] < 3 || owned[0] != 2 || foreign != 2 {
		t.Fatalf("before removal: bpfvpn's SAs by unit %v, %d others", owned, foreign)
	}

	check := func(gone []int, kept []int) {
		t.Helper()
		owned, foreign := ownedSAs(t, a.h)
		owned2, _ := ownedPolicies(t, a.h)
		pols := map[int]int{}
		for _, k := range owned2 {
			pols[k]++
		}
		for _, u := range gone {
			if owned[u] != 0 || pols[u] != 0 {
				t.Errorf("st0.%d: %d SAs, %d policies left after its removal", u, owned[u], pols[u])
			}
		}
		for _, u := range kept {
			if owned[u] != 2 || pols[u] != 6 {
				t.Errorf("st0.%d: %d SAs, %d policies, want its pair and six policies", u, owned[u], pols[u])
			}
		}
		if foreign != 2 {
			t.Errorf("%d SAs not bpfvpn's left, want 2", foreign)
		}
	}
	dumps := a.r.xfrmDumps
	for _, u := range []int{0, 1} {
		if _, err := a.r.RemoveTunnel(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if d := a.r.xfrmDumps - dumps; d != 0 {
		t.Errorf("the installing Reconciler dumped the XFRM tables %d times for two removals, want none", d)
	}
	if p := a.r.PendingRetirements(); p != 0 {
		t.Errorf("%d retirements pending after removing the rekeyed tunnel", p)
	}
	check([]int{0, 1}, []int{2, 3, 4})

	// A restarted daemon knows nothing it did not dump.
	r2 := newReconcilerIn(t, a.ns)
	for _, u := range []int{2, 3} {
		ch, err := r2.RemoveTunnel(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if len(ch) != 8 { // six policies, two SAs
			t.Errorf("removing st0.%d: changes %q, want six policy and two SA deletions", u, strs(ch))
		}
	}
	if r2.xfrmDumps != 1 {
		t.Errorf("a new Reconciler dumped the XFRM tables %d times for two removals, want once", r2.xfrmDumps)
	}
	check([]int{0, 1, 2, 3}, []int{4})
}
