package ikev2

import "fmt"

// ExchangeType is the IKEv2 exchange type (RFC 7296 §3.1).
type ExchangeType uint8

const (
	IKE_SA_INIT     ExchangeType = 34
	IKE_AUTH        ExchangeType = 35
	CREATE_CHILD_SA ExchangeType = 36
	INFORMATIONAL   ExchangeType = 37
)

func (e ExchangeType) String() string {
	switch e {
	case IKE_SA_INIT:
		return "IKE_SA_INIT"
	case IKE_AUTH:
		return "IKE_AUTH"
	case CREATE_CHILD_SA:
		return "CREATE_CHILD_SA"
	case INFORMATIONAL:
		return "INFORMATIONAL"
	}
	return fmt.Sprintf("EXCHANGE_%d", uint8(e))
}

// Header flags.
const (
	FlagInitiator uint8 = 0x08
	FlagVersion   uint8 = 0x10
	FlagResponse  uint8 = 0x20
)

// PayloadType is the IKEv2 payload type (RFC 7296 §3.2, RFC 7383).
type PayloadType uint8

const (
	PayloadNone     PayloadType = 0
	PayloadSA       PayloadType = 33
	PayloadKE       PayloadType = 34
	PayloadIDi      PayloadType = 35
	PayloadIDr      PayloadType = 36
	PayloadCERT     PayloadType = 37
	PayloadCERTREQ  PayloadType = 38
	PayloadAUTH     PayloadType = 39
	PayloadNonce    PayloadType = 40
	PayloadNotify   PayloadType = 41
	PayloadDelete   PayloadType = 42
	PayloadVendorID PayloadType = 43
	PayloadTSi      PayloadType = 44
	PayloadTSr      PayloadType = 45
	PayloadSK       PayloadType = 46
	PayloadCP       PayloadType = 47
	PayloadEAP      PayloadType = 48
	PayloadSKF      PayloadType = 53
)

func (p PayloadType) String() string {
	names := map[PayloadType]string{PayloadNone: "NONE", PayloadSA: "SA", PayloadKE: "KE", PayloadIDi: "IDi", PayloadIDr: "IDr",
		PayloadCERT: "CERT", PayloadCERTREQ: "CERTREQ", PayloadAUTH: "AUTH", PayloadNonce: "No", PayloadNotify: "N",
		PayloadDelete: "D", PayloadVendorID: "V", PayloadTSi: "TSi", PayloadTSr: "TSr", PayloadSK: "SK", PayloadCP: "CP",
		PayloadEAP: "EAP", PayloadSKF: "SKF"}
	if n, ok := names[p]; ok {
		return n
	}
	return fmt.Sprintf("PAYLOAD_%d", uint8(p))
}

// ProtocolID is the protocol of a proposal, notify or delete (RFC 7296 §3.3.1).
type ProtocolID uint8

const (
	ProtoNone ProtocolID = 0
	ProtoIKE  ProtocolID = 1
	ProtoAH   ProtocolID = 2
	ProtoESP  ProtocolID = 3
)

func (p ProtocolID) String() string {
	switch p {
	case ProtoIKE:
		return "IKE"
	case ProtoAH:
		return "AH"
	case ProtoESP:
		return "ESP"
	}
	return fmt.Sprintf("PROTO_%d", uint8(p))
}

// IDType is an identification type (RFC 7296 §3.5).
type IDType uint8

const (
	IDIPv4   IDType = 1
	IDFQDN   IDType = 2
	IDRFC822 IDType = 3
	IDIPv6   IDType = 5
	IDDERDN  IDType = 9
	IDKeyID  IDType = 11
)

// AuthMethod is an AUTH payload method (RFC 7296 §3.8).
type AuthMethod uint8

const (
	AuthRSA AuthMethod = 1
	AuthPSK AuthMethod = 2 // Shared Key Message Integrity Code
	AuthDSS AuthMethod = 3
)

// TSType is a traffic selector type (RFC 7296 §3.13.1).
type TSType uint8

const (
	TSIPv4Range TSType = 7
	TSIPv6Range TSType = 8
)

// NotifyType is a Notify message type (RFC 7296 §3.10.1 and later RFCs).
type NotifyType uint16

const (
	UNSUPPORTED_CRITICAL_PAYLOAD  NotifyType = 1
	INVALID_IKE_SPI               NotifyType = 4
	INVALID_MAJOR_VERSION         NotifyType = 5
	INVALID_SYNTAX                NotifyType = 7
	INVALID_MESSAGE_ID            NotifyType = 9
	INVALID_SPI                   NotifyType = 11
	NO_PROPOSAL_CHOSEN            NotifyType = 14
	INVALID_KE_PAYLOAD            NotifyType = 17
	AUTHENTICATION_FAILED         NotifyType = 24
	SINGLE_PAIR_REQUIRED          NotifyType = 34
	NO_ADDITIONAL_SAS             NotifyType = 35
	INTERNAL_ADDRESS_FAILURE      NotifyType = 36
	FAILED_CP_REQUIRED            NotifyType = 37
	TS_UNACCEPTABLE               NotifyType = 38
	INVALID_SELECTORS             NotifyType = 39
	TEMPORARY_FAILURE             NotifyType = 43
	CHILD_SA_NOT_FOUND            NotifyType = 44
	INITIAL_CONTACT               NotifyType = 16384
	SET_WINDOW_SIZE               NotifyType = 16385
	ADDITIONAL_TS_POSSIBLE        NotifyType = 16386
	IPCOMP_SUPPORTED              NotifyType = 16387
	NAT_DETECTION_SOURCE_IP       NotifyType = 16388
	NAT_DETECTION_DESTINATION_IP  NotifyType = 16389
	COOKIE                        NotifyType = 16390
	USE_TRANSPORT_MODE            NotifyType = 16391
	REKEY_SA                      NotifyType = 16393
	ESP_TFC_PADDING_NOT_SUPPORTED NotifyType = 16394
	NON_FIRST_FRAGMENTS_ALSO      NotifyType = 16395
	MOBIKE_SUPPORTED              NotifyType = 16396
	CHILDLESS_IKEV2_SUPPORTED     NotifyType = 16418
	IKEV2_FRAGMENTATION_SUPPORTED NotifyType = 16430
	SIGNATURE_HASH_ALGORITHMS     NotifyType = 16431
)

// IsError reports an error notification (types below 16384).
func (n NotifyType) IsError() bool { return n < 16384 }

func (n NotifyType) String() string {
	names := map[NotifyType]string{
		UNSUPPORTED_CRITICAL_PAYLOAD: "UNSUPPORTED_CRITICAL_PAYLOAD", INVALID_IKE_SPI: "INVALID_IKE_SPI",
		INVALID_MAJOR_VERSION: "INVALID_MAJOR_VERSION", INVALID_SYNTAX: "INVALID_SYNTAX", INVALID_MESSAGE_ID: "INVALID_MESSAGE_ID",
		INVALID_SPI: "INVALID_SPI", NO_PROPOSAL_CHOSEN: "NO_PROPOSAL_CHOSEN", INVALID_KE_PAYLOAD: "INVALID_KE_PAYLOAD",
		AUTHENTICATION_FAILED: "AUTHENTICATION_FAILED", SINGLE_PAIR_REQUIRED: "SINGLE_PAIR_REQUIRED",
		NO_ADDITIONAL_SAS: "NO_ADDITIONAL_SAS", INTERNAL_ADDRESS_FAILURE: "INTERNAL_ADDRESS_FAILURE",
		FAILED_CP_REQUIRED: "FAILED_CP_REQUIRED", TS_UNACCEPTABLE: "TS_UNACCEPTABLE", INVALID_SELECTORS: "INVALID_SELECTORS",
		TEMPORARY_FAILURE: "TEMPORARY_FAILURE", CHILD_SA_NOT_FOUND: "CHILD_SA_NOT_FOUND", INITIAL_CONTACT: "INITIAL_CONTACT",
		SET_WINDOW_SIZE: "SET_WINDOW_SIZE", ADDITIONAL_TS_POSSIBLE: "ADDITIONAL_TS_POSSIBLE", IPCOMP_SUPPORTED: "IPCOMP_SUPPORTED",
		NAT_DETECTION_SOURCE_IP: "NAT_DETECTION_SOURCE_IP", NAT_DETECTION_DESTINATION_IP: "NAT_DETECTION_DESTINATION_IP",
		COOKIE: "COOKIE", USE_TRANSPORT_MODE: "USE_TRANSPORT_MODE", REKEY_SA: "REKEY_SA",
		ESP_TFC_PADDING_NOT_SUPPORTED: "ESP_TFC_PADDING_NOT_SUPPORTED", NON_FIRST_FRAGMENTS_ALSO: "NON_FIRST_FRAGMENTS_ALSO",
		MOBIKE_SUPPORTED: "MOBIKE_SUPPORTED", CHILDLESS_IKEV2_SUPPORTED: "CHILDLESS_IKEV2_SUPPORTED",
		IKEV2_FRAGMENTATION_SUPPORTED: "IKEV2_FRAGMENTATION_SUPPORTED", SIGNATURE_HASH_ALGORITHMS: "SIGNATURE_HASH_ALGORITHMS",
	}
	if s, ok := names[n]; ok {
		return s
	}
	return fmt.Sprintf("NOTIFY_%d", uint16(n))
}
