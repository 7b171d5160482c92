package config

// DefaultsVersion identifies the defaults table below. Bump it whenever a
// default changes so that operators can tell which values a build proposes.
const DefaultsVersion = 1

// Defaults are the values bpfvpn applies where a proposal, policy, gateway or
// VPN leaves something out (reference §6 and §5).
var Defaults = struct {
	IKEAuthenticationMethod    string
	IKEDHGroup                 int
	IKEEncryptionAlgorithm     string
	IKEAuthenticationAlgorithm string
	IKELifetimeSeconds         int
	IKEPolicyMode              string
	IKEGatewayVersion          int
	DPDMode                    string
	DPDInterval                int
	DPDThreshold               int
	IPsecProtocol              string
	IPsecEncryptionAlgorithm   string
	IPsecLifetimeSeconds       int
	IPsecLifetimeKilobytes     int // 0 = unlimited
	EstablishTunnels           string
	DFBit                      string
	TCPMSSIPsecVPN             int
	RoutePreference            int
	ProxyIdentityService       string
}{
	IKEAuthenticationMethod:    "pre-shared-keys",
	IKEDHGroup:                 19,
	IKEEncryptionAlgorithm:     "aes-256-cbc",
	IKEAuthenticationAlgorithm: "sha-256",
	IKELifetimeSeconds:         28800,
	IKEPolicyMode:              "main",
	IKEGatewayVersion:          1,
	DPDMode:                    "optimized",
	DPDInterval:                10,
	DPDThreshold:               5,
	IPsecProtocol:              "esp",
	IPsecEncryptionAlgorithm:   "aes-256-gcm",
	IPsecLifetimeSeconds:       3600,
	IPsecLifetimeKilobytes:     0,
	EstablishTunnels:           "on-traffic",
	DFBit:                      "clear",
	TCPMSSIPsecVPN:             1320,
	RoutePreference:            5,
	ProxyIdentityService:       "any",
}

// ikeSetEntry is one proposal of an IKE proposal-set.
type ikeSetEntry struct {
	dh        int
	enc, auth string
}

// ikeProposalSets are the IKE proposal-set expansions, in preference order.
var ikeProposalSets = map[string][]ikeSetEntry{
	"basic":          {{1, "des-cbc", "sha1"}, {1, "des-cbc", "md5"}},
	"compatible":     {{2, "3des-cbc", "sha1"}, {2, "3des-cbc", "md5"}, {2, "des-cbc", "sha1"}, {2, "des-cbc", "md5"}},
	"standard":       {{2, "aes-128-cbc", "sha1"}, {2, "3des-cbc", "sha1"}},
	"prime-128":      {{19, "aes-128-gcm", "sha-256"}},
	"prime-256":      {{20, "aes-256-gcm", "sha-384"}},
	"suiteb-gcm-128": {{19, "aes-128-gcm", "sha-256"}},
	"suiteb-gcm-256": {{20, "aes-256-gcm", "sha-384"}},
}

// ipsecSetEntry is one proposal of an IPsec proposal-set.
type ipsecSetEntry struct{ enc, auth string }

// ipsecProposalSets are the IPsec proposal-set expansions with their PFS group.
var ipsecProposalSets = map[string]struct {
	pfs       int
	proposals []ipsecSetEntry
}{
	"basic":          {0, []ipsecSetEntry{{"des-cbc", "hmac-sha1-96"}, {"des-cbc", "hmac-md5-96"}}},
	"compatible":     {0, []ipsecSetEntry{{"3des-cbc", "hmac-sha1-96"}, {"3des-cbc", "hmac-md5-96"}, {"des-cbc", "hmac-sha1-96"}, {"des-cbc", "hmac-md5-96"}}},
	"standard":       {2, []ipsecSetEntry{{"3des-cbc", "hmac-sha1-96"}, {"aes-128-cbc", "hmac-sha1-96"}}},
	"prime-128":      {19, []ipsecSetEntry{{"aes-128-gcm", ""}}},
	"prime-256":      {20, []ipsecSetEntry{{"aes-256-gcm", ""}}},
	"suiteb-gcm-128": {19, []ipsecSetEntry{{"aes-128-gcm", ""}}},
	"suiteb-gcm-256": {20, []ipsecSetEntry{{"aes-256-gcm", ""}}},
}

// Algorithm vocabularies. weak marks algorithms accepted only with a warning.
var (
	ikeEncryptionAlgorithms   = []string{"des-cbc", "3des-cbc", "aes-128-cbc", "aes-192-cbc", "aes-256-cbc", "aes-128-gcm", "aes-256-gcm"}
	ikeAuthAlgorithms         = []string{"md5", "sha1", "sha-256", "sha-384", "sha-512"}
	ikeAuthMethods            = []string{"pre-shared-keys", "rsa-signatures", "dsa-signatures", "ecdsa-signatures-256", "ecdsa-signatures-384"}
	ipsecEncryptionAlgorithms = []string{"des-cbc", "3des-cbc", "aes-128-cbc", "aes-192-cbc", "aes-256-cbc", "aes-128-gcm", "aes-192-gcm", "aes-256-gcm"}
	ipsecAuthAlgorithms       = []string{"hmac-md5-96", "hmac-sha1-96", "hmac-sha-256-96", "hmac-sha-256-128", "hmac-sha-384-192", "hmac-sha-512-256"}
	dhGroups                  = map[string]int{"group1": 1, "group2": 2, "group5": 5, "group14": 14, "group15": 15, "group16": 16, "group19": 19, "group20": 20, "group21": 21, "group24": 24}
	weakAlgorithms            = map[string]bool{"des-cbc": true, "3des-cbc": true, "md5": true, "hmac-md5-96": true}
	weakGroups                = map[int]bool{1: true, 2: true, 5: true}
)

func isGCM(enc string) bool { return len(enc) > 4 && enc[len(enc)-4:] == "-gcm" }

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if x == s {
			return true
		}
	}
	return false
}
