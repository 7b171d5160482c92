package ikev2

import (
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
)

type childState uint8

const (
	childInstalled childState = iota
	childRekeying             // our rekey exchange is in flight
	childReplaced             // a newer SA carries the traffic; delete pending
	childDeleting             // our delete is in flight
)

// child is one CHILD SA pair.
type child struct {
	sa          ike.ChildSA // keys included; wiped when the child dies
	algs        childAlgs
	state       childState
	installed   bool // reported to the sink
	established time.Time
	rekeyAt     time.Time
	expireAt    time.Time
	// rekey is our rekey exchange of this child while in flight;
	// peerRekeyed is the child the peer's simultaneous rekey created.
	rekey *childRekeyTask
	// Simultaneous rekey (RFC 7296 §2.8.1): the child each side's exchange
	// created and that exchange's nonces.
	ourNew, peerNew      *child
	ourNonces, peerNonce [2][]byte
}

func (c *child) status(now time.Time, ikeIndex uint64) ike.ChildSAStatus {
	st := ike.ChildSAStatus{SA: c.sa.WithoutKeys(), IKESA: ikeIndex, Established: c.established, Rekeying: c.state == childRekeying}
	if !c.expireAt.IsZero() && c.expireAt.After(now) {
		st.RemainingSeconds = uint64(c.expireAt.Sub(now) / time.Second)
	}
	return st
}
