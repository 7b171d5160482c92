package ikev1

import (
	"time"

	"github.com/bpfvpn/bpfvpn/ike/ikev1/isakmp"
)

// lifeAttrs numbers the life type and life duration attributes: phase 1
// (RFC 2409 appendix A) and phase 2 (RFC 2407 §4.5) use different ones.
type lifeAttrs struct{ typ, duration isakmp.AttrType }

var (
	phase1Life = lifeAttrs{isakmp.AttrLifeType, isakmp.AttrLifeDuration}
	phase2Life = lifeAttrs{isakmp.AttrSALifeType, isakmp.AttrSALifeDuration}
)

// saLife accumulates the lifetimes of a transform or a RESPONDER-LIFETIME
// notification: each life duration applies to the life type before it,
// durations of unknown types or without a type are ignored.
type saLife struct {
	typ  uint16
	secs time.Duration // 0: none given
	kb   uint64        // 0: none given
}

// take consumes a (with integer value v) if it is one of the life
// attributes of nums, and reports whether it was.
func (l *saLife) take(nums lifeAttrs, a isakmp.Attribute, v uint64) bool {
	switch a.Type {
	case nums.typ:
		l.typ = uint16(v)
	case nums.duration:
		switch l.typ {
		case isakmp.LifeSeconds:
			l.secs = time.Duration(min(v, 1<<31)) * time.Second
		case isakmp.LifeKilobytes:
			l.kb = v
		}
	default:
		return false
	}
	return true
}
