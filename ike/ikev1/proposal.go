package ikev1

import (
	"fmt"
	"time"

	"github.com/bpfvpn/bpfvpn/ike/ikev1/isakmp"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// phase1Attrs are the attributes of one phase-1 transform.
type phase1Attrs struct {
	prop     Phase1Proposal
	auth     uint16
	lifetime time.Duration // 0: none given
}

func phase1EncValue(e suite.Encr) uint16 {
	if e.ID == suite.Encr3DES {
		return isakmp.Enc3DES
	}
	return isakmp.EncAESCBC
}

// phase1SA builds the initiator's SA payload: one ISAKMP proposal whose
// transforms are the configured proposals.
func phase1SA(props []Phase1Proposal) *isakmp.SA {
	p := isakmp.Proposal{Number: 1, Protocol: isakmp.ProtoISAKMP}
	for i, x := range props {
		attrs := []isakmp.Attribute{isakmp.BasicAttr(isakmp.AttrEncryption, phase1EncValue(x.Encryption))}
		if x.Encryption.ID == suite.EncrAESCBC {
			attrs = append(attrs, isakmp.BasicAttr(isakmp.AttrKeyLength, uint16(x.Encryption.KeyBits)))
		}
		attrs = append(attrs,
			isakmp.BasicAttr(isakmp.AttrHash, uint16(x.Hash)),
			isakmp.BasicAttr(isakmp.AttrAuthMethod, isakmp.AuthPSK),
			isakmp.BasicAttr(isakmp.AttrGroup, uint16(x.Group)),
			isakmp.BasicAttr(isakmp.AttrLifeType, isakmp.LifeSeconds),
			isakmp.UintAttr(isakmp.AttrLifeDuration, uint32(orDur(x.Lifetime, DefaultIKELifetime)/time.Second)),
		)
		p.Transforms = append(p.Transforms, isakmp.Transform{Number: uint8(i + 1), ID: isakmp.TransformKeyIKE, Attributes: attrs})
	}
	return &isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly, Proposals: []isakmp.Proposal{p}}
}

// parsePhase1Transform decodes a KEY_IKE transform. Unknown or unsupported
// values yield an error naming them.
func parsePhase1Transform(t isakmp.Transform) (phase1Attrs, error) {
	var a phase1Attrs
	if t.ID != isakmp.TransformKeyIKE {
		return a, fmt.Errorf("transform ID %d is not KEY_IKE", t.ID)
	}
	var enc, keyLen uint16
	var life saLife
	for _, at := range t.Attributes {
		v, err := at.Uint()
		if err != nil {
			return a, err
		}
		if life.take(phase1Life, at, v) {
			continue
		}
		switch at.Type {
		case isakmp.AttrEncryption:
			enc = uint16(v)
		case isakmp.AttrKeyLength:
			keyLen = uint16(v)
		case isakmp.AttrHash:
			a.prop.Hash = Hash(v)
		case isakmp.AttrAuthMethod:
			a.auth = uint16(v)
		case isakmp.AttrGroup:
			a.prop.Group = suite.DHGroup(v)
		case isakmp.AttrPRF:
			return a, fmt.Errorf("PRF attribute %d unsupported", v)
		default:
			return a, fmt.Errorf("attribute %d unsupported", at.Type)
		}
	}
	switch enc {
	case isakmp.EncAESCBC:
		if keyLen == 0 {
			keyLen = 128
		}
		a.prop.Encryption = suite.Encr{ID: suite.EncrAESCBC, KeyBits: int(keyLen)}
	case isakmp.Enc3DES:
		a.prop.Encryption = suite.Encr{ID: suite.Encr3DES}
	default:
		return a, fmt.Errorf("encryption %d unsupported", enc)
	}
	a.lifetime = life.secs
	a.prop.Lifetime = a.lifetime
	return a, nil
}

func (a phase1Attrs) matches(x Phase1Proposal) bool {
	return a.auth == isakmp.AuthPSK && a.prop.Encryption == x.Encryption && a.prop.Hash == x.Hash && a.prop.Group == x.Group
}

// selectPhase1 picks the first offered transform that matches a configured
// proposal (the initiator's preference order wins, as in strongSwan and
// Junos). It returns the offered proposal and transform to echo.
func selectPhase1(sa *isakmp.SA, cfg []Phase1Proposal) (isakmp.Proposal, isakmp.Transform, Phase1Proposal, time.Duration, error) {
	for _, p := range sa.Proposals {
		if p.Protocol != isakmp.ProtoISAKMP {
			continue
		}
		for _, t := range p.Transforms {
			a, err := parsePhase1Transform(t)
			if err != nil {
				continue
			}
			for _, x := range cfg {
				if a.matches(x) {
					return p, t, x, a.lifetime, nil
				}
			}
		}
	}
	return isakmp.Proposal{}, isakmp.Transform{}, Phase1Proposal{}, 0, fmt.Errorf("no acceptable phase-1 proposal among %s", describePhase1(sa))
}

func describePhase1(sa *isakmp.SA) string {
	s := ""
	for _, p := range sa.Proposals {
		for _, t := range p.Transforms {
			a, err := parsePhase1Transform(t)
			if s != "" {
				s += ", "
			}
			if err != nil {
				s += "(" + err.Error() + ")"
				continue
			}
			s += a.prop.String()
			if a.auth != isakmp.AuthPSK {
				s += fmt.Sprintf("/auth-%d", a.auth)
			}
		}
	}
	if s == "" {
		return "none"
	}
	return s
}

// espTransformID maps an encryption transform onto its ESP transform ID.
func espTransformID(e suite.Encr) (uint8, bool) {
	switch e.ID {
	case suite.Encr3DES:
		return isakmp.ESP3DES, true
	case suite.EncrAESCBC:
		return isakmp.ESPAESCBC, true
	case suite.EncrAESGCM8:
		return isakmp.ESPAESGCM8, true
	case suite.EncrAESGCM12:
		return isakmp.ESPAESGCM12, true
	case suite.EncrAESGCM16:
		return isakmp.ESPAESGCM16, true
	}
	return 0, false
}

func authAlgOf(i suite.IntegID) (uint16, bool) {
	switch i {
	case suite.IntegHMACSHA196:
		return isakmp.AuthAlgHMACSHA1, true
	case suite.IntegHMACSHA2256128:
		return isakmp.AuthAlgHMACSHA256, true
	case suite.IntegHMACSHA2384192:
		return isakmp.AuthAlgHMACSHA384, true
	case suite.IntegHMACSHA2512256:
		return isakmp.AuthAlgHMACSHA512, true
	}
	return 0, false
}

func integOfAuthAlg(v uint16) (suite.IntegID, bool) {
	switch v {
	case isakmp.AuthAlgHMACSHA1:
		return suite.IntegHMACSHA196, true
	case isakmp.AuthAlgHMACSHA256:
		return suite.IntegHMACSHA2256128, true
	case isakmp.AuthAlgHMACSHA384:
		return suite.IntegHMACSHA2384192, true
	case isakmp.AuthAlgHMACSHA512:
		return suite.IntegHMACSHA2512256, true
	}
	return 0, false
}

// phase2Attrs are the attributes of one ESP transform.
type phase2Attrs struct {
	prop     Phase2Proposal
	encap    uint16
	group    suite.DHGroup
	lifeSecs time.Duration // 0: none given
	lifeKB   uint64
}

// espSA builds the initiator's Quick Mode SA payload: one proposal per
// configured ESP proposal, each with one transform.
func espSA(props []Phase2Proposal, spi uint32, encap uint16, pfs suite.DHGroup) *isakmp.SA {
	sa := &isakmp.SA{DOI: isakmp.DOIIPsec, Situation: isakmp.SituationIdentityOnly}
	for i, x := range props {
		id, _ := espTransformID(x.Encryption)
		attrs := []isakmp.Attribute{
			isakmp.BasicAttr(isakmp.AttrSALifeType, isakmp.LifeSeconds),
			isakmp.UintAttr(isakmp.AttrSALifeDuration, uint32(orDur(x.Lifetime, DefaultIPsecLifetime)/time.Second)),
		}
		if x.LifeKilobytes > 0 {
			attrs = append(attrs, isakmp.BasicAttr(isakmp.AttrSALifeType, isakmp.LifeKilobytes),
				isakmp.UintAttr(isakmp.AttrSALifeDuration, uint32(min(x.LifeKilobytes, 1<<32-1))))
		}
		attrs = append(attrs, isakmp.BasicAttr(isakmp.AttrEncapMode, encap))
		if v, ok := authAlgOf(x.Integrity); ok {
			attrs = append(attrs, isakmp.BasicAttr(isakmp.AttrAuthAlg, v))
		}
		if x.Encryption.KeyBits != 0 {
			attrs = append(attrs, isakmp.BasicAttr(isakmp.AttrSAKeyLength, uint16(x.Encryption.KeyBits)))
		}
		if pfs != suite.DHNone {
			attrs = append(attrs, isakmp.BasicAttr(isakmp.AttrSAGroup, uint16(pfs)))
		}
		sa.Proposals = append(sa.Proposals, isakmp.Proposal{
			Number: uint8(i + 1), Protocol: isakmp.ProtoESP, SPI: spiBytes(spi),
			Transforms: []isakmp.Transform{{Number: 1, ID: id, Attributes: attrs}},
		})
	}
	return sa
}

func parseESPTransform(t isakmp.Transform) (phase2Attrs, error) {
	var a phase2Attrs
	var keyLen, authAlg uint16
	var life saLife
	for _, at := range t.Attributes {
		v, err := at.Uint()
		if err != nil {
			return a, err
		}
		if life.take(phase2Life, at, v) {
			continue
		}
		switch at.Type {
		case isakmp.AttrSAGroup:
			a.group = suite.DHGroup(v)
		case isakmp.AttrEncapMode:
			a.encap = uint16(v)
		case isakmp.AttrAuthAlg:
			authAlg = uint16(v)
		case isakmp.AttrSAKeyLength:
			keyLen = uint16(v)
		case isakmp.AttrESN:
			if v != 0 {
				return a, fmt.Errorf("extended sequence numbers unsupported")
			}
		default:
			return a, fmt.Errorf("attribute %d unsupported", at.Type)
		}
	}
	switch t.ID {
	case isakmp.ESP3DES:
		a.prop.Encryption = suite.Encr{ID: suite.Encr3DES}
	case isakmp.ESPAESCBC, isakmp.ESPAESGCM8, isakmp.ESPAESGCM12, isakmp.ESPAESGCM16:
		if keyLen == 0 {
			keyLen = 128
		}
		a.prop.Encryption = suite.Encr{ID: suite.EncrID(t.ID), KeyBits: int(keyLen)}
	default:
		return a, fmt.Errorf("ESP transform %d unsupported", t.ID)
	}
	if authAlg != 0 {
		i, ok := integOfAuthAlg(authAlg)
		if !ok {
			return a, fmt.Errorf("ESP authentication algorithm %d unsupported", authAlg)
		}
		a.prop.Integrity = i
	}
	if err := a.prop.Encryption.Validate(); err != nil {
		return a, err
	}
	if a.encap == 0 {
		a.encap = isakmp.EncapTunnel
	}
	a.lifeSecs, a.lifeKB = life.secs, life.kb
	return a, nil
}

func (a phase2Attrs) matches(x Phase2Proposal) bool {
	return a.prop.Encryption == x.Encryption && a.prop.Integrity == x.Integrity
}

// tunnelMode reports whether encap is a tunnel mode (plain or UDP-encapsulated).
func tunnelMode(encap uint16) bool {
	return encap == isakmp.EncapTunnel || encap == isakmp.EncapUDPTunnel || encap == isakmp.EncapUDPTunnelDraft
}

func spiBytes(spi uint32) []byte {
	return []byte{byte(spi >> 24), byte(spi >> 16), byte(spi >> 8), byte(spi)}
}
