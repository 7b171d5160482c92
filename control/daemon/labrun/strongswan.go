package labrun

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/bpfvpn/bpfvpn/control/lab"
	"github.com/bpfvpn/bpfvpn/ike/interop"
)

// Peer names what plays a gateway role of the lab.
type Peer string

const (
	// PeerBpfvpn is a bpfvpn daemon with the reference configuration.
	PeerBpfvpn Peer = ""
	// PeerStrongSwan is strongSwan's charon with a swanctl.conf that
	// matches the reference configuration (lab.SwanctlConfig), installing
	// kernel XFRM SAs on an xfrm interface.
	PeerStrongSwan Peer = "strongswan"
)

// charonPlugins installs real kernel SAs (kernel-netlink), unlike the
// kernel-libipsec default of the interop harness.
const charonPlugins = "random nonce openssl kdf pem pkcs1 x509 pubkey kernel-netlink socket-default vici"

// daemonGateways are the gateways run by bpfvpn daemons.
func (r *Run) daemonGateways() []string {
	if r.opts.SRX2 == PeerStrongSwan {
		return []string{lab.SRX1}
	}
	return Gateways
}

// CharonDir is where the strongSwan SRX2 keeps its configuration and log.
func (r *Run) CharonDir() string { return filepath.Join(r.opts.Dir, lab.SRX2+"-charon") }

// Charon returns the strongSwan SRX2 (nil unless opts.SRX2 is
// PeerStrongSwan and Up started it).
func (r *Run) Charon() *interop.Charon { return r.charon }

// startCharon configures SRX2's namespace as a Linux gateway and starts
// charon there with the swanctl.conf that mirrors SRX1.
func (r *Run) startCharon() error {
	if why := interop.Available(); why != "" {
		return fmt.Errorf("%s: strongSwan unavailable: %s", lab.SRX2, why)
	}
	if err := r.lab.SetupLinuxGateway(lab.SRX2); err != nil {
		return err
	}
	conf, err := lab.SwanctlConfig(lab.SRX2, r.opts.Config)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.CharonDir(), 0o700); err != nil {
		return fmt.Errorf("%s: charon directory: %w", lab.SRX2, err)
	}
	ch, err := interop.StartCharon(interop.CharonOptions{
		Dir: r.CharonDir(), Netns: &interop.Netns{Name: r.lab.Namespace(lab.SRX2)},
		Plugins: charonPlugins, SwanctlConf: conf, LogLevel: 1,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", lab.SRX2, err)
	}
	r.charon = ch
	r.step("%s: strongSwan charon ready (pid %d, %s)", lab.SRX2, ch.Pid(), r.CharonDir())
	return nil
}

// charonState describes charon's SAs and reports whether an IKE SA is
// established with an installed CHILD SA.
func (r *Run) charonState() (string, bool) {
	sas, err := r.charon.ListSAs()
	if err != nil {
		return "charon: " + err.Error(), false
	}
	if len(sas) == 0 {
		return "charon: no IKE SA", false
	}
	state := ""
	up := false
	for _, sa := range sas {
		state += fmt.Sprintf("charon IKE SA %s %s", sa.Name, sa.State)
		for _, c := range sa.Children {
			state += fmt.Sprintf(", CHILD SA %s %s", c.Name, c.State)
			up = up || sa.State == "ESTABLISHED" && c.State == "INSTALLED"
		}
		state += "; "
	}
	return state[:len(state)-2], up
}
