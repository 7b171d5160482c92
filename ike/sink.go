package ike

// SASink receives the results of negotiation. The gateway implements it by
// installing XFRM state and policy; tests record the calls.
//
// Calls are made synchronously from the engine and must not block for long.
// The sink must copy key material it keeps: the engine wipes the keys of a
// ChildSA when that SA dies.
type SASink interface {
	// ChildSAInstalled reports a new CHILD SA. An error makes the engine
	// delete the SA again (the peer is told with a Delete payload).
	ChildSAInstalled(sa ChildSA) error
	// ChildSARekeyed reports that sa replaces old (make-before-break): install
	// sa in both directions and keep old until ChildSADeleted(old) arrives.
	ChildSARekeyed(old, sa ChildSA) error
	// ChildSADeleted reports that sa (no keys) is gone in both directions.
	ChildSADeleted(sa ChildSA)
	// IKESAChanged reports IKE SA state changes (up, rekeyed, down) for
	// monitoring and `show security ike security-associations`.
	IKESAChanged(st IKESAStatus)
}

// NopSink ignores every call; embed it to implement part of SASink.
type NopSink struct{}

func (NopSink) ChildSAInstalled(ChildSA) error       { return nil }
func (NopSink) ChildSARekeyed(old, sa ChildSA) error { return nil }
func (NopSink) ChildSADeleted(ChildSA)               {}
func (NopSink) IKESAChanged(IKESAStatus)             {}
