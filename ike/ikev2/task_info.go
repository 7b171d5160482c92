package ikev2

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
)

// dpdTask is an empty INFORMATIONAL request: a liveness check.
type dpdTask struct{}

func (dpdTask) buildI(*ikeSA, time.Time, *[]Payload) error  { return nil }
func (dpdTask) processI(*ikeSA, time.Time, []Payload) error { return nil }
func (dpdTask) processR(*ikeSA, time.Time, []Payload) error { return nil }
func (dpdTask) buildR(*ikeSA, time.Time, *[]Payload) error  { return nil }

// ikeDeleteTask deletes the IKE SA and with it every CHILD SA.
type ikeDeleteTask struct{}

func (s *ikeSA) queueDeleteIKE(now time.Time) {
	if s.state == ike.StateDeleting || s.dead {
		return
	}
	s.state = ike.StateDeleting
	s.rekeyAt, s.dpdAt = time.Time{}, time.Time{}
	s.enqueue(now, &exchange{typ: INFORMATIONAL, tasks: []task{ikeDeleteTask{}}})
}

func (ikeDeleteTask) buildI(s *ikeSA, now time.Time, out *[]Payload) error {
	*out = append(*out, &Delete{Protocol: ProtoIKE})
	return nil
}

func (ikeDeleteTask) processI(s *ikeSA, now time.Time, in []Payload) error {
	s.destroy(now, "deleted")
	return nil
}

func (ikeDeleteTask) processR(*ikeSA, time.Time, []Payload) error { return nil }
func (ikeDeleteTask) buildR(*ikeSA, time.Time, *[]Payload) error  { return nil }

// childDeleteTask deletes one CHILD SA pair (RFC 7296 §1.4.1).
type childDeleteTask struct {
	c *child
}

func (s *ikeSA) queueDeleteChild(now time.Time, c *child) {
	c.state = childDeleting
	c.rekeyAt = time.Time{}
	s.enqueue(now, &exchange{typ: INFORMATIONAL, tasks: []task{&childDeleteTask{c: c}}})
}

func (t *childDeleteTask) buildI(s *ikeSA, now time.Time, out *[]Payload) error {
	*out = append(*out, &Delete{Protocol: ProtoESP, SPISize: 4, SPIs: [][]byte{binary.BigEndian.AppendUint32(nil, t.c.sa.SPIIn)}})
	return nil
}

func (t *childDeleteTask) processI(s *ikeSA, now time.Time, in []Payload) error {
	if s.findChild(t.c) >= 0 {
		s.deleteChildLocally(now, t.c, "deleted")
	}
	return nil
}

func (t *childDeleteTask) processR(*ikeSA, time.Time, []Payload) error { return nil }
func (t *childDeleteTask) buildR(*ikeSA, time.Time, *[]Payload) error  { return nil }

// informationalTask answers an INFORMATIONAL request: deletes and liveness.
type informationalTask struct {
	deleteIKE bool
	ourSPIs   [][]byte
}

func (t *informationalTask) buildI(*ikeSA, time.Time, *[]Payload) error  { return nil }
func (t *informationalTask) processI(*ikeSA, time.Time, []Payload) error { return nil }

func (t *informationalTask) processR(s *ikeSA, now time.Time, in []Payload) error {
	s.noteWindow(in) // RFC 7296 §2.3: the window may be announced after IKE_AUTH
	for _, p := range in {
		switch v := p.(type) {
		case *Delete:
			switch v.Protocol {
			case ProtoIKE:
				t.deleteIKE = true
			case ProtoESP, ProtoAH:
				if v.SPISize != 4 {
					continue
				}
				for _, spi := range v.SPIs {
					c := s.childByOutSPI(binary.BigEndian.Uint32(spi))
					if c == nil {
						continue
					}
					if c.state != childDeleting {
						t.ourSPIs = append(t.ourSPIs, binary.BigEndian.AppendUint32(nil, c.sa.SPIIn))
					}
					s.deleteChildLocally(now, c, "deleted by peer")
				}
			}
		case *Notify:
			if v.NotifyType.IsError() {
				s.e.log.Info("error notification from peer", "connection", s.conn.Name, "notify", v.NotifyType.String())
			}
			if v.NotifyType == AUTHENTICATION_FAILED {
				// The initiator rejected our AUTH: the SA is dead on its side.
				s.e.fail(s.conn, &NotifyError{Type: AUTHENTICATION_FAILED, Exchange: INFORMATIONAL, FromPeer: true})
				t.deleteIKE = true
			}
		}
	}
	return nil
}

func (t *informationalTask) buildR(s *ikeSA, now time.Time, out *[]Payload) error {
	if !t.deleteIKE && len(t.ourSPIs) > 0 {
		*out = append(*out, &Delete{Protocol: ProtoESP, SPISize: 4, SPIs: t.ourSPIs})
	}
	return nil
}

func (t *informationalTask) afterResponse(s *ikeSA, now time.Time) {
	if t.deleteIKE {
		s.destroy(now, "deleted by peer")
	}
}

// notifyTask answers a request with one notification.
type notifyTask struct{ n NotifyType }

func (t notifyTask) buildI(*ikeSA, time.Time, *[]Payload) error  { return nil }
func (t notifyTask) processI(*ikeSA, time.Time, []Payload) error { return nil }
func (t notifyTask) processR(*ikeSA, time.Time, []Payload) error { return nil }
func (t notifyTask) buildR(s *ikeSA, now time.Time, out *[]Payload) error {
	*out = append(*out, notifyPayload(t.n, nil))
	return nil
}

// responderTasks composes the tasks that answer a request.
func (s *ikeSA) responderTasks(now time.Time, ex ExchangeType, in []Payload) ([]task, error) {
	switch ex {
	case IKE_AUTH:
		if s.initiator || s.state != ike.StateConnecting {
			return nil, fatal(INVALID_SYNTAX, fmt.Errorf("unexpected IKE_AUTH"))
		}
		return []task{&ikeAuthTask{}, &childCreateTask{initial: true}}, nil
	case CREATE_CHILD_SA:
		if s.state != ike.StateEstablished && s.state != ike.StateRekeying {
			return []task{notifyTask{TEMPORARY_FAILURE}}, nil
		}
		if findNotify(in, REKEY_SA) != nil {
			return []task{&childRekeyTask{}}, nil
		}
		if sa, ok := findPayload(in, PayloadSA).(*SA); ok && len(sa.Proposals) > 0 && sa.Proposals[0].Protocol == ProtoIKE {
			return []task{&ikeRekeyTask{}}, nil
		}
		if s.replacedBy != nil {
			return []task{notifyTask{TEMPORARY_FAILURE}}, nil
		}
		return []task{&childCreateTask{pfs: true}}, nil
	case INFORMATIONAL:
		if s.state == ike.StateConnecting {
			return nil, fatal(0, fmt.Errorf("INFORMATIONAL before authentication"))
		}
		return []task{&informationalTask{}}, nil
	}
	return nil, fatal(0, fmt.Errorf("unknown exchange %v", ex))
}
