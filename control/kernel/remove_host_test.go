package kernel

import (
	"context"
	"net"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
)

// ownedPolicies returns the tunnels (by upKey) of bpfvpn's policies in the
// namespace, one entry per policy, and how many policies are not bpfvpn's.
func ownedPolicies(t *testing.T, h *netlink.Handle) (owned []int, foreign int) {
	t.Helper()
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		ps, err := h.XfrmPolicyList(fam)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if len(p.Tmpls) == 1 {
				if u, peer, ok := tunnelOfXfrm(p.Ifid, p.Tmpls[0].Reqid); ok {
					owned = append(owned, upKey(u, peer))
					continue
				}
			}
			foreign++
		}
	}
	slices.Sort(owned)
	return owned, foreign
}

// TestHostRemoveTunnelPolicies removes tunnels one by one, as a commit
// without them does: each removal deletes exactly its tunnel's policies
// (those an earlier daemon left included, which this Reconciler never
// installed), nothing of other tunnels and nothing bpfvpn does not own, and
// all the removals together dump the kernel's XFRM tables once.
// (The host kernel has no ESP, so no SAs here: TestVMRemoveTunnels.)
func TestHostRemoveTunnelPolicies(t *testing.T) {
	ns, h := newTestNetns(t)
	ctx := context.Background()
	sa := func(unit, peer int) ChildSA {
		c := testSA()
		c.Unit, c.Peer = unit, peer
		return c
	}
	// An earlier daemon's policies: unit 7, and peer 2 of multipoint unit 9.
	for _, c := range []ChildSA{sa(7, 0), sa(9, 2)} {
		for _, p := range wantPolicies(c) {
			if err := h.XfrmPolicyAdd(policyID(p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Not bpfvpn's: unit 1's if_id with another reqid, and another if_id.
	tmpl := []netlink.XfrmPolicyTmpl{{Src: net.ParseIP("1.1.1.1"), Dst: net.ParseIP("2.2.2.2"),
		Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Reqid: 7}}
	for _, p := range []*netlink.XfrmPolicy{
		{Src: prefixToIPNet(pfx("10.0.0.0/8")), Dst: prefixToIPNet(pfx("10.0.0.0/8")), Dir: netlink.XFRM_DIR_OUT, Ifid: int(IfID(1)), Tmpls: tmpl},
		{Src: prefixToIPNet(pfx("0.0.0.0/0")), Dst: prefixToIPNet(pfx("0.0.0.0/0")), Dir: netlink.XFRM_DIR_OUT, Ifid: 99, Tmpls: tmpl},
	} {
		if err := h.XfrmPolicyAdd(p); err != nil {
			t.Fatal(err)
		}
	}

	r := newReconcilerIn(t, ns)
	ensure := func(c ChildSA) {
		t.Helper()
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, err := r.ensurePolicies(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []ChildSA{sa(1, 0), sa(2, 0), sa(3, 0), sa(4, 0), sa(9, 1)} {
		ensure(c)
	}
	remove := func(unit, peer int) {
		t.Helper()
		var ch []Change
		var err error
		if peer == 0 {
			ch, err = r.RemoveTunnel(ctx, unit)
		} else {
			ch, err = r.RemovePeerTunnel(ctx, unit, peer)
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(ch) != 6 {
			t.Errorf("removing st0.%d peer %d: changes %q, want its six policy deletions", unit, peer, strs(ch))
		}
		for _, c := range ch {
			if c.Op != OpDeletePolicy || c.Unit != unit || c.pol.Peer != peer {
				t.Errorf("removing st0.%d peer %d: change %s of another tunnel", unit, peer, c)
			}
		}
	}
	dumps := r.xfrmDumps
	remove(1, 0)
	remove(7, 0) // left by an earlier daemon
	remove(9, 2) // likewise, one peer of a multipoint unit
	// Installed after the Reconciler's dump: known without another one.
	ensure(sa(5, 0))
	remove(5, 0)
	remove(2, 0)
	if n := r.xfrmDumps - dumps; n != 1 {
		t.Errorf("five removals dumped the XFRM tables %d times, want once", n)
	}

	owned, foreign := ownedPolicies(t, h)
	var want []int
	for _, k := range []int{3, 4, upKey(9, 1)} {
		for range 6 {
			want = append(want, k)
		}
	}
	slices.Sort(want)
	if !slices.Equal(owned, want) {
		t.Errorf("bpfvpn's policies left by tunnel %v, want six each of st0.3, st0.4 and st0.9 peer 1 (%v)", owned, want)
	}
	if foreign != 2 {
		t.Errorf("%d policies not bpfvpn's left, want 2", foreign)
	}
}

// TestHostRemoveTunnelAfterForeignDelete: a policy the model holds but
// someone else deleted is not an error to remove again, and the rest of the
// tunnel still goes.
func TestHostRemoveTunnelAfterForeignDelete(t *testing.T) {
	ns, h := newTestNetns(t)
	r := newReconcilerIn(t, ns)
	c := testSA()
	c.Unit = 3
	r.mu.Lock()
	_, err := r.ensurePolicies(c)
	if err == nil {
		_, _, err = r.observeXfrm()
	}
	r.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.XfrmPolicyDel(policyID(wantPolicies(c)[0])); err != nil {
		t.Fatal(err)
	}
	ch, err := r.RemoveTunnel(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 5 {
		t.Errorf("changes %q, want the five deletions of the policies still there", strs(ch))
	}
	if owned, _ := ownedPolicies(t, h); len(owned) != 0 {
		t.Errorf("policies of %v left", owned)
	}
}

// TestHostRemoveTunnelAfterFailedChange: an XFRM change that failed may have
// been half-applied, so the next removal lists the kernel again instead of
// trusting the model, and still removes only what is bpfvpn's.
func TestHostRemoveTunnelAfterFailedChange(t *testing.T) {
	ns, h := newTestNetns(t)
	r := newReconcilerIn(t, ns)
	c := testSA()
	c.Unit = 6
	r.mu.Lock()
	_, _, err := r.observeXfrm()
	r.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	// Someone else's policy with unit 6's selector and if_id (another reqid).
	foreign := policyID(wantPolicies(c)[0])
	foreign.Tmpls[0].Reqid = 7
	if err := h.XfrmPolicyAdd(foreign); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	_, err = r.ensurePolicies(c)
	r.mu.Unlock()
	if err == nil {
		t.Fatal("installing over someone else's policy succeeded")
	}
	dumps := r.xfrmDumps
	ch, err := r.RemoveTunnel(context.Background(), 6)
	if err != nil {
		t.Fatal(err)
	}
	if r.xfrmDumps != dumps+1 {
		t.Errorf("removal after a failed change dumped %d times, want once", r.xfrmDumps-dumps)
	}
	if len(ch) != 5 {
		t.Errorf("changes %q, want the five policies bpfvpn installed", strs(ch))
	}
	if owned, foreignN := ownedPolicies(t, h); len(owned) != 0 || foreignN != 1 {
		t.Errorf("left: bpfvpn's policies of %v, %d others (want none and the foreign one)", owned, foreignN)
	}
}
