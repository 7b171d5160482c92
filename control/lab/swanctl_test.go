package lab

import (
	"strings"
	"testing"
)

// TestSwanctlConfigMirrorsSRX2 checks the strongSwan SRX2 against the
// reference: addresses, identities, proposals of §6, the st0.0 if_id, PSK.
func TestSwanctlConfigMirrorsSRX2(t *testing.T) {
	for _, c := range []struct {
		version string
		want    string
	}{{"", "version = 1"}, {"v1-only", "version = 1"}, {"v2-only", "version = 2"}} {
		conf, err := SwanctlConfig(SRX2, ConfigOptions{IKEVersion: c.version, PreSharedKey: "s3cret"})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{c.want, "local_addrs = 172.16.23.1", "remote_addrs = 172.16.13.1",
			"id = 172.16.23.1", "id = 172.16.13.1", "proposals = aes256-sha256-ecp256", "rekey_time = 28800s",
			"esp_proposals = aes256gcm16", "rekey_time = 3600s", "local_ts = 0.0.0.0/0", "remote_ts = 0.0.0.0/0",
			"if_id_in = 1", "if_id_out = 1", "VPN-to-Host1 {", `secret = "s3cret"`} {
			if !strings.Contains(conf, want) {
				t.Errorf("%q: swanctl.conf lacks %q:\n%s", c.version, want, conf)
			}
		}
	}
	if conf, _ := SwanctlConfig(SRX2, ConfigOptions{}); !strings.Contains(conf, `secret = "$ABC123"`) {
		t.Errorf("default PSK is not the reference's placeholder:\n%s", conf)
	}
	for _, bad := range []ConfigOptions{{IKEVersion: "v3"}, {PreSharedKey: `a"b`}} {
		if _, err := SwanctlConfig(SRX2, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := SwanctlConfig(Host1, ConfigOptions{}); err == nil {
		t.Error("host1 accepted as a gateway")
	}
}
