// Package isakmp encodes and decodes ISAKMP messages (RFC 2408) as used by
// IKEv1 (RFC 2409) with the IPsec DOI (RFC 2407), NAT traversal (RFC 3947)
// and dead peer detection (RFC 3706).
//
// Decoders take untrusted input: every length is checked against the bytes
// that are really there, and malformed input yields an error, never a panic.
// Decoded values alias the input buffer; callers copy what they keep.
package isakmp
