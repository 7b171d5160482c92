package ikev2

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// ikeAlgs is a negotiated IKE SA suite.
type ikeAlgs struct {
	Encr  suite.Encr
	PRF   suite.PRFID
	Integ suite.IntegID // IntegNone with AEAD
	DH    suite.DHGroup
}

func (a ikeAlgs) String() string {
	s := a.Encr.String() + "/" + a.PRF.String()
	if a.Integ != suite.IntegNone {
		s += "/" + a.Integ.String()
	}
	return s + "/" + a.DH.String()
}

// childAlgs is a negotiated ESP suite.
type childAlgs struct {
	Encr  suite.Encr
	Integ suite.IntegID
	DH    suite.DHGroup // PFS group, DHNone without
	ESN   bool
}

func encrTransform(e suite.Encr) Transform {
	return Transform{Type: uint8(suite.TransformENCR), ID: uint16(e.ID), KeyLen: uint16(e.KeyBits)}
}

// ikeProposals builds the SA payload of an IKE SA proposal; spi is empty in
// IKE_SA_INIT and our new SPI when rekeying.
func ikeProposals(ps []IKEProposal, spi []byte) *SA {
	sa := &SA{}
	for i, p := range ps {
		pr := Proposal{Num: uint8(i + 1), Protocol: ProtoIKE, SPI: spi}
		for _, e := range p.Encryption {
			pr.Transforms = append(pr.Transforms, encrTransform(e))
		}
		for _, f := range p.PRF {
			pr.Transforms = append(pr.Transforms, Transform{Type: uint8(suite.TransformPRF), ID: uint16(f)})
		}
		for _, in := range p.Integrity {
			pr.Transforms = append(pr.Transforms, Transform{Type: uint8(suite.TransformINTEG), ID: uint16(in)})
		}
		for _, g := range p.DH {
			pr.Transforms = append(pr.Transforms, Transform{Type: uint8(suite.TransformKE), ID: uint16(g)})
		}
		sa.Proposals = append(sa.Proposals, pr)
	}
	return sa
}

// childProposals builds an ESP SA payload with our inbound SPI; withDH
// adds the PFS groups (CREATE_CHILD_SA only).
func childProposals(ps []ChildProposal, spi uint32, withDH bool) *SA {
	sa := &SA{}
	s := binary.BigEndian.AppendUint32(nil, spi)
	for i, p := range ps {
		pr := Proposal{Num: uint8(i + 1), Protocol: ProtoESP, SPI: s}
		for _, e := range p.Encryption {
			pr.Transforms = append(pr.Transforms, encrTransform(e))
		}
		for _, in := range p.Integrity {
			pr.Transforms = append(pr.Transforms, Transform{Type: uint8(suite.TransformINTEG), ID: uint16(in)})
		}
		if withDH {
			for _, g := range p.DH {
				pr.Transforms = append(pr.Transforms, Transform{Type: uint8(suite.TransformKE), ID: uint16(g)})
			}
		}
		esn := p.ESN
		if len(esn) == 0 {
			esn = []suite.ESNID{suite.ESNNo}
		}
		for _, e := range esn {
			pr.Transforms = append(pr.Transforms, Transform{Type: uint8(suite.TransformESN), ID: uint16(e)})
		}
		sa.Proposals = append(sa.Proposals, pr)
	}
	return sa
}

// offered groups the transforms of one received proposal by type.
type offered map[uint8][]Transform

func group(p Proposal) offered {
	o := offered{}
	for _, t := range p.Transforms {
		o[t.Type] = append(o[t.Type], t)
	}
	return o
}

// pick returns the first offered transform of type t accepted by ok.
func (o offered) pick(t suite.TransformType, ok func(Transform) bool) (Transform, bool) {
	for _, tr := range o[uint8(t)] {
		if ok(tr) {
			return tr, true
		}
	}
	return Transform{}, false
}

// pickEncr returns the first offered encryption (algorithm and key length)
// that is one of ours.
func (o offered) pickEncr(ours []suite.Encr) (suite.Encr, bool) {
	encr := func(t Transform) suite.Encr { return suite.Encr{ID: suite.EncrID(t.ID), KeyBits: int(t.KeyLen)} }
	t, ok := o.pick(suite.TransformENCR, func(t Transform) bool { return slices.Contains(ours, encr(t)) })
	return encr(t), ok
}

// selectIKE chooses an IKE suite from the peer's proposals. keGroup is the
// group of the peer's KE payload: preferred when acceptable. It returns the
// chosen proposal (number and SPI kept) for the response.
func selectIKE(peer *SA, ours []IKEProposal, keGroup suite.DHGroup) (ikeAlgs, Proposal, bool) {
	for _, pp := range peer.Proposals {
		if pp.Protocol != ProtoIKE {
			continue
		}
		o := group(pp)
		for _, my := range ours {
			var a ikeAlgs
			var ok bool
			if a.Encr, ok = o.pickEncr(my.Encryption); !ok {
				continue
			}
			pt, ok := o.pick(suite.TransformPRF, func(t Transform) bool { return slices.Contains(my.PRF, suite.PRFID(t.ID)) })
			if !ok {
				continue
			}
			a.PRF = suite.PRFID(pt.ID)
			if !a.Encr.AEAD() {
				it, ok := o.pick(suite.TransformINTEG, func(t Transform) bool { return slices.Contains(my.Integrity, suite.IntegID(t.ID)) })
				if !ok {
					continue
				}
				a.Integ = suite.IntegID(it.ID)
			} else if _, has := o[uint8(suite.TransformINTEG)]; has {
				// AEAD with an integrity transform is only valid as INTEG NONE.
				if _, ok := o.pick(suite.TransformINTEG, func(t Transform) bool { return t.ID == 0 }); !ok {
					continue
				}
			}
			dt, ok := o.pick(suite.TransformKE, func(t Transform) bool {
				return suite.DHGroup(t.ID) == keGroup && slices.Contains(my.DH, keGroup)
			})
			if !ok {
				dt, ok = o.pick(suite.TransformKE, func(t Transform) bool { return slices.Contains(my.DH, suite.DHGroup(t.ID)) })
			}
			if !ok {
				continue
			}
			a.DH = suite.DHGroup(dt.ID)
			return a, ikeChosen(pp.Num, pp.SPI, a), true
		}
	}
	return ikeAlgs{}, Proposal{}, false
}

func ikeChosen(num uint8, spi []byte, a ikeAlgs) Proposal {
	p := Proposal{Num: num, Protocol: ProtoIKE, SPI: spi, Transforms: []Transform{encrTransform(a.Encr),
		{Type: uint8(suite.TransformPRF), ID: uint16(a.PRF)}}}
	if a.Integ != suite.IntegNone {
		p.Transforms = append(p.Transforms, Transform{Type: uint8(suite.TransformINTEG), ID: uint16(a.Integ)})
	}
	return appendDH(p, a.DH)
}

func appendDH(p Proposal, g suite.DHGroup) Proposal {
	if g != suite.DHNone {
		p.Transforms = append(p.Transforms, Transform{Type: uint8(suite.TransformKE), ID: uint16(g)})
	}
	return p
}

// parseChosenIKE reads the responder's single chosen IKE proposal and checks
// it against what we offered.
func parseChosenIKE(sa *SA, ours []IKEProposal) (ikeAlgs, []byte, error) {
	if sa == nil || len(sa.Proposals) != 1 || sa.Proposals[0].Protocol != ProtoIKE {
		return ikeAlgs{}, nil, fmt.Errorf("response must carry exactly one IKE proposal")
	}
	a, p, ok := selectIKE(sa, ours, suite.DHNone)
	if !ok {
		return ikeAlgs{}, nil, fmt.Errorf("responder chose a proposal we did not offer")
	}
	if n := len(sa.Proposals[0].Transforms); n != len(p.Transforms) {
		return ikeAlgs{}, nil, fmt.Errorf("responder chose %d transforms, want one per type", n)
	}
	return a, sa.Proposals[0].SPI, nil
}

// selectChild chooses an ESP suite; withDH demands the PFS group of the
// peer's KE (keGroup) or, with no KE, no group at all.
func selectChild(peer *SA, ours []ChildProposal, withDH bool, keGroup suite.DHGroup) (childAlgs, Proposal, bool) {
	for _, pp := range peer.Proposals {
		if pp.Protocol != ProtoESP || len(pp.SPI) != 4 {
			continue
		}
		o := group(pp)
		for _, my := range ours {
			var a childAlgs
			var ok bool
			if a.Encr, ok = o.pickEncr(my.Encryption); !ok {
				continue
			}
			if !a.Encr.AEAD() {
				it, ok := o.pick(suite.TransformINTEG, func(t Transform) bool { return slices.Contains(my.Integrity, suite.IntegID(t.ID)) })
				if !ok {
					continue
				}
				a.Integ = suite.IntegID(it.ID)
			}
			if withDH {
				offeredDH := len(o[uint8(suite.TransformKE)]) > 0
				switch {
				case keGroup != suite.DHNone:
					if _, ok := o.pick(suite.TransformKE, func(t Transform) bool { return suite.DHGroup(t.ID) == keGroup }); !ok || !slices.Contains(my.DH, keGroup) {
						// Pick any group we share so the caller can answer INVALID_KE_PAYLOAD.
						dt, ok := o.pick(suite.TransformKE, func(t Transform) bool { return slices.Contains(my.DH, suite.DHGroup(t.ID)) })
						if !ok {
							continue
						}
						a.DH = suite.DHGroup(dt.ID)
					} else {
						a.DH = keGroup
					}
				case offeredDH && len(my.DH) > 0:
					dt, ok := o.pick(suite.TransformKE, func(t Transform) bool { return slices.Contains(my.DH, suite.DHGroup(t.ID)) })
					if !ok {
						continue
					}
					a.DH = suite.DHGroup(dt.ID)
				case len(my.DH) > 0:
					continue // we require PFS, the peer offers none
				}
			}
			esnOK := func(want suite.ESNID) bool {
				if len(o[uint8(suite.TransformESN)]) == 0 {
					return want == suite.ESNNo
				}
				_, ok := o.pick(suite.TransformESN, func(t Transform) bool { return suite.ESNID(t.ID) == want })
				return ok
			}
			mine := my.ESN
			if len(mine) == 0 {
				mine = []suite.ESNID{suite.ESNNo}
			}
			found := false
			for _, e := range mine {
				if esnOK(e) {
					a.ESN, found = e == suite.ESNYes, true
					break
				}
			}
			if !found {
				continue
			}
			return a, childChosen(pp.Num, pp.SPI, a), true
		}
	}
	return childAlgs{}, Proposal{}, false
}

func childChosen(num uint8, spi []byte, a childAlgs) Proposal {
	p := Proposal{Num: num, Protocol: ProtoESP, SPI: spi, Transforms: []Transform{encrTransform(a.Encr)}}
	if a.Integ != suite.IntegNone {
		p.Transforms = append(p.Transforms, Transform{Type: uint8(suite.TransformINTEG), ID: uint16(a.Integ)})
	}
	p = appendDH(p, a.DH)
	esn := suite.ESNNo
	if a.ESN {
		esn = suite.ESNYes
	}
	p.Transforms = append(p.Transforms, Transform{Type: uint8(suite.TransformESN), ID: uint16(esn)})
	return p
}

// parseChosenChild reads the responder's chosen ESP proposal and its SPI.
func parseChosenChild(sa *SA, ours []ChildProposal, withDH bool, keGroup suite.DHGroup) (childAlgs, uint32, error) {
	if sa == nil || len(sa.Proposals) != 1 || sa.Proposals[0].Protocol != ProtoESP || len(sa.Proposals[0].SPI) != 4 {
		return childAlgs{}, 0, fmt.Errorf("response must carry exactly one ESP proposal")
	}
	a, _, ok := selectChild(sa, ours, withDH, keGroup)
	if !ok {
		return childAlgs{}, 0, fmt.Errorf("responder chose an ESP proposal we did not offer")
	}
	return a, binary.BigEndian.Uint32(sa.Proposals[0].SPI), nil
}
