package ops

import (
	"fmt"
	"strings"
)

// Views carry algorithms by their names in the configuration language
// (`encryption-algorithm aes-256-gcm`, `authentication-algorithm
// hmac-sha-256-128`, `dh-group group19`, IKE `authentication-algorithm
// sha-256`). The functions below turn them into the spellings SRX devices
// print in each output; a name they do not know is printed unchanged.

// cipher splits a configuration-language cipher name into the family a
// device prints ("aes-gcm", "aes-cbc", "3des-cbc") and the key length in bits.
func cipher(name string) (family string, bits int, ok bool) {
	switch name {
	case "aes-128-gcm":
		return "aes-gcm", 128, true
	case "aes-192-gcm":
		return "aes-gcm", 192, true
	case "aes-256-gcm":
		return "aes-gcm", 256, true
	case "aes-128-cbc":
		return "aes-cbc", 128, true
	case "aes-192-cbc":
		return "aes-cbc", 192, true
	case "aes-256-cbc":
		return "aes-cbc", 256, true
	case "3des-cbc":
		return "3des-cbc", 192, true
	case "des-cbc":
		return "des-cbc", 64, true
	}
	return "", 0, false
}

func isAEAD(encryption string) bool {
	family, _, ok := cipher(encryption)
	return ok && family == "aes-gcm"
}

// espListAlgorithm is the Algorithm column of `show security ipsec
// security-associations`: ESP:aes-gcm-256/None, ESP:aes-cbc-256/sha256.
func espListAlgorithm(protocol, encryption, authentication string) string {
	enc := encryption
	if family, bits, ok := cipher(encryption); ok {
		enc = family
		if family == "aes-gcm" || family == "aes-cbc" {
			enc = fmt.Sprintf("%s-%d", family, bits)
		}
	}
	auth := "None"
	if authentication != "" && !isAEAD(encryption) {
		auth = shortHash(authentication)
	}
	if protocol == "" {
		protocol = "ESP"
	}
	return strings.ToUpper(protocol) + ":" + enc + "/" + auth
}

// shortHash maps an IPsec authentication-algorithm to the short hash name
// of the list view (hmac-sha-256-128 → sha256).
func shortHash(name string) string {
	switch name {
	case "hmac-sha-256-128", "hmac-sha-256":
		return "sha256"
	case "hmac-sha-384", "hmac-sha-384-192":
		return "sha384"
	case "hmac-sha-512", "hmac-sha-512-256":
		return "sha512"
	case "hmac-sha1-96", "hmac-sha1":
		return "sha1"
	case "hmac-md5-96", "hmac-md5":
		return "md5"
	}
	return name
}

// espDetailAlgorithms gives the Authentication and Encryption values of the
// detail view: "aes256-gcm" / "aes-gcm (256 bits)" for AEAD,
// "hmac-sha256-128" / "aes-cbc (256 bits)" otherwise.
func espDetailAlgorithms(encryption, authentication string) (auth, enc string) {
	enc = encryption
	family, bits, ok := cipher(encryption)
	if ok {
		enc = fmt.Sprintf("%s (%d bits)", family, bits)
	}
	switch {
	case ok && family == "aes-gcm":
		auth = fmt.Sprintf("aes%d-gcm", bits)
	case authentication == "":
		auth = "None"
	default:
		auth = hmacName(authentication)
	}
	return auth, enc
}

// hmacName maps an IPsec authentication-algorithm to the integrity
// transform name devices print (hmac-sha-256-128 → hmac-sha256-128).
func hmacName(name string) string {
	switch name {
	case "hmac-sha-256-128":
		return "hmac-sha256-128"
	case "hmac-sha-384", "hmac-sha-384-192":
		return "hmac-sha384-192"
	case "hmac-sha-512", "hmac-sha-512-256":
		return "hmac-sha512-256"
	}
	return name
}

// ikeAlgorithmNames gives the Algorithms block of the IKE detail view from
// an IKE proposal's authentication-algorithm, encryption-algorithm and
// dh-group (sha-256, aes-256-cbc, group19 → hmac-sha256-128, aes256-cbc,
// hmac-sha256, DH-group-19).
func ikeAlgorithmNames(a IKEAlgorithms) (auth, enc, prf, dh string) {
	auth, prf = a.Authentication, a.PRF
	switch a.Authentication {
	case "sha-256":
		auth = "hmac-sha256-128"
	case "sha-384":
		auth = "hmac-sha384-192"
	case "sha-512":
		auth = "hmac-sha512-256"
	case "sha1":
		auth = "hmac-sha1-96"
	case "md5":
		auth = "hmac-md5-96"
	case "":
		auth = "None"
	}
	if prf == "" {
		prf = a.Authentication
	}
	switch prf {
	case "sha-256", "hmac-sha-256":
		prf = "hmac-sha256"
	case "sha-384", "hmac-sha-384":
		prf = "hmac-sha384"
	case "sha-512", "hmac-sha-512":
		prf = "hmac-sha512"
	case "sha1", "hmac-sha1":
		prf = "hmac-sha1"
	case "md5", "hmac-md5":
		prf = "hmac-md5"
	}
	enc = a.Encryption
	if family, bits, ok := cipher(a.Encryption); ok {
		switch family {
		case "aes-gcm":
			enc = fmt.Sprintf("aes%d-gcm", bits)
		case "aes-cbc":
			enc = fmt.Sprintf("aes%d-cbc", bits)
		default:
			enc = family
		}
	}
	dh = a.DHGroup
	if n, ok := strings.CutPrefix(a.DHGroup, "group"); ok {
		dh = "DH-group-" + n
	}
	return auth, enc, prf, dh
}
