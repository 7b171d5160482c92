package suite

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// KeyExchange is one party's ephemeral Diffie-Hellman state for one group.
// The private value never leaves it; Wipe erases it.
type KeyExchange interface {
	Group() DHGroup
	// PublicValue is the KE payload data in the IKE wire format (MODP:
	// zero-padded to the prime length; ECP: x||y per RFC 5903; Curve25519: 32
	// bytes per RFC 8031).
	PublicValue() []byte
	// SharedSecret validates the peer's public value (RFC 6989) and returns the
	// shared secret in the IKE format (MODP: padded to the prime length; ECP:
	// the x coordinate).
	SharedSecret(peer []byte) (Key, error)
	// Wipe erases the private value.
	Wipe()
}

// ErrInvalidPublicValue is returned (wrapped) when a peer's KE data fails the
// RFC 6989 checks or has the wrong length.
var ErrInvalidPublicValue = errors.New("invalid key exchange public value")

// Supported reports whether NewKeyExchange accepts g.
func (g DHGroup) Supported() bool {
	switch g {
	case MODP1024, MODP1536, MODP2048, MODP3072, MODP4096, ECP256, ECP384, ECP521, Curve25519:
		return true
	}
	return false
}

// Weak reports whether g is below today's minimum strength (groups 2 and 5).
// They are accepted only when configured explicitly, and callers warn.
func (g DHGroup) Weak() bool { return g == MODP1024 || g == MODP1536 }

// PublicValueLen is the length of g's KE payload data, 0 if unsupported.
func (g DHGroup) PublicValueLen() int {
	switch g {
	case MODP1024:
		return 128
	case MODP1536:
		return 192
	case MODP2048:
		return 256
	case MODP3072:
		return 384
	case MODP4096:
		return 512
	case ECP256:
		return 64
	case ECP384:
		return 96
	case ECP521:
		return 132
	case Curve25519:
		return 32
	}
	return 0
}

// NewKeyExchange creates a fresh private value for g.
func NewKeyExchange(g DHGroup) (KeyExchange, error) {
	return newKeyExchange(g, rand.Reader, nil)
}

// newKeyExchange uses priv as the private value when it is not nil (tests
// with known-answer vectors), otherwise draws one from r.
func newKeyExchange(g DHGroup, r io.Reader, priv []byte) (KeyExchange, error) {
	switch g {
	case MODP1024, MODP1536, MODP2048, MODP3072, MODP4096:
		return newMODP(g, r, priv)
	case ECP256:
		return newECDH(g, ecdh.P256(), priv)
	case ECP384:
		return newECDH(g, ecdh.P384(), priv)
	case ECP521:
		return newECDH(g, ecdh.P521(), priv)
	case Curve25519:
		return newECDH(g, ecdh.X25519(), priv)
	}
	return nil, fmt.Errorf("key exchange group %v: unsupported", g)
}

// ecdhKE covers the ECP groups and Curve25519 through crypto/ecdh, whose
// NewPublicKey rejects points not on the curve and whose ECDH rejects the
// all-zero X25519 output (RFC 6989 §2.3, RFC 8031 §2.3).
type ecdhKE struct {
	group DHGroup
	curve ecdh.Curve
	priv  *ecdh.PrivateKey
	pub   []byte
}

func newECDH(g DHGroup, c ecdh.Curve, priv []byte) (*ecdhKE, error) {
	var (
		k   *ecdh.PrivateKey
		err error
	)
	if priv != nil {
		k, err = c.NewPrivateKey(priv)
	} else {
		k, err = c.GenerateKey(rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("key exchange group %v: generate: %w", g, err)
	}
	pub := k.PublicKey().Bytes()
	if g != Curve25519 {
		pub = pub[1:] // drop the SEC1 0x04 prefix: IKE carries x||y
	}
	return &ecdhKE{group: g, curve: c, priv: k, pub: pub}, nil
}

func (e *ecdhKE) Group() DHGroup      { return e.group }
func (e *ecdhKE) PublicValue() []byte { return e.pub }

func (e *ecdhKE) SharedSecret(peer []byte) (Key, error) {
	if e.priv == nil {
		return nil, fmt.Errorf("key exchange group %v: wiped", e.group)
	}
	if len(peer) != e.group.PublicValueLen() {
		return nil, fmt.Errorf("key exchange group %v: %d bytes, want %d: %w", e.group, len(peer), e.group.PublicValueLen(), ErrInvalidPublicValue)
	}
	enc := peer
	if e.group != Curve25519 {
		enc = make([]byte, 1+len(peer))
		enc[0] = 4
		copy(enc[1:], peer)
	}
	pk, err := e.curve.NewPublicKey(enc)
	if err != nil {
		return nil, fmt.Errorf("key exchange group %v: %w", e.group, ErrInvalidPublicValue)
	}
	s, err := e.priv.ECDH(pk)
	if err != nil {
		return nil, fmt.Errorf("key exchange group %v: %w", e.group, ErrInvalidPublicValue)
	}
	return Key(s), nil
}

// Wipe drops the private key. crypto/ecdh keeps its scalar unexported; dropping
// the only reference is the best this package can do for it.
func (e *ecdhKE) Wipe() { e.priv = nil }

// modpKE is a finite-field Diffie-Hellman over a safe-prime MODP group, g = 2.
type modpKE struct {
	group DHGroup
	p     *big.Int
	x     *big.Int
	pub   []byte
}

// modpExponentBits is the private exponent length: twice the group's
// symmetric strength (RFC 3526 §8), which keeps MODP-2048 fast without
// weakening it.
var modpExponentBits = map[DHGroup]int{MODP1024: 160, MODP1536: 192, MODP2048: 256, MODP3072: 320, MODP4096: 384}

var modpParams = func() map[DHGroup]*big.Int {
	m := make(map[DHGroup]*big.Int, len(modpPrimes))
	for g, h := range modpPrimes {
		p, ok := new(big.Int).SetString(h, 16)
		if !ok {
			panic("suite: bad MODP prime for " + g.String())
		}
		m[g] = p
	}
	return m
}()

var two = big.NewInt(2)

func newMODP(g DHGroup, r io.Reader, priv []byte) (*modpKE, error) {
	p := modpParams[g]
	var x *big.Int
	if priv != nil {
		x = new(big.Int).SetBytes(priv)
	} else {
		buf := make([]byte, modpExponentBits[g]/8)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("key exchange group %v: random: %w", g, err)
		}
		buf[0] |= 0x80 // full-length exponent
		x = new(big.Int).SetBytes(buf)
		Wipe(buf)
	}
	y := new(big.Int).Exp(two, x, p)
	return &modpKE{group: g, p: p, x: x, pub: y.FillBytes(make([]byte, g.PublicValueLen()))}, nil
}

func (m *modpKE) Group() DHGroup      { return m.group }
func (m *modpKE) PublicValue() []byte { return m.pub }

func (m *modpKE) SharedSecret(peer []byte) (Key, error) {
	if m.x == nil {
		return nil, fmt.Errorf("key exchange group %v: wiped", m.group)
	}
	if len(peer) != m.group.PublicValueLen() {
		return nil, fmt.Errorf("key exchange group %v: %d bytes, want %d: %w", m.group, len(peer), m.group.PublicValueLen(), ErrInvalidPublicValue)
	}
	y := new(big.Int).SetBytes(peer)
	// RFC 6989 §2.1: 1 < y < p-1. For the safe primes of these groups this
	// also excludes the small subgroups.
	pm1 := new(big.Int).Sub(m.p, big.NewInt(1))
	if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(pm1) >= 0 {
		return nil, fmt.Errorf("key exchange group %v: out of range: %w", m.group, ErrInvalidPublicValue)
	}
	z := new(big.Int).Exp(y, m.x, m.p)
	out := z.FillBytes(make([]byte, m.group.PublicValueLen()))
	z.SetInt64(0)
	return Key(out), nil
}

// Wipe zeroes the private exponent's words.
func (m *modpKE) Wipe() {
	if m.x != nil {
		w := m.x.Bits()
		clear(w)
		m.x = nil
	}
}
