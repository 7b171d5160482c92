package isakmp

import (
	"encoding/binary"
	"fmt"
)

// SA is the Security Association payload (RFC 2408 §3.4) of the IPsec DOI.
type SA struct {
	DOI       uint32
	Situation uint32
	Proposals []Proposal
}

// Proposal is a proposal payload (RFC 2408 §3.5). Proposals of one SA
// payload that share a Number are combined (AND); distinct numbers are
// alternatives.
type Proposal struct {
	Number     uint8
	Protocol   ProtocolID
	SPI        []byte
	Transforms []Transform
}

// Transform is a transform payload (RFC 2408 §3.6). Transforms of one
// proposal are alternatives.
type Transform struct {
	Number     uint8
	ID         uint8
	Attributes []Attribute
}

// Attr returns the first attribute of type t.
func (t Transform) Attr(at AttrType) (Attribute, bool) {
	for _, a := range t.Attributes {
		if a.Type == at {
			return a, true
		}
	}
	return Attribute{}, false
}

// Type implements Payload.
func (*SA) Type() PayloadType { return PayloadSA }

// AppendBody implements Payload.
func (s *SA) AppendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, s.DOI)
	b = binary.BigEndian.AppendUint32(b, s.Situation)
	for i := range s.Proposals {
		next := PayloadNone
		if i+1 < len(s.Proposals) {
			next = PayloadProposal
		}
		b = AppendPayload(b, next, &s.Proposals[i])
	}
	return b
}

// Type implements Payload.
func (*Proposal) Type() PayloadType { return PayloadProposal }

// AppendBody implements Payload.
func (p *Proposal) AppendBody(b []byte) []byte {
	b = append(b, p.Number, byte(p.Protocol), byte(len(p.SPI)), byte(len(p.Transforms)))
	b = append(b, p.SPI...)
	for i := range p.Transforms {
		next := PayloadNone
		if i+1 < len(p.Transforms) {
			next = PayloadTransform
		}
		b = AppendPayload(b, next, &p.Transforms[i])
	}
	return b
}

// Type implements Payload.
func (*Transform) Type() PayloadType { return PayloadTransform }

// AppendBody implements Payload.
func (t *Transform) AppendBody(b []byte) []byte {
	b = append(b, t.Number, t.ID, 0, 0)
	return AppendAttributes(b, t.Attributes)
}

// ParseSA decodes the body of an SA payload. Situations other than
// SIT_IDENTITY_ONLY carry extra fields and are refused.
func ParseSA(body []byte) (*SA, error) {
	if len(body) < 8 {
		return nil, fmt.Errorf("SA payload: %d bytes: %w", len(body), ErrTruncated)
	}
	s := &SA{DOI: binary.BigEndian.Uint32(body), Situation: binary.BigEndian.Uint32(body[4:])}
	if s.DOI != DOIIPsec {
		return nil, fmt.Errorf("SA payload: DOI %d not supported: %w", s.DOI, ErrMalformed)
	}
	if s.Situation != SituationIdentityOnly {
		return nil, fmt.Errorf("SA payload: situation %#x not supported: %w", s.Situation, ErrMalformed)
	}
	ps, rest, err := ParseChain(PayloadProposal, body[8:])
	if err != nil {
		return nil, fmt.Errorf("SA payload: %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("SA payload: %d bytes after proposals: %w", len(rest), ErrTrailing)
	}
	for _, rp := range ps {
		if rp.Type != PayloadProposal {
			return nil, fmt.Errorf("SA payload: %s inside proposal chain: %w", rp.Type, ErrMalformed)
		}
		p, err := parseProposal(rp.Body)
		if err != nil {
			return nil, fmt.Errorf("SA payload: %w", err)
		}
		s.Proposals = append(s.Proposals, p)
	}
	return s, nil
}

func parseProposal(b []byte) (Proposal, error) {
	if len(b) < 4 {
		return Proposal{}, fmt.Errorf("proposal: %d bytes: %w", len(b), ErrTruncated)
	}
	p := Proposal{Number: b[0], Protocol: ProtocolID(b[1])}
	spiLen, nt := int(b[2]), int(b[3])
	b = b[4:]
	if spiLen > len(b) {
		return p, fmt.Errorf("proposal %d: SPI size %d exceeds payload: %w", p.Number, spiLen, ErrTruncated)
	}
	p.SPI = b[:spiLen]
	ts, rest, err := ParseChain(PayloadTransform, b[spiLen:])
	if err != nil {
		return p, fmt.Errorf("proposal %d: %w", p.Number, err)
	}
	if len(rest) != 0 {
		return p, fmt.Errorf("proposal %d: %d bytes after transforms: %w", p.Number, len(rest), ErrTrailing)
	}
	if len(ts) != nt {
		return p, fmt.Errorf("proposal %d: announces %d transforms, carries %d: %w", p.Number, nt, len(ts), ErrMalformed)
	}
	for _, rt := range ts {
		if rt.Type != PayloadTransform {
			return p, fmt.Errorf("proposal %d: %s inside transform chain: %w", p.Number, rt.Type, ErrMalformed)
		}
		if len(rt.Body) < 4 {
			return p, fmt.Errorf("proposal %d: transform of %d bytes: %w", p.Number, len(rt.Body), ErrTruncated)
		}
		attrs, err := ParseAttributes(rt.Body[4:])
		if err != nil {
			return p, fmt.Errorf("proposal %d transform %d: %w", p.Number, rt.Body[0], err)
		}
		p.Transforms = append(p.Transforms, Transform{Number: rt.Body[0], ID: rt.Body[1], Attributes: attrs})
	}
	return p, nil
}
