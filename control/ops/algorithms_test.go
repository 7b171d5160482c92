package ops_test

import (
	"testing"

	"github.com/bpfvpn/bpfvpn/control/ops"
)

func TestCanonicalNames(t *testing.T) {
	cases := []struct {
		f        func(string) string
		in, want string
	}{
		{ops.CanonicalCipher, "AES-CBC-256", "aes-256-cbc"},
		{ops.CanonicalCipher, "AES-GCM-16-256", "aes-256-gcm"},
		{ops.CanonicalCipher, "AES-GCM-16-128", "aes-128-gcm"},
		{ops.CanonicalCipher, "aes-gcm-256", "aes-256-gcm"},
		{ops.CanonicalCipher, "aes256-cbc", "aes-256-cbc"},
		{ops.CanonicalCipher, "aes-192-cbc", "aes-192-cbc"},
		{ops.CanonicalCipher, "3DES-CBC", "3des-cbc"},
		{ops.CanonicalCipher, "CHACHA20-POLY1305", "CHACHA20-POLY1305"},
		{ops.CanonicalIntegrity, "HMAC-SHA2-256-128", "hmac-sha-256-128"},
		{ops.CanonicalIntegrity, "HMAC-SHA1-96", "hmac-sha1-96"},
		{ops.CanonicalIntegrity, "hmac-sha-384", "hmac-sha-384-192"},
		{ops.CanonicalIntegrity, "NONE", ""},
		{ops.CanonicalHash, "PRF-HMAC-SHA2-256", "sha-256"},
		{ops.CanonicalHash, "PRF-HMAC-SHA1", "sha1"},
		{ops.CanonicalHash, "hmac-sha-256", "sha-256"},
		{ops.CanonicalHash, "HMAC-SHA2-384-192", "sha-384"},
		{ops.CanonicalHash, "sha-512", "sha-512"},
		{ops.CanonicalHash, "NONE", ""},
		{ops.CanonicalDHGroup, "ECP-256", "group19"},
		{ops.CanonicalDHGroup, "MODP-2048", "group14"},
		{ops.CanonicalDHGroup, "DH-group-20", "group20"},
		{ops.CanonicalDHGroup, "21", "group21"},
		{ops.CanonicalDHGroup, "group5", "group5"},
	}
	for _, tc := range cases {
		if got := tc.f(tc.in); got != tc.want {
			t.Errorf("%q → %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The engines' own spellings render exactly like the configuration names.
func TestEngineAlgorithmNamesRender(t *testing.T) {
	v2 := ops.IKESADetails{SAs: []ops.IKESA{{Algorithms: ops.IKEAlgorithms{Authentication: "HMAC-SHA2-256-128",
		Encryption: "AES-CBC-256", PRF: "PRF-HMAC-SHA2-256", DHGroup: "ECP-256"}}}}
	v1 := ops.IKESADetails{SAs: []ops.IKESA{{Algorithms: ops.IKEAlgorithms{Authentication: "hmac-sha-256",
		Encryption: "aes256-cbc", PRF: "hmac-sha-256", DHGroup: "DH-group-19"}}}}
	cfg := ops.IKESADetails{SAs: []ops.IKESA{{Algorithms: ops.IKEAlgorithms{Authentication: "sha-256",
		Encryption: "aes-256-cbc", DHGroup: "group19"}}}}
	want := text(t, cfg)
	if got := text(t, v2); got != want {
		t.Errorf("IKEv2 names:\n%s\nwant\n%s", got, want)
	}
	if got := text(t, v1); got != want {
		t.Errorf("IKEv1 names:\n%s\nwant\n%s", got, want)
	}
	esp := ops.IPsecSAs{SAs: []ops.IPsecSA{{ID: 1, Encryption: "AES-GCM-16-256"}}}
	cfgESP := ops.IPsecSAs{SAs: []ops.IPsecSA{{ID: 1, Encryption: "aes-256-gcm"}}}
	if text(t, esp) != text(t, cfgESP) || text(t, ops.IPsecSADetails(esp)) != text(t, ops.IPsecSADetails(cfgESP)) {
		t.Errorf("ESP names render differently:\n%s", text(t, esp))
	}
}
