package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/bpfvpn/bpfvpn/control/config"
)

// objects returns the named objects of cfg with a fingerprint of each: equal
// fingerprints mean the object did not change. Positions in the file are not
// part of a fingerprint (moving a statement is no change); secrets are, as a
// hash that is never printed.
func objects(cfg *config.Config) map[string]string {
	out := map[string]string{}
	if cfg == nil {
		return out
	}
	for _, ifc := range cfg.Interfaces {
		for _, u := range ifc.Units {
			out["interfaces "+u.Name] = fingerprint(u)
		}
	}
	for _, r := range cfg.Routes {
		out["routing-options static route "+r.Prefix.String()] = fingerprint(r)
	}
	for _, z := range cfg.Zones {
		out["security zones security-zone "+z.Name] = fingerprint(z)
	}
	for _, b := range cfg.AddressBooks {
		out["security address-book "+b.Name] = fingerprint(b)
	}
	for _, a := range cfg.Applications {
		out["applications application "+a.Name] = fingerprint(a)
	}
	for _, a := range cfg.ApplicationSets {
		out["applications application-set "+a.Name] = fingerprint(a)
	}
	for _, pc := range cfg.Policies.Contexts {
		for i, p := range pc.Policies {
			out["security policies from-zone "+pc.From+" to-zone "+pc.To+" policy "+p.Name] = policyFingerprint(i, p)
		}
	}
	out["security policies default-policy"] = fingerprint(cfg.Policies.Default)
	out["security flow"] = fingerprint(cfg.Flow)
	for _, v := range cfg.IPsec.VPNs {
		out["security ipsec vpn "+v.Name] = VPNFingerprint(v)
	}
	return out
}

// policyFingerprint covers what a policy says and its place in its zone
// pair, without reflection: configurations hold up to 100,000 policies.
// The prefixes its address names resolve to are covered by the address
// books' own fingerprints.
func policyFingerprint(seq int, p *config.Policy) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(seq))
	for _, list := range [][]string{p.SourceAddresses, p.DestinationAddresses, p.Applications} {
		b.WriteByte('|')
		for _, n := range list {
			b.WriteString(n)
			b.WriteByte(',')
		}
	}
	fmt.Fprintf(&b, "|%d|%t|%t|%t|%s", p.Action, p.Count, p.LogInit, p.LogClose, p.Description)
	return b.String()
}

// VPNFingerprint covers everything that shapes a VPN's tunnel: its own
// settings, its gateway, IKE policy and proposals (with the pre-shared key),
// IPsec policy and proposals. A VPN whose fingerprint is unchanged by a
// commit keeps its tunnel running.
func VPNFingerprint(v *config.VPN) string {
	h := sha256.New()
	h.Write([]byte(fingerprint(v)))
	if g := v.Gateway; g != nil {
		h.Write([]byte(fingerprint(g)))
		if p := g.Policy; p != nil {
			h.Write([]byte(fingerprint(p)))
			psk := sha256.Sum256(p.PreSharedKey.Bytes())
			h.Write(psk[:])
		}
	}
	if p := v.Policy; p != nil {
		h.Write([]byte(fingerprint(p)))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fingerprint is the JSON form of v without "pos" members.
func fingerprint(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("unencodable %T: %v", v, err)
	}
	var tree any
	if err := json.Unmarshal(data, &tree); err != nil {
		return string(data)
	}
	stripPos(tree)
	data, _ = json.Marshal(tree)
	return string(data)
}

func stripPos(v any) {
	switch t := v.(type) {
	case map[string]any:
		delete(t, "pos")
		for _, c := range t {
			stripPos(c)
		}
	case []any:
		for _, c := range t {
			stripPos(c)
		}
	}
}

// Diff lists the objects that a commit of next over prev adds (+), deletes
// (-) or changes (~), sorted by name. prev nil means nothing is active.
func Diff(prev, next *config.Config) []string {
	return diffObjects(objects(prev), objects(next))
}

func diffObjects(a, b map[string]string) []string {
	var out []string
	for k, fb := range b {
		fa, ok := a[k]
		switch {
		case !ok:
			out = append(out, "+ "+k)
		case fa != fb:
			out = append(out, "~ "+k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, "- "+k)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i][2:] != out[j][2:] {
			return out[i][2:] < out[j][2:]
		}
		return out[i] < out[j]
	})
	return out
}
