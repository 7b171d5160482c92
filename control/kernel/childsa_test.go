package kernel

import (
	"fmt"
	"strings"
	"testing"
)

func testSA() ChildSA {
	return ChildSA{
		Unit: 0, Local: ip("172.16.13.1"), Remote: ip("172.16.23.1"),
		InboundSPI: 0x8f3a21c4, OutboundSPI: 0x5b0c77e1,
		Encryption:   "rfc4106(gcm(aes))",
		Inbound:      Keys{Encryption: Key(strings.Repeat("\x11", 36))},
		Outbound:     Keys{Encryption: Key(strings.Repeat("\x22", 36))},
		ReplayWindow: 64,
	}
}

func TestChildSAValidate(t *testing.T) {
	if err := testSA().Validate(); err != nil {
		t.Fatal(err)
	}
	cbc := testSA()
	cbc.Encryption, cbc.Integrity = "cbc(aes)", "hmac(sha256)"
	cbc.Inbound = Keys{Encryption: Key(make([]byte, 32)), Integrity: Key(make([]byte, 32))}
	cbc.Outbound = cbc.Inbound
	if err := cbc.Validate(); err != nil {
		t.Errorf("cbc/sha256: %v", err)
	}
	if cbc.truncBits() != 128 {
		t.Errorf("sha256 truncation %d, want 128", cbc.truncBits())
	}
	mut := []func(*ChildSA){
		func(c *ChildSA) { c.Unit = -1 },
		func(c *ChildSA) { c.Remote = ip("fd00::1") },
		func(c *ChildSA) { c.InboundSPI = 5 },
		func(c *ChildSA) { c.Inbound.Encryption = Key(make([]byte, 17)) },
		func(c *ChildSA) { c.Integrity = "hmac(sha256)" },
		func(c *ChildSA) { c.ESN, c.ReplayWindow = true, 0 },
		func(c *ChildSA) { c.Encap = &UDPEncap{LocalPort: 4500} },
		func(c *ChildSA) { c.Selectors = []Selector{{Local: pfx("10.0.0.0/8"), Remote: pfx("fd00::/8")}} },
		func(c *ChildSA) { c.Encryption = "cbc(aes)"; c.Inbound.Encryption = Key(make([]byte, 16)) },
	}
	for i, m := range mut {
		c := testSA()
		m(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("mutation %d validated", i)
		}
	}
}

// TestKeysNeverPrinted checks that key material does not reach text output
// with any verb, nor through Validate's errors.
func TestKeysNeverPrinted(t *testing.T) {
	c := testSA()
	c.Inbound.Encryption = Key("SECRETSECRETSECRETSECRETSECRETSECRE")
	for _, s := range []string{
		fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %x %s %q", c, c, c, c.Inbound.Encryption, c.Inbound.Encryption, c.Inbound.Encryption),
		fmt.Sprintf("%+v", c.Inbound),
	} {
		if strings.Contains(s, "SECRET") || strings.Contains(s, fmt.Sprintf("%x", "SECRET")) {
			t.Errorf("key material printed: %s", s)
		}
	}
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("Validate error %v", err)
	}
}

func TestWantPolicies(t *testing.T) {
	ps := wantPolicies(testSA())
	if len(ps) != 6 {
		t.Fatalf("%d policies, want out/in/fwd for two families", len(ps))
	}
	out, in := ps[0], ps[1]
	if out.Dir != 1 || out.TmplSrc != ip("172.16.13.1") || out.TmplDst != ip("172.16.23.1") {
		t.Errorf("out policy %+v", out)
	}
	if in.Dir != 0 || in.TmplSrc != ip("172.16.23.1") || in.TmplDst != ip("172.16.13.1") {
		t.Errorf("in policy %+v", in)
	}
	if ps[3].Src != pfx("::/0") {
		t.Errorf("second family selector %v", ps[3].Src)
	}
}
