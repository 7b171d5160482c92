// Package suite holds the cryptographic building blocks shared by the IKEv1
// and IKEv2 engines: key-exchange groups with RFC 6989 public-value checks,
// encryption (AES-CBC, 3DES, AES-GCM per RFC 5282, ChaCha20-Poly1305 per
// RFC 7634), PRFs with prf+, integrity algorithms, the IANA transform
// identifiers as typed constants, and redacting key types.
//
// Identifiers are the IKEv2 IANA values (RFC 7296 §3.3.2 registries); the
// IKEv1 engine maps its ISAKMP attribute values onto them.
package suite

import "fmt"

// TransformType is the IKEv2 transform type (RFC 7296 §3.3.2).
type TransformType uint8

const (
	TransformENCR  TransformType = 1
	TransformPRF   TransformType = 2
	TransformINTEG TransformType = 3
	TransformKE    TransformType = 4 // "D-H" in RFC 7296, "Key Exchange Method" in RFC 9370
	TransformESN   TransformType = 5
)

func (t TransformType) String() string {
	switch t {
	case TransformENCR:
		return "ENCR"
	case TransformPRF:
		return "PRF"
	case TransformINTEG:
		return "INTEG"
	case TransformKE:
		return "KE"
	case TransformESN:
		return "ESN"
	}
	return fmt.Sprintf("TRANSFORM_%d", uint8(t))
}

// EncrID is an IKEv2 encryption algorithm transform ID.
type EncrID uint16

const (
	Encr3DES             EncrID = 3
	EncrNull             EncrID = 11
	EncrAESCBC           EncrID = 12
	EncrAESGCM8          EncrID = 18
	EncrAESGCM12         EncrID = 19
	EncrAESGCM16         EncrID = 20
	EncrChaCha20Poly1305 EncrID = 28
)

func (e EncrID) String() string {
	switch e {
	case Encr3DES:
		return "3DES-CBC"
	case EncrNull:
		return "NULL"
	case EncrAESCBC:
		return "AES-CBC"
	case EncrAESGCM8:
		return "AES-GCM-8"
	case EncrAESGCM12:
		return "AES-GCM-12"
	case EncrAESGCM16:
		return "AES-GCM-16"
	case EncrChaCha20Poly1305:
		return "CHACHA20-POLY1305"
	}
	return fmt.Sprintf("ENCR_%d", uint16(e))
}

// PRFID is an IKEv2 pseudo-random function transform ID.
type PRFID uint16

const (
	PRFHMACMD5     PRFID = 1
	PRFHMACSHA1    PRFID = 2
	PRFHMACSHA2256 PRFID = 5
	PRFHMACSHA2384 PRFID = 6
	PRFHMACSHA2512 PRFID = 7
)

func (p PRFID) String() string {
	switch p {
	case PRFHMACMD5:
		return "PRF-HMAC-MD5"
	case PRFHMACSHA1:
		return "PRF-HMAC-SHA1"
	case PRFHMACSHA2256:
		return "PRF-HMAC-SHA2-256"
	case PRFHMACSHA2384:
		return "PRF-HMAC-SHA2-384"
	case PRFHMACSHA2512:
		return "PRF-HMAC-SHA2-512"
	}
	return fmt.Sprintf("PRF_%d", uint16(p))
}

// IntegID is an IKEv2 integrity algorithm transform ID.
type IntegID uint16

const (
	IntegNone           IntegID = 0
	IntegHMACMD596      IntegID = 1
	IntegHMACSHA196     IntegID = 2
	IntegHMACSHA2256128 IntegID = 12
	IntegHMACSHA2384192 IntegID = 13
	IntegHMACSHA2512256 IntegID = 14
)

func (i IntegID) String() string {
	switch i {
	case IntegNone:
		return "NONE"
	case IntegHMACMD596:
		return "HMAC-MD5-96"
	case IntegHMACSHA196:
		return "HMAC-SHA1-96"
	case IntegHMACSHA2256128:
		return "HMAC-SHA2-256-128"
	case IntegHMACSHA2384192:
		return "HMAC-SHA2-384-192"
	case IntegHMACSHA2512256:
		return "HMAC-SHA2-512-256"
	}
	return fmt.Sprintf("INTEG_%d", uint16(i))
}

// DHGroup is an IKEv2 key-exchange method (Diffie-Hellman group) transform ID.
// The IKEv1 group descriptions use the same numbers.
type DHGroup uint16

const (
	DHNone     DHGroup = 0
	MODP1024   DHGroup = 2
	MODP1536   DHGroup = 5
	MODP2048   DHGroup = 14
	MODP3072   DHGroup = 15
	MODP4096   DHGroup = 16
	ECP256     DHGroup = 19
	ECP384     DHGroup = 20
	ECP521     DHGroup = 21
	Curve25519 DHGroup = 31
)

func (g DHGroup) String() string {
	switch g {
	case DHNone:
		return "NONE"
	case MODP1024:
		return "MODP-1024"
	case MODP1536:
		return "MODP-1536"
	case MODP2048:
		return "MODP-2048"
	case MODP3072:
		return "MODP-3072"
	case MODP4096:
		return "MODP-4096"
	case ECP256:
		return "ECP-256"
	case ECP384:
		return "ECP-384"
	case ECP521:
		return "ECP-521"
	case Curve25519:
		return "CURVE25519"
	}
	return fmt.Sprintf("KE_%d", uint16(g))
}

// ESNID is the IKEv2 extended-sequence-numbers transform ID.
type ESNID uint16

const (
	ESNNo  ESNID = 0
	ESNYes ESNID = 1
)

func (e ESNID) String() string {
	if e == ESNYes {
		return "ESN"
	}
	if e == ESNNo {
		return "NO-ESN"
	}
	return fmt.Sprintf("ESN_%d", uint16(e))
}

// AttrKeyLength is the IKEv2 transform attribute type "Key Length" (in bits).
const AttrKeyLength uint16 = 14
