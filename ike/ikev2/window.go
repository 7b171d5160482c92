package ikev2

import (
	"encoding/binary"

	"github.com/bpfvpn/bpfvpn/ike"
)

// Message-ID windows (RFC 7296 §2.3). As responder we accept requests whose
// IDs lie within our window above the lowest one not yet answered, answer
// them in any order, and keep the answers the peer may still retransmit
// for (the last window's worth). As initiator we keep up to the peer's
// window (SET_WINDOW_SIZE) of requests in flight. Both windows are one
// until IKE_AUTH has completed.

const (
	// defaultWindowSize is the window we advertise unless Config says.
	defaultWindowSize = 4
	// maxPeerWindow bounds the requests we keep in flight whatever the peer
	// advertises: each holds its packets until answered.
	maxPeerWindow = 32
)

// cachedResponse is our answer to one request of the peer.
type cachedResponse struct {
	msgID   uint32
	packets [][]byte
}

// recvWindow is how many of the peer's requests we answer concurrently.
func (s *ikeSA) recvWindow() uint32 {
	if s.state == ike.StateConnecting || s.e.cfg.WindowSize < 1 {
		return 1
	}
	return uint32(s.e.cfg.WindowSize)
}

// sendWindow is how many of our requests may be in flight.
func (s *ikeSA) sendWindow() uint32 {
	if s.state == ike.StateConnecting || s.peerWindow < 1 {
		return 1
	}
	return s.peerWindow
}

// cachedResponse returns our answer to the peer's request id, nil if the
// request was not answered or its answer was forgotten.
func (s *ikeSA) cachedResponse(id uint32) [][]byte {
	for _, r := range s.responses {
		if r.msgID == id {
			return r.packets
		}
	}
	return nil
}

// acceptsRequest reports whether id is a new request inside our window.
func (s *ikeSA) acceptsRequest(id uint32) bool {
	return id >= s.peerMsgID && id-s.peerMsgID < s.recvWindow() && s.cachedResponse(id) == nil
}

// storeResponse caches the answer to request id, moves peerMsgID past every
// answered request and forgets answers older than the window: the peer
// cannot have a request in flight below peerMsgID - window.
func (s *ikeSA) storeResponse(id uint32, packets [][]byte) {
	s.responses = append(s.responses, cachedResponse{msgID: id, packets: packets})
	for s.cachedResponse(s.peerMsgID) != nil {
		s.peerMsgID++
	}
	w := s.recvWindow()
	keep := s.responses[:0]
	for _, r := range s.responses {
		if r.msgID >= s.peerMsgID || s.peerMsgID-r.msgID <= w {
			keep = append(keep, r)
		}
	}
	clear(s.responses[len(keep):])
	s.responses = keep
}

// exclusive exchanges run alone: they start when nothing else is in flight
// and nothing starts while they are. The initial exchanges (window one by
// definition), IKE SA rekeying (the SA's requests move to its successor)
// and IKE SA deletion.
func (ex *exchange) exclusive() bool {
	if ex.typ == IKE_SA_INIT || ex.typ == IKE_AUTH {
		return true
	}
	for _, t := range ex.tasks {
		switch t.(type) {
		case *ikeRekeyTask, ikeDeleteTask:
			return true
		}
	}
	return false
}

// mayStart reports whether ex may be sent now.
func (s *ikeSA) mayStart(ex *exchange) bool {
	if len(s.pending) == 0 {
		return true
	}
	if ex.exclusive() {
		return false
	}
	for _, r := range s.pending {
		if r.ex.exclusive() {
			return false
		}
	}
	return s.nextMsgID-s.pending[0].msgID < s.sendWindow()
}

// takePending removes and returns our request id, nil if not in flight.
func (s *ikeSA) takePending(id uint32) *request {
	for i, r := range s.pending {
		if r.msgID == id {
			copy(s.pending[i:], s.pending[i+1:])
			s.pending[len(s.pending)-1] = nil
			s.pending = s.pending[:len(s.pending)-1]
			return r
		}
	}
	return nil
}

// windowNotify advertises our window when it is larger than one.
func (s *ikeSA) windowNotify(out *[]Payload) {
	if w := s.e.cfg.WindowSize; w > 1 {
		*out = append(*out, notifyPayload(SET_WINDOW_SIZE, binary.BigEndian.AppendUint32(nil, uint32(w))))
	}
}

// noteWindow takes the peer's SET_WINDOW_SIZE, if any (a window of zero
// is invalid and ignored).
func (s *ikeSA) noteWindow(in []Payload) {
	n := findNotify(in, SET_WINDOW_SIZE)
	if n == nil || len(n.Data) != 4 {
		return
	}
	if w := binary.BigEndian.Uint32(n.Data); w >= 1 {
		s.peerWindow = min(w, maxPeerWindow)
	}
}
