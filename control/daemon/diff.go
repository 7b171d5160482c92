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

// objects are the named objects of a configuration with a hash of what
// each says: equal hashes mean the object did not change. Positions in the
// file are not part of a hash (moving a statement is no change); secrets
// are, hashed. Policies are hashed per zone pair, on first use, into
// slices in policy order, so that comparing two 100,000-policy
// configurations walks two slices instead of filling maps.
type objects struct {
	cfg   *config.Config
	named map[string]uint64
	pairs map[pairKey]*pairHashes
}

type pairKey struct{ from, to string }

// pairHashes are the names and hashes of one zone pair's policies, in
// order.
type pairHashes struct {
	names  []string
	hashes []uint64
}

// hashSeed is fixed for the process: hashes are only compared within it.
var hashSeed = maphash.MakeSeed()

func fpHash(v any) uint64 { return maphash.String(hashSeed, fingerprint(v)) }

func objectsOf(cfg *config.Config) *objects {
	o := &objects{cfg: cfg, named: map[string]uint64{}, pairs: map[pairKey]*pairHashes{}}
	if cfg == nil {
		return o
	}
	named := func(name string, v any) { o.named[name] = fpHash(v) }
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
	named("security policies default-policy", cfg.Policies.Default)
	named("security flow", cfg.Flow)
	for _, v := range cfg.IPsec.VPNs {
		o.named["security ipsec vpn "+v.Name] = maphash.String(hashSeed, VPNFingerprint(v))
	}
	return o
}

// pair returns the hashes of pc (a zone pair of o.cfg), computing them once.
func (o *objects) pair(pc *config.PolicyContext) *pairHashes {
	k := pairKey{pc.From, pc.To}
	if h := o.pairs[k]; h != nil {
		return h
	}
	h := &pairHashes{names: make([]string, len(pc.Policies)), hashes: make([]uint64, len(pc.Policies))}
	for i, p := range pc.Policies {
		h.names[i] = p.Name
		h.hashes[i] = policyHash(pc, i)
	}
	o.pairs[k] = h
	return h
}

// policiesChanged forgets the hashes of the zone pairs refs names: cfg
// differs from o.cfg only in those policies.
func (o *objects) policiesChanged(cfg *config.Config, refs []config.PolicyRef) {
	o.cfg = cfg
	for _, r := range refs {
		delete(o.pairs, pairKey{r.From, r.To})
	}
}

func policyName(k pairKey, name string) string {
	return "security policies from-zone " + k.from + " to-zone " + k.to + " policy " + name
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

func diffObjects(a, b *objects) []string {
	var out []string
	for k, fb := range b.named {
		fa, ok := a.named[k]
		switch {
		case !ok:
			out = append(out, "+ "+k)
		case fa != fb:
			out = append(out, "~ "+k)
		}
	}
	for k := range a.named {
		if _, ok := b.named[k]; !ok {
			out = append(out, "- "+k)
		}
	}
	prevPairs := map[pairKey]*config.PolicyContext{}
	if a.cfg != nil {
		for _, pc := range a.cfg.Policies.Contexts {
			prevPairs[pairKey{pc.From, pc.To}] = pc
		}
	}
	if b.cfg != nil {
		for _, pc := range b.cfg.Policies.Contexts {
			k := pairKey{pc.From, pc.To}
			hb := b.pair(pc)
			var ha *pairHashes
			if pa := prevPairs[k]; pa != nil {
				ha = a.pair(pa)
				delete(prevPairs, k)
			} else {
				ha = &pairHashes{}
			}
			out = diffPair(out, k, ha, hb)
		}
	}
	for k, pa := range prevPairs {
		out = diffPair(out, k, a.pair(pa), &pairHashes{})
	}
	sortChanges(out)
	return out
}

// diffPair appends the changes between two lists of one zone pair. Equal
// leading and trailing runs are skipped by position; the window between
// them is compared by name (a name in one window cannot be outside the
// other's: names are unique in a pair and the runs hold the same ones).
func diffPair(out []string, k pairKey, a, b *pairHashes) []string {
	lo := 0
	for lo < len(a.names) && lo < len(b.names) && a.names[lo] == b.names[lo] && a.hashes[lo] == b.hashes[lo] {
		lo++
	}
	ea, eb := len(a.names), len(b.names)
	for ea > lo && eb > lo && a.names[ea-1] == b.names[eb-1] && a.hashes[ea-1] == b.hashes[eb-1] {
		ea, eb = ea-1, eb-1
	}
	if lo == ea && lo == eb {
		return out
	}
	inA := make(map[string]uint64, ea-lo)
	for i := lo; i < ea; i++ {
		inA[a.names[i]] = a.hashes[i]
	}
	for i := lo; i < eb; i++ {
		h, ok := inA[b.names[i]]
		switch {
		case !ok:
			out = append(out, "+ "+policyName(k, b.names[i]))
		case h != b.hashes[i]:
			out = append(out, "~ "+policyName(k, b.names[i]))
		}
		delete(inA, b.names[i])
	}
	for n := range inA {
		out = append(out, "- "+policyName(k, n))
	}
	return out
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
		k := policyName(pairKey{r.From, r.To}, r.Name)
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

func sortChanges(out []string) {
	sort.Slice(out, func(i, j int) bool {
		if out[i][2:] != out[j][2:] {
			return out[i][2:] < out[j][2:]
		}
		return out[i] < out[j]
	})
}
