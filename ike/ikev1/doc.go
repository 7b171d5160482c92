// Package ikev1 is an IKEv1 engine (RFC 2409 with the IPsec DOI of RFC 2407):
// Main Mode with pre-shared keys for phase 1, Quick Mode for ESP SA pairs,
// and the informational exchange for deletes, INITIAL-CONTACT and RFC 3706
// dead peer detection, with RFC 3947 NAT traversal.
//
// Aggressive Mode is refused: it exposes a PSK-derived hash to offline
// guessing.
//
// The engine owns no sockets and no clock: it implements ike.Engine and
// reports negotiated SAs to an ike.SASink. Secrets never reach logs.
package ikev1
