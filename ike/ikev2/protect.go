package ikev2

import (
	"encoding/binary"
	"fmt"

	"github.com/bpfvpn/bpfvpn/ike/suite"
)

// protector encrypts and authenticates SK/SKF payloads for one direction
// pair of an IKE SA. It keeps keys, not keyed ciphers: IKE messages are rare
// on an established SA, and an AES-GCM instance costs more memory than the
// per-message key schedule costs time.
type protector struct {
	encr          suite.Encr
	integ         suite.Integ
	hasInteg      bool
	encOut, encIn suite.Key
	macOut, macIn suite.Key
	ivCtr         uint64 // AEAD IVs: a counter, unique per key
	rand          func([]byte)
}

func newProtector(k *ikeKeys, a ikeAlgs, originalInitiator bool, rnd func([]byte)) *protector {
	p := &protector{encr: a.Encr, integ: k.integ, hasInteg: a.Integ != suite.IntegNone, rand: rnd}
	if originalInitiator {
		p.encOut, p.encIn, p.macOut, p.macIn = k.ei, k.er, k.ai, k.ar
	} else {
		p.encOut, p.encIn, p.macOut, p.macIn = k.er, k.ei, k.ar, k.ai
	}
	return p
}

func (p *protector) icvLen() int {
	if p.encr.AEAD() {
		return p.encr.ICVLen()
	}
	return p.integ.OutputLen()
}

// overhead is the size added around an inner chain of n bytes.
func (p *protector) overhead(n int, frag bool) int {
	hdr := 4
	if frag {
		hdr = 8
	}
	bs := p.encr.BlockSize()
	padded := (n + 1 + bs - 1) / bs * bs
	return HeaderLen + hdr + p.encr.IVLen() + (padded - n) + p.icvLen()
}

// seal builds one protected datagram around inner (a payload chain whose
// first payload is first). frag selects an SKF payload numbered num/total.
func (p *protector) seal(h Header, first PayloadType, inner []byte, frag bool, num, total uint16) ([]byte, error) {
	bs := p.encr.BlockSize()
	padLen := (bs - (len(inner)+1)%bs) % bs
	ivLen, icvLen := p.encr.IVLen(), p.icvLen()
	hdrLen := 4
	if frag {
		hdrLen = 8
	}
	plainLen := len(inner) + padLen + 1
	total32 := HeaderLen + hdrLen + ivLen + plainLen + icvLen
	if total32 > MaxMessageLen {
		return nil, fmt.Errorf("protected message of %d bytes too large", total32)
	}
	h.NextPayload = PayloadSK
	if frag {
		h.NextPayload = PayloadSKF
	}
	h.Length = uint32(total32)
	b := make([]byte, 0, total32)
	b = h.encode(b)
	b = append(b, byte(first), 0, byte((total32-HeaderLen)>>8), byte(total32-HeaderLen))
	if frag {
		b = append(b, byte(num>>8), byte(num), byte(total>>8), byte(total))
	}
	aadEnd := len(b)
	iv := b[len(b) : len(b)+ivLen]
	b = b[:len(b)+ivLen]
	if p.encr.AEAD() {
		p.ivCtr++
		binary.BigEndian.PutUint64(iv, p.ivCtr)
	} else {
		p.rand(iv)
	}
	plain := make([]byte, plainLen)
	copy(plain, inner)
	plain[plainLen-1] = byte(padLen)
	c, err := p.encr.New(p.encOut)
	if err != nil {
		return nil, err
	}
	if p.encr.AEAD() {
		return c.Seal(b, iv, plain, b[:aadEnd])
	}
	if err := c.EncryptCBC(iv, plain); err != nil {
		return nil, err
	}
	b = append(b, plain...)
	mac, err := p.integ.New(p.macOut)
	if err != nil {
		return nil, err
	}
	return mac.Sum(b, b), nil
}

// open verifies and decrypts the Encrypted payload of raw, returning the
// inner plaintext chain.
func (p *protector) open(raw []byte, e *Encrypted) ([]byte, error) {
	ivLen, icvLen := p.encr.IVLen(), p.icvLen()
	body := e.Body
	if len(body) < ivLen+icvLen+1 {
		return nil, malformed("encrypted payload of %d bytes", len(body))
	}
	ivStart := len(raw) - len(body)
	iv := body[:ivLen]
	c, err := p.encr.New(p.encIn)
	if err != nil {
		return nil, err
	}
	var plain []byte
	if p.encr.AEAD() {
		plain, err = c.Open(nil, iv, body[ivLen:], raw[:ivStart])
		if err != nil {
			return nil, fmt.Errorf("decrypt: %w", err)
		}
	} else {
		ct := body[ivLen : len(body)-icvLen]
		mac, err := p.integ.New(p.macIn)
		if err != nil {
			return nil, err
		}
		if !mac.Verify(body[len(body)-icvLen:], raw[:len(raw)-icvLen]) {
			return nil, fmt.Errorf("decrypt: %w", suite.ErrAuthFailed)
		}
		if len(ct) == 0 || len(ct)%p.encr.BlockSize() != 0 {
			return nil, malformed("ciphertext of %d bytes", len(ct))
		}
		plain = append([]byte(nil), ct...)
		if err := c.DecryptCBC(append([]byte(nil), iv...), plain); err != nil {
			return nil, err
		}
	}
	if len(plain) == 0 {
		return nil, malformed("empty plaintext")
	}
	pad := int(plain[len(plain)-1])
	if pad+1 > len(plain) {
		return nil, malformed("pad length %d of %d", pad, len(plain))
	}
	return plain[:len(plain)-pad-1], nil
}
