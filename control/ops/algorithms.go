package ops

import (
	"fmt"
	"strconv"
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
	encryption, authentication = CanonicalCipher(encryption), CanonicalIntegrity(authentication)
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
	encryption, authentication = CanonicalCipher(encryption), CanonicalIntegrity(authentication)
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
	a = IKEAlgorithms{Authentication: CanonicalHash(a.Authentication), Encryption: CanonicalCipher(a.Encryption),
		PRF: CanonicalHash(a.PRF), DHGroup: CanonicalDHGroup(a.DHGroup)}
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

// The IKE engines report transforms by their IANA names (AES-CBC-256,
// AES-GCM-16-256, HMAC-SHA2-256-128, PRF-HMAC-SHA2-256, ECP-256) or in
// Junos spellings (aes256-cbc, hmac-sha-256, DH-group-19). The Canonical*
// functions turn every spelling they know into the configuration-language
// name the renderers expect; unknown names come back unchanged.

// CanonicalCipher names an encryption transform as in the configuration
// language: aes-256-gcm, aes-128-cbc, 3des-cbc.
func CanonicalCipher(name string) string {
	n := strings.ToLower(name)
	switch {
	case n == "3des-cbc" || n == "des-cbc":
		return n
	case strings.HasPrefix(n, "aes-gcm-"): // AES-GCM-16-256 (IANA) or aes-gcm-256 (Junos list view)
		parts := strings.Split(n, "-")
		return "aes-" + parts[len(parts)-1] + "-gcm"
	case strings.HasPrefix(n, "aes-cbc-"): // AES-CBC-256
		return "aes-" + strings.TrimPrefix(n, "aes-cbc-") + "-cbc"
	case strings.HasPrefix(n, "aes") && !strings.HasPrefix(n, "aes-"): // aes256-cbc, aes256-gcm
		if bits, mode, ok := strings.Cut(strings.TrimPrefix(n, "aes"), "-"); ok {
			return "aes-" + bits + "-" + mode
		}
	}
	return name
}

// CanonicalIntegrity names an IPsec integrity transform as in the
// configuration language (hmac-sha-256-128, hmac-sha1-96); "" for none.
func CanonicalIntegrity(name string) string {
	switch strings.ToLower(name) {
	case "", "none":
		return ""
	case "hmac-sha2-256-128", "hmac-sha2-256", "hmac-sha256-128", "hmac-sha-256", "hmac-sha-256-128", "sha-256", "sha256":
		return "hmac-sha-256-128"
	case "hmac-sha2-384-192", "hmac-sha2-384", "hmac-sha384-192", "hmac-sha-384", "hmac-sha-384-192", "sha-384", "sha384":
		return "hmac-sha-384-192"
	case "hmac-sha2-512-256", "hmac-sha2-512", "hmac-sha512-256", "hmac-sha-512", "hmac-sha-512-256", "sha-512", "sha512":
		return "hmac-sha-512-256"
	case "hmac-sha1-96", "hmac-sha1", "sha1":
		return "hmac-sha1-96"
	case "hmac-md5-96", "hmac-md5", "md5":
		return "hmac-md5-96"
	}
	return name
}

// CanonicalHash names the hash of an IKE proposal as in the configuration
// language (sha-256, sha1, md5) from an IKE integrity or PRF name; "" for
// none.
func CanonicalHash(name string) string {
	n := strings.TrimPrefix(strings.ToLower(name), "prf-")
	switch n {
	case "", "none":
		return ""
	case "sha-256", "sha-384", "sha-512", "sha1", "md5":
		return n
	}
	switch CanonicalIntegrity(n) {
	case "hmac-sha-256-128":
		return "sha-256"
	case "hmac-sha-384-192":
		return "sha-384"
	case "hmac-sha-512-256":
		return "sha-512"
	case "hmac-sha1-96":
		return "sha1"
	case "hmac-md5-96":
		return "md5"
	}
	return name
}

// CanonicalDHGroup names a key-exchange group as in the configuration
// language: group19 (from ECP-256, DH-group-19 or 19).
func CanonicalDHGroup(name string) string {
	n := strings.ToLower(name)
	switch n {
	case "modp-768":
		return "group1"
	case "modp-1024":
		return "group2"
	case "modp-1536":
		return "group5"
	case "modp-2048":
		return "group14"
	case "modp-3072":
		return "group15"
	case "modp-4096":
		return "group16"
	case "ecp-256":
		return "group19"
	case "ecp-384":
		return "group20"
	case "ecp-521":
		return "group21"
	case "curve25519":
		return "group31"
	}
	if g, ok := strings.CutPrefix(n, "dh-group-"); ok {
		return "group" + g
	}
	if _, err := strconv.Atoi(n); err == nil {
		return "group" + n
	}
	return name
}
