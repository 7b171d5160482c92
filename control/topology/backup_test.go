package topology

import (
	"testing"

	"github.com/bpfvpn/bpfvpn/control/config"
	"github.com/bpfvpn/bpfvpn/control/daemon"
	"github.com/bpfvpn/bpfvpn/control/lab"
)

// checkConfigs checks that every gateway's configuration of a topology
// parses and translates into IKE tunnels, and that SRX1 has two VPNs.
func checkConfigs(t *testing.T, configOf func(gw string) (string, error)) {
	t.Helper()
	for _, gw := range []string{lab.SRX1, lab.SRX2, SRX3} {
		text, err := configOf(gw)
		if err != nil {
			t.Fatal(err)
		}
		cfg, diags := config.ParseBytes(gw+".conf", []byte(text))
		if cfg == nil {
			t.Fatalf("%s: %s", gw, diags)
		}
		for _, v := range cfg.IPsec.VPNs {
			if _, err := daemon.TunnelOf(v); err != nil {
				t.Errorf("%s: %v", gw, err)
			}
		}
		if gw == lab.SRX1 && len(cfg.IPsec.VPNs) != 2 {
			t.Errorf("srx1: %d VPNs", len(cfg.IPsec.VPNs))
		}
	}
}

// The primary/backup configurations are valid and translate into IKE
// tunnels; SRX1 has two VPNs.
func TestBackupConfigsValid(t *testing.T) { checkConfigs(t, BackupConfig) }

// The hub-and-spoke configurations are valid; the hub's st0.0 is multipoint
// with two VPNs bound to it.
func TestHubConfigsValid(t *testing.T) { checkConfigs(t, HubConfig) }
