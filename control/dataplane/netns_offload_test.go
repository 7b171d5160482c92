package dataplane_test

import (
	"os/exec"
	"testing"
)

// ethtoolTx switches tx checksum offload of dev in the named namespace.
func ethtoolTx(t *testing.T, ns, dev, state string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", state).CombinedOutput(); err != nil {
		t.Fatalf("ethtool -K %s tx %s in %s: %v %s", dev, state, ns, err, out)
	}
}

// TestNetnsMSSTxOffload: hosts whose veth has tx checksum offload on send
// SYNs with a partial checksum (CHECKSUM_PARTIAL) into the router's XDP;
// the router's ports complete checksums in software, as a NIC would on the
// wire, so a checksum the clamp got wrong makes the receiver drop the
// segment. The connection must succeed with the clamped MSS on both sides.
// The ports do not redirect: an XDP_REDIRECT frame loses the skb's partial
// checksum state, so redirect-capable ports need peers that send complete
// checksums (any real NIC does).
func TestNetnsMSSTxOffload(t *testing.T) {
	l := newLab(t)
	for _, n := range []string{l.names[0], l.names[2]} {
		ethtoolTx(t, n, "eth0", "on")
	}
	for _, dev := range []string{"rtt", "rtu"} {
		ethtoolTx(t, l.names[1], dev, "off")
	}
	spec := labSpec()
	for i := range spec.Interfaces {
		spec.Interfaces[i].Redirect = false
	}
	spec.TCPMSS.AllTCP = 1200
	l.attach(t, spec)
	_, acc := listenTCP(t, l.uh, "10.10.2.2:80")
	c, err := dialTCP(t, l.th, "10.10.2.2:80")
	if err != nil {
		t.Fatalf("connect through the clamping router with tx offload on: %v", err)
	}
	defer c.Close()
	srv := <-acc
	if got := maxseg(t, srv); got > 1200 {
		t.Errorf("receiver's TCP_MAXSEG %d with all-tcp 1200", got)
	}
	if got := maxseg(t, c); got > 1200 {
		t.Errorf("initiator's TCP_MAXSEG %d: the SYN-ACK was not clamped", got)
	}
	if err := echoOK(c); err != nil {
		t.Errorf("echo over the clamped connection: %v", err)
	}
}
