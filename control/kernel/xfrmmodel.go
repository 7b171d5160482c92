package kernel

import (
	"cmp"
	"slices"
)

// xfrmModel is what a Reconciler knows of bpfvpn's XFRM states and
// policies: the last dump (observeXfrm), with every change the Reconciler
// made since then applied to it. Removing a tunnel deletes the objects the
// model holds for it instead of dumping every state and policy again, so
// that removing n tunnels costs O(n) netlink requests, not O(n²) dump work.
//
// Invariants:
//   - valid is false until the first dump and after any XFRM change of
//     this Reconciler that failed (it may have been half-applied); the next
//     user dumps again;
//   - while valid, the model holds every SA and policy bpfvpn owns in the
//     namespace, provided the Reconciler is their only writer (one daemon
//     per namespace); objects an earlier daemon left are in it from the
//     dump. An entry may be stale when the kernel deleted the SA itself (a
//     hard lifetime): deleting it again finds nothing, which is not an
//     error;
//   - only objects whose if_id and reqid are bpfvpn's (tunnelOfXfrm) are
//     ever in it, so nothing it lists belongs to anyone else.
type xfrmModel struct {
	valid bool
	units map[int]*unitXfrm // by st0 unit
}

// unitXfrm are one unit's objects, its multipoint peers' included.
type unitXfrm struct {
	sas  map[saID]obsSA
	pols map[polKey]obsPolicy
}

// polKey identifies a policy: the kernel's key is the selector, direction
// and if_id, and the if_id follows from unit and peer.
type polKey struct {
	peer int
	sel  selectorKey
}

func (m *xfrmModel) reset(sas []obsSA, pols []obsPolicy) {
	m.units = map[int]*unitXfrm{}
	m.valid = true
	for _, sa := range sas {
		m.addSA(sa)
	}
	for _, p := range pols {
		m.addPolicy(p)
	}
}

func (m *xfrmModel) invalidate() {
	m.valid = false
	m.units = nil
}

func (m *xfrmModel) unit(u int) *unitXfrm {
	x := m.units[u]
	if x == nil {
		x = &unitXfrm{sas: map[saID]obsSA{}, pols: map[polKey]obsPolicy{}}
		m.units[u] = x
	}
	return x
}

func (m *xfrmModel) addSA(sa obsSA) {
	if m.valid {
		m.unit(sa.Unit).sas[saID{sa.Dst, sa.SPI}] = sa
	}
}

func (m *xfrmModel) deleteSA(sa obsSA) {
	if x := m.units[sa.Unit]; m.valid && x != nil {
		delete(x.sas, saID{sa.Dst, sa.SPI})
		m.dropEmpty(sa.Unit, x)
	}
}

func (m *xfrmModel) dropEmpty(u int, x *unitXfrm) {
	if len(x.sas) == 0 && len(x.pols) == 0 {
		delete(m.units, u)
	}
}

func (m *xfrmModel) addPolicy(p obsPolicy) {
	if m.valid {
		m.unit(p.Unit).pols[polKey{p.Peer, p.selKey()}] = p
	}
}

func (m *xfrmModel) deletePolicy(p obsPolicy) {
	if x := m.units[p.Unit]; m.valid && x != nil {
		delete(x.pols, polKey{p.Peer, p.selKey()})
		m.dropEmpty(p.Unit, x)
	}
}

// tunnel returns the SAs and policies of unit's peer, or of all its
// tunnels when all is set, in a stable order. The model must be valid.
func (m *xfrmModel) tunnel(unit, peer int, all bool) ([]obsSA, []obsPolicy) {
	x := m.units[unit]
	if x == nil {
		return nil, nil
	}
	var sas []obsSA
	for _, sa := range x.sas {
		if all || sa.Peer == peer {
			sas = append(sas, sa)
		}
	}
	var pols []obsPolicy
	for _, p := range x.pols {
		if all || p.Peer == peer {
			pols = append(pols, p)
		}
	}
	slices.SortFunc(sas, func(a, b obsSA) int {
		return cmp.Or(cmp.Compare(a.Peer, b.Peer), a.Dst.Compare(b.Dst), cmp.Compare(a.SPI, b.SPI))
	})
	slices.SortFunc(pols, func(a, b obsPolicy) int {
		return cmp.Or(cmp.Compare(a.Peer, b.Peer), cmp.Compare(a.Dir, b.Dir), a.Src.Addr().Compare(b.Src.Addr()),
			cmp.Compare(a.Src.Bits(), b.Src.Bits()), a.Dst.Addr().Compare(b.Dst.Addr()), cmp.Compare(a.Dst.Bits(), b.Dst.Bits()),
			cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.SrcPort, b.SrcPort), cmp.Compare(a.DstPort, b.DstPort))
	})
	return sas, pols
}
