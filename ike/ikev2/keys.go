package ikev2

import (
	"encoding/binary"
	"fmt"

	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// renewKE wipes the private value of *ke, if any, and puts a fresh key
// exchange of group g in its place (a retried request sends a new KE).
// On error *ke keeps the wiped old value.
func renewKE(ke *suite.KeyExchange, g suite.DHGroup) error {
	if *ke != nil {
		(*ke).Wipe()
	}
	fresh, err := suite.NewKeyExchange(g)
	if err != nil {
		return err
	}
	*ke = fresh
	return nil
}

// dropKE wipes the private value of *ke, if any, and clears it.
func dropKE(ke *suite.KeyExchange) {
	if *ke != nil {
		(*ke).Wipe()
		*ke = nil
	}
}

// ikeKeys are the keys of one IKE SA (RFC 7296 §2.14). Initiator and
// responder refer to the original initiator of this IKE SA.
type ikeKeys struct {
	prf               suite.PRF
	d, ai, ar, ei, er suite.Key
	pi, pr            suite.Key
	integ             suite.Integ
}

// deriveIKEKeys computes the keys from SKEYSEED and the SPIs.
func deriveIKEKeys(a ikeAlgs, skeyseed suite.Key, ni, nr []byte, spiI, spiR uint64) (*ikeKeys, error) {
	prf, err := a.PRF.PRF()
	if err != nil {
		return nil, err
	}
	k := &ikeKeys{prf: prf}
	integLen := 0
	if a.Integ != suite.IntegNone {
		if k.integ, err = a.Integ.Integ(); err != nil {
			return nil, err
		}
		integLen = k.integ.KeyLen()
	}
	encLen := a.Encr.KeyLen()
	seed := make([]byte, 0, len(ni)+len(nr)+16)
	seed = append(append(seed, ni...), nr...)
	seed = binary.BigEndian.AppendUint64(seed, spiI)
	seed = binary.BigEndian.AppendUint64(seed, spiR)
	total := 3*prf.Size() + 2*integLen + 2*encLen
	km, err := prf.Plus(skeyseed, seed, total)
	if err != nil {
		return nil, err
	}
	take := func(n int) suite.Key {
		k := km[:n:n]
		km = km[n:]
		return k
	}
	k.d, k.ai, k.ar, k.ei, k.er, k.pi, k.pr = take(prf.Size()), take(integLen), take(integLen), take(encLen), take(encLen), take(prf.Size()), take(prf.Size())
	// Ciphers are keyed per message (protector): an idle SA keeps only keys,
	// whose lengths come from the transform; only the transform is checked.
	if err := a.Encr.Validate(); err != nil {
		return nil, err
	}
	return k, nil
}

// initialSKEYSEED is prf(Ni | Nr, g^ir).
func initialSKEYSEED(a ikeAlgs, ni, nr []byte, zz suite.Key) (suite.Key, error) {
	prf, err := a.PRF.PRF()
	if err != nil {
		return nil, err
	}
	key := append(append(make([]byte, 0, len(ni)+len(nr)), ni...), nr...)
	return prf.Compute(key, zz), nil
}

// rekeySKEYSEED is prf(SK_d (old), g^ir (new) | Ni | Nr) (RFC 7296 §2.18).
func rekeySKEYSEED(a ikeAlgs, oldPRF suite.PRF, oldD suite.Key, zz suite.Key, ni, nr []byte) (suite.Key, error) {
	if _, err := a.PRF.PRF(); err != nil {
		return nil, err
	}
	return oldPRF.Compute(oldD, zz, ni, nr), nil
}

func (k *ikeKeys) wipe() {
	if k == nil {
		return
	}
	suite.WipeAll(k.d, k.ai, k.ar, k.ei, k.er, k.pi, k.pr)
}

// pskAuth computes the PSK AUTH value (RFC 7296 §2.15):
// prf(prf(PSK, "Key Pad for IKEv2"), realMessage | peerNonce | prf(SK_p, IDbody)).
func pskAuth(prf suite.PRF, psk []byte, realMessage, nonce []byte, skP suite.Key, idBody []byte) []byte {
	macedID := prf.Compute(skP, idBody)
	inner := prf.Compute(psk, []byte("Key Pad for IKEv2"))
	out := prf.Compute(inner, realMessage, nonce, macedID)
	inner.Wipe()
	return out
}

// idBody is the ID payload body that AUTH covers: type, reserved, data.
func idBody(p *ID) []byte { return p.body(nil) }

// childKeys derives the ESP keys: KEYMAT = prf+(SK_d, [g^ir |] Ni | Nr) in
// the order encr i->r, integ i->r, encr r->i, integ r->i, where i is the
// initiator of the exchange that created the CHILD SA.
func childKeys(prf suite.PRF, skD suite.Key, a childAlgs, zz suite.Key, ni, nr []byte) (encI2R, intI2R, encR2I, intR2I suite.Key, err error) {
	encLen := a.Encr.KeyLen()
	intLen := 0
	if a.Integ != suite.IntegNone {
		in, err := a.Integ.Integ()
		if err != nil {
			return nil, nil, nil, nil, err
		}
		intLen = in.KeyLen()
	}
	seed := append(append(append(make([]byte, 0, len(zz)+len(ni)+len(nr)), zz...), ni...), nr...)
	km, err := prf.Plus(skD, seed, 2*(encLen+intLen))
	suite.Wipe(seed)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("child keys: %w", err)
	}
	take := func(n int) suite.Key {
		if n == 0 {
			return nil
		}
		k := km[:n:n]
		km = km[n:]
		return k
	}
	return take(encLen), take(intLen), take(encLen), take(intLen), nil
}
