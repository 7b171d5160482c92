package ikev2

import (
	"crypto/hmac"
	"fmt"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
)

func newAuthExchange(s *ikeSA) *exchange {
	return &exchange{typ: IKE_AUTH, tasks: []task{&ikeAuthTask{}, &childCreateTask{initial: true}}}
}

// ikeAuthTask exchanges identities and PSK AUTH payloads (RFC 7296 §2.15).
type ikeAuthTask struct {
	peerID         Identity
	initialContact bool
}

func (t *ikeAuthTask) buildI(s *ikeSA, now time.Time, out *[]Payload) error {
	id, err := s.conn.LocalID.payload(false)
	if err != nil {
		return err
	}
	auth := pskAuth(s.keys.prf, s.conn.PSK, s.initReq, s.nr, s.keys.pi, idBody(id))
	*out = append(*out, id)
	if s.conn.RemoteID.Value != "" {
		if idr, err := s.conn.RemoteID.payload(true); err == nil {
			*out = append(*out, idr)
		}
	}
	*out = append(*out, &Auth{Method: AuthPSK, Data: auth})
	s.windowNotify(out)
	// INITIAL_CONTACT only when we hold no other SA with this peer, so two
	// SAs set up at the same time from both ends do not drop each other.
	if !s.e.hasOtherSA(s) {
		*out = append(*out, notifyPayload(INITIAL_CONTACT, nil))
	}
	return nil
}

func (t *ikeAuthTask) processI(s *ikeSA, now time.Time, in []Payload) error {
	if n := findNotify(in, AUTHENTICATION_FAILED); n != nil {
		return fatal(0, &NotifyError{Type: AUTHENTICATION_FAILED, Exchange: IKE_AUTH, FromPeer: true})
	}
	id, _ := findPayload(in, PayloadIDr).(*ID)
	auth, _ := findPayload(in, PayloadAUTH).(*Auth)
	if id == nil || auth == nil {
		if n := firstError(in); n != nil {
			return fatal(0, &NotifyError{Type: n.NotifyType, Exchange: IKE_AUTH, FromPeer: true})
		}
		return fatal(0, fmt.Errorf("IKE_AUTH response lacks IDr or AUTH"))
	}
	peer := identityOf(id)
	if !s.conn.RemoteID.matches(peer) {
		return fatal(0, fmt.Errorf("IKE_AUTH: peer identity %q is not the configured %q: %w", peer.Value, s.conn.RemoteID.Value, &NotifyError{Type: AUTHENTICATION_FAILED, Exchange: IKE_AUTH}))
	}
	want := pskAuth(s.keys.prf, s.conn.PSK, s.initResp, s.ni, s.keys.pr, idBody(id))
	if auth.Method != AuthPSK || !hmac.Equal(want, auth.Data) {
		return fatal(0, fmt.Errorf("IKE_AUTH: %w", &NotifyError{Type: AUTHENTICATION_FAILED, Exchange: IKE_AUTH}))
	}
	t.peerID = peer
	s.noteWindow(in)
	s.established = now
	s.setUp(now, peer)
	return nil
}

func (t *ikeAuthTask) processR(s *ikeSA, now time.Time, in []Payload) error {
	id, _ := findPayload(in, PayloadIDi).(*ID)
	auth, _ := findPayload(in, PayloadAUTH).(*Auth)
	if id == nil || auth == nil {
		return fatal(AUTHENTICATION_FAILED, fmt.Errorf("IKE_AUTH request lacks IDi or AUTH"))
	}
	peer := identityOf(id)
	body := idBody(id)
	// Among the connections this peer may use, the one whose identity and
	// PSK produce the received AUTH value authenticates it.
	for _, c := range s.e.conns {
		if c.Remote.Addr().IsValid() && !c.Remote.Addr().IsUnspecified() && c.Remote.Addr() != s.remote.Addr() {
			continue
		}
		if !c.RemoteID.matches(peer) {
			continue
		}
		if _, _, ok := selectIKE(&SA{Proposals: []Proposal{ikeChosen(1, nil, s.algs)}}, c.IKEProposals, s.algs.DH); !ok {
			continue
		}
		want := pskAuth(s.keys.prf, c.PSK, s.initReq, s.nr, s.keys.pi, body)
		if auth.Method == AuthPSK && hmac.Equal(want, auth.Data) {
			s.conn = c
			t.peerID = peer
			t.initialContact = findNotify(in, INITIAL_CONTACT) != nil
			s.noteWindow(in)
			return nil
		}
	}
	return fatal(AUTHENTICATION_FAILED, &NotifyError{Type: AUTHENTICATION_FAILED, Exchange: IKE_AUTH})
}

func (t *ikeAuthTask) buildR(s *ikeSA, now time.Time, out *[]Payload) error {
	id, err := s.conn.LocalID.payload(true)
	if err != nil {
		return err
	}
	auth := pskAuth(s.keys.prf, s.conn.PSK, s.initResp, s.ni, s.keys.pr, idBody(id))
	*out = append(*out, id, &Auth{Method: AuthPSK, Data: auth})
	s.windowNotify(out)
	s.established = now
	s.setUp(now, t.peerID)
	return nil
}

// setUp marks the IKE SA established and arms its timers.
func (s *ikeSA) setUp(now time.Time, peer Identity) {
	if !s.initiator && !s.halfOpenAt.IsZero() {
		s.e.halfOpen--
	}
	s.halfOpenAt = time.Time{}
	s.state = ike.StateEstablished
	s.peerID = peer
	s.armIKELifetime(now)
	if s.conn.DPDInterval > 0 {
		s.dpdAt = now.Add(s.conn.DPDInterval)
	}
	if s.natLocal {
		s.keepaliveAt = now.Add(s.conn.KeepaliveInterval)
	}
	s.e.cfg.Sink.IKESAChanged(s.status(now))
	s.e.log.Info("IKE SA established", "connection", s.conn.Name, "index", s.index, "remote", s.remote,
		"peer_id", peer.Value, "suite", s.algs.String(), "role", roleOf(s.initiator))
}

func roleOf(initiator bool) string {
	if initiator {
		return "initiator"
	}
	return "responder"
}

func (s *ikeSA) armIKELifetime(now time.Time) {
	life := s.conn.IKELifetime
	s.expireAt = now.Add(life)
	// Only one side needs to rekey; both arm a timer and the jitter makes
	// collisions rare (and handled when they happen).
	s.rekeyAt = now.Add(s.e.jitter(life-s.conn.margin(life), s.conn.RekeyJitter/10))
}

// afterResponse honours INITIAL_CONTACT: the peer restarted, so its older
// IKE SAs (and their CHILD SAs) with this connection are gone on its side.
func (t *ikeAuthTask) afterResponse(s *ikeSA, now time.Time) {
	if !t.initialContact || s.conn.KeepOnInitialContact || s.state != ike.StateEstablished {
		return
	}
	for _, o := range s.e.sas {
		if o != s && !o.dead && o.conn.Name == s.conn.Name && o.peerID == s.peerID && o.remote.Addr() == s.remote.Addr() && o.state != ike.StateConnecting {
			s.e.log.Info("INITIAL_CONTACT: dropping the peer's older IKE SA", "connection", s.conn.Name, "index", o.index)
			o.destroy(now, "replaced after INITIAL_CONTACT")
		}
	}
}
