package ike

import (
	"fmt"
	"net/netip"
	"time"
)

// Role is the role of this end in the exchange that created an SA.
type Role uint8

const (
	Initiator Role = iota
	Responder
)

func (r Role) String() string {
	if r == Responder {
		return "Responder"
	}
	return "Initiator"
}

// MarshalText makes the JSON form readable.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// IKEState is the life-cycle state of an IKE SA.
type IKEState uint8

const (
	StateConnecting  IKEState = iota // exchanges in progress, not authenticated
	StateEstablished                 // authenticated, usable
	StateRekeying                    // established, IKE SA rekey in progress
	StateDeleting                    // delete sent, waiting for the answer
	StateDown                        // gone (reported once, then forgotten)
)

func (s IKEState) String() string {
	switch s {
	case StateConnecting:
		return "CONNECTING"
	case StateEstablished:
		return "UP"
	case StateRekeying:
		return "REKEYING"
	case StateDeleting:
		return "DELETING"
	case StateDown:
		return "DOWN"
	}
	return fmt.Sprintf("STATE_%d", uint8(s))
}

func (s IKEState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Stats are traffic counters.
type Stats struct {
	InBytes    uint64 `json:"in_bytes"`
	OutBytes   uint64 `json:"out_bytes"`
	InPackets  uint64 `json:"in_packets"`
	OutPackets uint64 `json:"out_packets"`
}

// IKESAStatus is one IKE SA (IKEv2) or phase-1 SA (IKEv1) as shown by
// `show security ike security-associations [detail]`.
type IKESAStatus struct {
	Index   uint64   `json:"index"`
	Gateway string   `json:"gateway"` // the configured gateway name
	Version int      `json:"version"` // 1 or 2
	Mode    string   `json:"mode"`    // "IKEv2", "Main"
	Role    Role     `json:"role"`
	State   IKEState `json:"state"`
	// SPIi / SPIr are the IKEv2 SPIs or the IKEv1 cookies.
	SPIi uint64 `json:"spi_i"`
	SPIr uint64 `json:"spi_r"`

	Local    netip.AddrPort `json:"local"`
	Remote   netip.AddrPort `json:"remote"`
	LocalID  string         `json:"local_id"`
	RemoteID string         `json:"remote_id"`
	Auth     string         `json:"auth"` // "pre-shared-keys"

	Encryption string `json:"encryption"`
	PRF        string `json:"prf"`
	Integrity  string `json:"integrity"`
	DHGroup    string `json:"dh_group"`

	Established      time.Time `json:"established"`
	LifetimeSeconds  uint64    `json:"lifetime_seconds"`
	RemainingSeconds uint64    `json:"remaining_seconds"`

	LocalBehindNAT  bool `json:"local_behind_nat"`
	RemoteBehindNAT bool `json:"remote_behind_nat"`

	Stats         Stats  `json:"stats"`
	ChildSAs      int    `json:"child_sas"`
	Reason        string `json:"reason,omitempty"` // why it went down
	MessageIDNext uint32 `json:"message_id_next"`
}

// ChildSAStatus is one CHILD SA pair as shown by
// `show security ipsec security-associations`.
type ChildSAStatus struct {
	SA               ChildSA   `json:"sa"` // without keys
	IKESA            uint64    `json:"ike_sa"`
	Established      time.Time `json:"established"`
	RemainingSeconds uint64    `json:"remaining_seconds"`
	Rekeying         bool      `json:"rekeying"`
}
