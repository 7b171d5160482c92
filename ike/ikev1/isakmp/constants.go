package isakmp

import "fmt"

// PayloadType is the "Next Payload" value of RFC 2408 §3.1 and RFC 3947.
type PayloadType uint8

// Payload types.
const (
	PayloadNone      PayloadType = 0
	PayloadSA        PayloadType = 1
	PayloadProposal  PayloadType = 2
	PayloadTransform PayloadType = 3
	PayloadKE        PayloadType = 4
	PayloadID        PayloadType = 5
	PayloadCert      PayloadType = 6
	PayloadCertReq   PayloadType = 7
	PayloadHash      PayloadType = 8
	PayloadSig       PayloadType = 9
	PayloadNonce     PayloadType = 10
	PayloadNotify    PayloadType = 11
	PayloadDelete    PayloadType = 12
	PayloadVendorID  PayloadType = 13
	// PayloadNATD and PayloadNATOA are the RFC 3947 values.
	PayloadNATD  PayloadType = 20
	PayloadNATOA PayloadType = 21
	// PayloadNATDDraft and PayloadNATOADraft are the values of
	// draft-ietf-ipsec-nat-t-ike-02/03, still sent by peers that only
	// negotiated a draft vendor ID.
	PayloadNATDDraft  PayloadType = 130
	PayloadNATOADraft PayloadType = 131
)

var payloadNames = map[PayloadType]string{
	PayloadNone: "NONE", PayloadSA: "SA", PayloadProposal: "P", PayloadTransform: "T",
	PayloadKE: "KE", PayloadID: "ID", PayloadCert: "CERT", PayloadCertReq: "CR",
	PayloadHash: "HASH", PayloadSig: "SIG", PayloadNonce: "NONCE", PayloadNotify: "N",
	PayloadDelete: "D", PayloadVendorID: "VID", PayloadNATD: "NAT-D", PayloadNATOA: "NAT-OA",
	PayloadNATDDraft: "NAT-D(draft)", PayloadNATOADraft: "NAT-OA(draft)",
}

func (t PayloadType) String() string {
	if s, ok := payloadNames[t]; ok {
		return s
	}
	return fmt.Sprintf("PAYLOAD(%d)", uint8(t))
}

// ExchangeType is the exchange type of the ISAKMP header (RFC 2408 §3.1,
// RFC 2409 §5.5).
type ExchangeType uint8

// Exchange types.
const (
	ExchangeBase          ExchangeType = 1
	ExchangeMain          ExchangeType = 2 // Identity Protection
	ExchangeAuthOnly      ExchangeType = 3
	ExchangeAggressive    ExchangeType = 4
	ExchangeInformational ExchangeType = 5
	ExchangeTransaction   ExchangeType = 6 // Mode Config
	ExchangeQuick         ExchangeType = 32
	ExchangeNewGroup      ExchangeType = 33
)

func (e ExchangeType) String() string {
	switch e {
	case ExchangeBase:
		return "Base"
	case ExchangeMain:
		return "Main"
	case ExchangeAuthOnly:
		return "AuthOnly"
	case ExchangeAggressive:
		return "Aggressive"
	case ExchangeInformational:
		return "Informational"
	case ExchangeTransaction:
		return "Transaction"
	case ExchangeQuick:
		return "Quick"
	case ExchangeNewGroup:
		return "NewGroup"
	}
	return fmt.Sprintf("EXCHANGE(%d)", uint8(e))
}

// Flags of the ISAKMP header.
type Flags uint8

// Header flags.
const (
	FlagEncryption Flags = 0x01
	FlagCommit     Flags = 0x02
	FlagAuthOnly   Flags = 0x04
)

// ProtocolID identifies the protocol of a proposal, notify or delete
// payload (RFC 2407 §4.4.1).
type ProtocolID uint8

// Protocol identifiers.
const (
	ProtoISAKMP ProtocolID = 1
	ProtoAH     ProtocolID = 2
	ProtoESP    ProtocolID = 3
	ProtoIPComp ProtocolID = 4
)

func (p ProtocolID) String() string {
	switch p {
	case ProtoISAKMP:
		return "ISAKMP"
	case ProtoAH:
		return "AH"
	case ProtoESP:
		return "ESP"
	case ProtoIPComp:
		return "IPCOMP"
	}
	return fmt.Sprintf("PROTO(%d)", uint8(p))
}

// DOI and situation of the IPsec domain of interpretation (RFC 2407).
const (
	DOIIPsec              uint32 = 1
	SituationIdentityOnly uint32 = 1
)

// Transform identifiers.
const (
	// TransformKeyIKE is the only phase-1 transform ID (RFC 2407 §4.4.2).
	TransformKeyIKE uint8 = 1
	// ESP transform IDs (RFC 2407 §4.4.4, RFC 3602, RFC 4106).
	ESP3DES     uint8 = 3
	ESPNull     uint8 = 11
	ESPAESCBC   uint8 = 12
	ESPAESCTR   uint8 = 13
	ESPAESGCM8  uint8 = 18
	ESPAESGCM12 uint8 = 19
	ESPAESGCM16 uint8 = 20
)
