package ikev1

import (
	"encoding/binary"
	"hash"

	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// phase1Keys are the keys of a phase-1 SA (RFC 2409 §5).
type phase1Keys struct {
	prf     suite.PRF
	skeyid  suite.Key
	skeyidD suite.Key
	skeyidA suite.Key
	skeyidE suite.Key
	encKey  suite.Key
}

func (k *phase1Keys) wipe() {
	suite.WipeAll(k.skeyid, k.skeyidD, k.skeyidA, k.skeyidE, k.encKey)
}

// derivePhase1 computes SKEYID = prf(PSK, Ni_b | Nr_b) and
// SKEYID_d/a/e = prf(SKEYID, [prev |] g^xy | CKY-I | CKY-R | 0/1/2), then the
// cipher key of encKeyLen bytes from SKEYID_e (expanded per Appendix B when
// SKEYID_e is shorter).
func derivePhase1(prf suite.PRF, psk, ni, nr, gxy []byte, ckyI, ckyR [8]byte, encKeyLen int) *phase1Keys {
	k := &phase1Keys{prf: prf}
	k.skeyid = prf.Compute(psk, ni, nr)
	k.skeyidD = prf.Compute(k.skeyid, gxy, ckyI[:], ckyR[:], []byte{0})
	k.skeyidA = prf.Compute(k.skeyid, k.skeyidD, gxy, ckyI[:], ckyR[:], []byte{1})
	k.skeyidE = prf.Compute(k.skeyid, k.skeyidA, gxy, ckyI[:], ckyR[:], []byte{2})
	k.encKey = expandEncKey(prf, k.skeyidE, encKeyLen)
	return k
}

// expandEncKey returns the first n bytes of SKEYID_e, or of K1 | K2 | ...
// with K1 = prf(SKEYID_e, 0) and Ki = prf(SKEYID_e, Ki-1) when SKEYID_e is
// shorter than n (RFC 2409 Appendix B).
func expandEncKey(prf suite.PRF, skeyidE []byte, n int) suite.Key {
	if len(skeyidE) >= n {
		return suite.Key(append([]byte(nil), skeyidE[:n]...))
	}
	out := make([]byte, 0, n+prf.Size())
	prev := []byte{0}
	for len(out) < n {
		k := prf.Compute(skeyidE, prev)
		out = append(out, k...)
		prev = k
	}
	suite.Wipe(out[n:])
	return suite.Key(out[:n:n])
}

// keymat derives n bytes of Quick Mode keying material for one direction
// (RFC 2409 §5.5): K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b),
// Ki = prf(SKEYID_d, Ki-1 | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b).
func keymat(prf suite.PRF, skeyidD, gqm []byte, proto uint8, spi uint32, ni, nr []byte, n int) suite.Key {
	var spiB [4]byte
	binary.BigEndian.PutUint32(spiB[:], spi)
	out := make([]byte, 0, n+prf.Size())
	var prev []byte
	for len(out) < n {
		k := prf.Compute(skeyidD, prev, gqm, []byte{proto}, spiB[:], ni, nr)
		out = append(out, k...)
		prev = k
	}
	suite.Wipe(out[n:])
	return suite.Key(out[:n:n])
}

// hashIV returns the first blockSize bytes of hash(parts...), the IV
// derivation of RFC 2409 Appendix B.
func hashIV(h func() hash.Hash, blockSize int, parts ...[]byte) []byte {
	d := h()
	for _, p := range parts {
		d.Write(p)
	}
	return d.Sum(nil)[:blockSize]
}

// messageIV is the IV of the first message of a Quick Mode or
// informational exchange: hash(last phase-1 CBC block | M-ID).
func messageIV(h func() hash.Hash, phase1IV []byte, mid uint32) []byte {
	var m [4]byte
	binary.BigEndian.PutUint32(m[:], mid)
	return hashIV(h, len(phase1IV), phase1IV, m[:])
}

func midBytes(mid uint32) []byte { return binary.BigEndian.AppendUint32(nil, mid) }
