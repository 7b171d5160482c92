package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"sort"
	"strconv"

	"github.com/bpfvpn/bpfvpn/control/config"
)

// objKey names one object of a configuration. Policies keep their three
// names apart so that 100,000 of them cost no string building; every other
// object is named by its statement path in name.
type objKey struct {
	from, to, name string
	policy         bool
}

func (k objKey) String() string {
	if k.policy {
		return "security policies from-zone " + k.from + " to-zone " + k.to + " policy " + k.name
	}
	return k.name
}

// objects maps the named objects of cfg to a hash of what each says: equal
// hashes mean the object did not change. Positions in the file are not part
// of a hash (moving a statement is no change); secrets are, hashed.
type objects map[objKey]uint64

// hashSeed is fixed for the process: hashes are only compared within it.
var hashSeed = maphash.MakeSeed()

func fpHash(v any) uint64 { return maphash.String(hashSeed, fingerprint(v)) }

func objectsOf(cfg *config.Config) objects {
	out := objects{}
	if cfg == nil {
		return out
	}
	named := func(name string, v any) { out[objKey{name: name}] = fpHash(v) }
	for _, ifc := range cfg.Interfaces {
		for _, u := range ifc.Units {
			named("interfaces "+u.Name, u)
		}
	}
	for _, r := range cfg.Routes {
		named("routing-options static route "+r.Prefix.String(), r)
	}
	for _, z := range cfg.Zones {
		named("security zones security-zone "+z.Name, z)
	}
	for _, b := range cfg.AddressBooks {
		named("security address-book "+b.Name, b)
	}
	for _, a := range cfg.Applications {
		named("applications application "+a.Name, a)
	}
	for _, a := range cfg.ApplicationSets {
		named("applications application-set "+a.Name, a)
	}
	for _, pc := range cfg.Policies.Contexts {
		for i, p := range pc.Policies {
			out[objKey{from: pc.From, to: pc.To, name: p.Name, policy: true}] = policyHash(pc, i)
		}
	}
	named("security policies default-policy", cfg.Policies.Default)
	named("security flow", cfg.Flow)
	for _, v := range cfg.IPsec.VPNs {
		out[objKey{name: "security ipsec vpn " + v.Name}] = maphash.String(hashSeed, VPNFingerprint(v))
	}
	return out
}

// policyHash covers what policy i of pc says and which policy precedes it
// (its place in the zone pair), without reflection or allocation:
// configurations hold up to 100,000 policies. The prefixes its address
// names resolve to are covered by the address books' own hashes.
func policyHash(pc *config.PolicyContext, i int) uint64 {
	p := pc.Policies[i]
	var h maphash.Hash
	h.SetSeed(hashSeed)
	if i > 0 {
		h.WriteString(pc.Policies[i-1].Name)
	}
	for _, list := range [][]string{p.SourceAddresses, p.DestinationAddresses, p.Applications} {
		h.WriteByte('|')
		for _, n := range list {
			h.WriteString(n)
			h.WriteByte(',')
		}
	}
	var b [32]byte
	f := strconv.AppendInt(b[:0], int64(p.Action), 10)
	for _, v := range []bool{p.Count, p.LogInit, p.LogClose} {
		f = strconv.AppendBool(append(f, '|'), v)
	}
	h.Write(f)
	h.WriteByte('|')
	h.WriteString(p.Description)
	return h.Sum64()
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
	return diffObjects(objectsOf(prev), objectsOf(next))
}

func diffObjects(a, b objects) []string {
	var out []string
	for k, fb := range b {
		fa, ok := a[k]
		switch {
		case !ok:
			out = append(out, "+ "+k.String())
		case fa != fb:
			out = append(out, "~ "+k.String())
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, "- "+k.String())
		}
	}
	sortChanges(out)
	return out
}

func sortChanges(out []string) {
	sort.Slice(out, func(i, j int) bool {
		if out[i][2:] != out[j][2:] {
			return out[i][2:] < out[j][2:]
		}
		return out[i] < out[j]
	})
}

// diffPolicies lists the changes of the named policies only (a delta that
// touched nothing else): the cost is that of the touched zone pairs' scan,
// not of the configuration.
func diffPolicies(prev, next *config.Config, refs []config.PolicyRef) []string {
	find := func(cfg *config.Config, r config.PolicyRef) (uint64, bool) {
		for _, pc := range cfg.Policies.Contexts {
			if pc.From != r.From || pc.To != r.To {
				continue
			}
			for i, p := range pc.Policies {
				if p.Name == r.Name {
					return policyHash(pc, i), true
				}
			}
		}
		return 0, false
	}
	var out []string
	for _, r := range refs {
		k := objKey{from: r.From, to: r.To, name: r.Name, policy: true}.String()
		a, inPrev := find(prev, r)
		b, inNext := find(next, r)
		switch {
		case !inPrev && inNext:
			out = append(out, "+ "+k)
		case inPrev && !inNext:
			out = append(out, "- "+k)
		case inPrev && a != b:
			out = append(out, "~ "+k)
		}
	}
	sortChanges(out)
	return out
}

// updatePolicyObjects brings the hashes objs of prev up to date for next,
// which differs from prev only in the policies refs names: those, and the
// policies that follow them before and after (their predecessor is part of
// their hash), are hashed again.
func updatePolicyObjects(objs objects, prev, next *config.Config, refs []config.PolicyRef) {
	ctxOf := func(cfg *config.Config, from, to string) *config.PolicyContext {
		for _, pc := range cfg.Policies.Contexts {
			if pc.From == from && pc.To == to {
				return pc
			}
		}
		return nil
	}
	type pair struct{ from, to string }
	again := map[pair]map[string]bool{}
	for _, r := range refs {
		k := pair{r.From, r.To}
		if again[k] == nil {
			again[k] = map[string]bool{}
		}
		again[k][r.Name] = true
		if pc := ctxOf(prev, r.From, r.To); pc != nil {
			for i, p := range pc.Policies {
				if p.Name == r.Name && i+1 < len(pc.Policies) {
					again[k][pc.Policies[i+1].Name] = true
				}
			}
		}
	}
	for k, names := range again {
		for n := range names {
			delete(objs, objKey{from: k.from, to: k.to, name: n, policy: true})
		}
		pc := ctxOf(next, k.from, k.to)
		if pc == nil {
			continue
		}
		// A few names: compare strings rather than hash every policy name.
		list := make([]string, 0, len(names))
		for n := range names {
			list = append(list, n)
		}
		touched := func(name string) bool {
			if len(list) > 8 {
				return names[name]
			}
			for _, n := range list {
				if n == name {
					return true
				}
			}
			return false
		}
		prevTouched := false
		for i, p := range pc.Policies {
			t := touched(p.Name)
			if t || prevTouched {
				objs[objKey{from: k.from, to: k.to, name: p.Name, policy: true}] = policyHash(pc, i)
			}
			prevTouched = t
		}
	}
}
