package suite

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
)

// Integ describes an integrity algorithm: HMAC truncated to OutputLen.
type Integ struct {
	ID        IntegID
	hash      func() hash.Hash
	keyLen    int
	outputLen int
	xfrm      string
}

// Integ returns the algorithm for id. IntegNone yields an error: AEAD
// ciphers carry no separate integrity transform.
func (id IntegID) Integ() (Integ, error) {
	switch id {
	case IntegHMACMD596:
		return Integ{id, md5.New, 16, 12, "hmac(md5)"}, nil
	case IntegHMACSHA196:
		return Integ{id, sha1.New, 20, 12, "hmac(sha1)"}, nil
	case IntegHMACSHA2256128:
		return Integ{id, sha256.New, 32, 16, "hmac(sha256)"}, nil
	case IntegHMACSHA2384192:
		return Integ{id, sha512.New384, 48, 24, "hmac(sha384)"}, nil
	case IntegHMACSHA2512256:
		return Integ{id, sha512.New, 64, 32, "hmac(sha512)"}, nil
	}
	return Integ{}, fmt.Errorf("integrity %v: unsupported", id)
}

// Supported reports whether id has an implementation.
func (id IntegID) Supported() bool { _, err := id.Integ(); return err == nil }

func (i Integ) KeyLen() int    { return i.keyLen }
func (i Integ) OutputLen() int { return i.outputLen }

// XFRMName is the Linux XFRM auth algorithm name; TruncBits its truncation.
func (i Integ) XFRMName() string { return i.xfrm }
func (i Integ) TruncBits() int   { return i.outputLen * 8 }

// MAC is a keyed integrity checker. It is not safe for concurrent use.
type MAC struct {
	alg Integ
	h   hash.Hash
}

// New keys the algorithm.
func (i Integ) New(key []byte) (*MAC, error) {
	if len(key) != i.keyLen {
		return nil, fmt.Errorf("integrity %v: key %d bytes, want %d", i.ID, len(key), i.keyLen)
	}
	return &MAC{alg: i, h: hmac.New(i.hash, key)}, nil
}

// Size is the truncated output length.
func (m *MAC) Size() int { return m.alg.outputLen }

// Sum appends the truncated MAC of data to dst.
func (m *MAC) Sum(dst []byte, data ...[]byte) []byte {
	m.h.Reset()
	for _, d := range data {
		m.h.Write(d)
	}
	full := m.h.Sum(nil)
	return append(dst, full[:m.alg.outputLen]...)
}

// Verify checks icv against data in constant time.
func (m *MAC) Verify(icv []byte, data ...[]byte) bool {
	if len(icv) != m.alg.outputLen {
		return false
	}
	return subtle.ConstantTimeCompare(m.Sum(nil, data...), icv) == 1
}
