package ikev2

import (
	"net/netip"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// request is one of our requests in flight on an IKE SA.
type request struct {
	ex       *exchange
	msgID    uint32
	packets  [][]byte
	tries    int
	maxTries int
	timeout  time.Duration
	retryAt  time.Time
}

// fragments collects the SKF fragments of one message.
type fragments struct {
	msgID    uint32
	response bool
	total    uint16
	first    PayloadType
	parts    map[uint16][]byte
	size     int
}

// ikeSA is one IKE SA and its CHILD SAs. All fields are guarded by the
// engine lock.
type ikeSA struct {
	e     *Engine
	conn  *Connection
	index uint64
	// initiator: we are the original initiator of this IKE SA (I flag).
	initiator bool
	spiI      uint64
	spiR      uint64
	state     ike.IKEState
	reason    string

	local, remote netip.AddrPort
	natLocal      bool // we are behind a NAT
	natRemote     bool // the peer is behind a NAT
	fragSupported bool // both ends announced RFC 7383
	childlessPeer bool // peer announced RFC 6023

	algs              ikeAlgs
	keys              *ikeKeys
	prot              *protector
	ke                suite.KeyExchange
	initReqSum        [32]byte // responder: digest of the IKE_SA_INIT request
	ready             bool     // responder: IKE_SA_INIT answered (see handleInitRequest)
	seenKey           initKey  // responder: its entry in Engine.initSeen
	keShared          bool     // ke is the engine's reused value: never wiped here
	ni                []byte
	nr                []byte
	initReq, initResp []byte // the IKE_SA_INIT messages AUTH covers
	cookie            []byte

	// Message IDs and windows (RFC 7296 §2.3, window.go).
	nextMsgID  uint32           // our next request
	peerMsgID  uint32           // the peer's lowest request not yet answered
	peerWindow uint32           // the peer's SET_WINDOW_SIZE (0: none, window one)
	responses  []cachedResponse // our answers the peer may retransmit for
	pending    []*request       // our requests in flight, by message ID
	queue      []*exchange
	fragIn     *fragments

	children []*child
	peerID   Identity

	established time.Time
	created     time.Time
	lastRecv    time.Time
	lastSend    time.Time
	dpdAt       time.Time
	keepaliveAt time.Time
	rekeyAt     time.Time
	expireAt    time.Time
	halfOpenAt  time.Time
	deleteAt    time.Time // old SA after a rekey: deleted if the peer forgets

	// rekey collision bookkeeping (RFC 7296 §2.8.1).
	rekeying   *ikeRekeyTask // our IKE rekey in flight
	replacedBy *ikeSA
	// The new IKE SAs created by our rekey and by the peer's, with the
	// nonces of each exchange (simultaneous rekey, RFC 7296 §2.8.1).
	ourNewIKE, peerNewIKE       *ikeSA
	ourIKENonces, peerIKENonces [2][]byte

	timerSeq uint64
	timerAt  time.Time
	stats    ike.Stats
	dead     bool
}

func (s *ikeSA) localSPI() uint64 {
	if s.initiator {
		return s.spiI
	}
	return s.spiR
}

func (s *ikeSA) header(ex ExchangeType, msgID uint32, response bool) Header {
	h := Header{SPIi: s.spiI, SPIr: s.spiR, Exchange: ex, MessageID: msgID, Version: 0x20}
	if s.initiator {
		h.Flags |= FlagInitiator
	}
	if response {
		h.Flags |= FlagResponse
	}
	return h
}

func (s *ikeSA) status(now time.Time) ike.IKESAStatus {
	st := ike.IKESAStatus{
		Index: s.index, Gateway: s.conn.Gateway, Version: 2, Mode: "IKEv2", State: s.state,
		SPIi: s.spiI, SPIr: s.spiR, Local: s.local, Remote: s.remote,
		LocalID: s.conn.LocalID.String(), Auth: "pre-shared-keys",
		Established: s.established, LocalBehindNAT: s.natLocal, RemoteBehindNAT: s.natRemote,
		Stats: s.stats, ChildSAs: len(s.children), Reason: s.reason, MessageIDNext: s.nextMsgID,
		LifetimeSeconds: uint64(s.conn.IKELifetime / time.Second),
	}
	st.RemoteID = s.peerID.Value
	if !s.initiator {
		st.Role = ike.Responder
	}
	if s.algs.Encr.ID != 0 {
		st.Encryption, st.PRF, st.DHGroup = s.algs.Encr.String(), s.algs.PRF.String(), s.algs.DH.String()
		st.Integrity = s.algs.Integ.String()
	}
	if !s.expireAt.IsZero() && s.expireAt.After(now) {
		st.RemainingSeconds = uint64(s.expireAt.Sub(now) / time.Second)
	}
	return st
}

// nextDeadline is the earliest timer of the SA and its children.
func (s *ikeSA) nextDeadline() time.Time {
	var t time.Time
	add := func(x time.Time) {
		if !x.IsZero() && (t.IsZero() || x.Before(t)) {
			t = x
		}
	}
	for _, r := range s.pending {
		add(r.retryAt)
	}
	add(s.dpdAt)
	add(s.keepaliveAt)
	add(s.rekeyAt)
	add(s.expireAt)
	add(s.halfOpenAt)
	add(s.deleteAt)
	for _, c := range s.children {
		add(c.rekeyAt)
		add(c.expireAt)
	}
	return t
}
