package suite

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
)

// PRF is a keyed pseudo-random function (RFC 7296 §2.13): HMAC over a hash.
type PRF struct {
	ID   PRFID
	hash func() hash.Hash
	size int
}

// PRF returns the function for id.
func (id PRFID) PRF() (PRF, error) {
	switch id {
	case PRFHMACMD5:
		return PRF{id, md5.New, md5.Size}, nil
	case PRFHMACSHA1:
		return PRF{id, sha1.New, sha1.Size}, nil
	case PRFHMACSHA2256:
		return PRF{id, sha256.New, sha256.Size}, nil
	case PRFHMACSHA2384:
		return PRF{id, sha512.New384, sha512.Size384}, nil
	case PRFHMACSHA2512:
		return PRF{id, sha512.New, sha512.Size}, nil
	}
	return PRF{}, fmt.Errorf("prf %v: unsupported", id)
}

// Supported reports whether id has an implementation (MD5 is for IKEv1 peers
// that insist; it is never proposed by default).
func (id PRFID) Supported() bool { _, err := id.PRF(); return err == nil }

// Size is the output length in bytes; it is also the preferred key length
// (RFC 7296 §2.13, SK_d / SK_pi / SK_pr length).
func (p PRF) Size() int { return p.size }

// Hash returns the underlying hash constructor (IKEv1 HASH payloads use it).
func (p PRF) Hash() func() hash.Hash { return p.hash }

// Compute returns prf(key, data[0] | data[1] | ...).
func (p PRF) Compute(key []byte, data ...[]byte) Key {
	m := hmac.New(p.hash, key)
	for _, d := range data {
		m.Write(d)
	}
	return Key(m.Sum(make([]byte, 0, p.size)))
}

// Plus is prf+ of RFC 7296 §2.13: T1 | T2 | ... truncated to n bytes, where
// T1 = prf(K, S | 0x01) and Ti = prf(K, Ti-1 | S | i). n is at most 255
// output blocks.
func (p PRF) Plus(key, seed []byte, n int) (Key, error) {
	if n > 255*p.size {
		return nil, fmt.Errorf("prf+ %v: %d bytes exceeds 255 blocks", p.ID, n)
	}
	m := hmac.New(p.hash, key)
	out := make([]byte, 0, n+p.size)
	var t []byte
	for i := 1; len(out) < n; i++ {
		m.Reset()
		m.Write(t)
		m.Write(seed)
		m.Write([]byte{byte(i)})
		t = m.Sum(out[len(out):len(out)])
		out = out[:len(out)+len(t)]
	}
	Wipe(out[n:cap(out)][:len(out)-n])
	return Key(out[:n:n]), nil
}
