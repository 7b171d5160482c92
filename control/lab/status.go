package lab

import (
	"fmt"
	"io"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NodeStatus is what Status found for one node.
type NodeStatus struct {
	Node      string       `json:"node"`
	Namespace string       `json:"namespace"`
	Exists    bool         `json:"exists"`
	Links     []LinkStatus `json:"links,omitempty"`
}

// LinkStatus is one non-loopback interface of a node.
type LinkStatus struct {
	Name      string         `json:"name"`
	Up        bool           `json:"up"`
	Addresses []netip.Prefix `json:"addresses,omitempty"`
}

// Status reports, for every node, whether its namespace exists and which
// interfaces and addresses it has.
func (l *Lab) Status() ([]NodeStatus, error) {
	out := make([]NodeStatus, 0, len(Nodes))
	for _, node := range Nodes {
		st := NodeStatus{Node: node, Namespace: l.Namespace(node)}
		if !NamedExists(st.Namespace) {
			out = append(out, st)
			continue
		}
		st.Exists = true
		h, err := l.Handle(node)
		if err != nil {
			return nil, err
		}
		links, err := h.LinkList()
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("list links of %s: %w", node, err)
		}
		for _, link := range links {
			a := link.Attrs()
			if a.Name == "lo" {
				continue
			}
			ls := LinkStatus{Name: a.Name, Up: a.Flags&unix.IFF_UP != 0 && a.OperState != netlink.OperDown}
			addrs, err := h.AddrList(link, netlink.FAMILY_ALL)
			if err != nil {
				h.Close()
				return nil, fmt.Errorf("list addresses of %s:%s: %w", node, a.Name, err)
			}
			for _, ad := range addrs {
				ip, ok := netip.AddrFromSlice(ad.IP)
				if !ok || ip.Unmap().IsLinkLocalUnicast() {
					continue
				}
				ones, _ := ad.Mask.Size()
				ls.Addresses = append(ls.Addresses, netip.PrefixFrom(ip.Unmap(), ones))
			}
			st.Links = append(st.Links, ls)
		}
		h.Close()
		sort.Slice(st.Links, func(i, j int) bool { return st.Links[i].Name < st.Links[j].Name })
		out = append(out, st)
	}
	return out, nil
}

// Complete reports whether every node exists with all its wires up.
func Complete(status []NodeStatus) bool {
	for _, st := range status {
		if !st.Exists {
			return false
		}
		for _, e := range Endpoints(st.Node) {
			found := false
			for _, ls := range st.Links {
				found = found || (ls.Name == e.Link && ls.Up)
			}
			if !found {
				return false
			}
		}
	}
	return true
}

// WriteStatus prints status as a table.
func WriteStatus(w io.Writer, status []NodeStatus) {
	fmt.Fprintf(w, "%-10s %-22s %-7s %s\n", "Node", "Namespace", "State", "Interfaces")
	for _, st := range status {
		state := "absent"
		if st.Exists {
			state = "present"
		}
		ifs := ""
		for i, ls := range st.Links {
			if i > 0 {
				ifs += ", "
			}
			updown := "down"
			if ls.Up {
				updown = "up"
			}
			ifs += fmt.Sprintf("%s %s", ls.Name, updown)
			for _, a := range ls.Addresses {
				ifs += " " + a.String()
			}
		}
		fmt.Fprintf(w, "%-10s %-22s %-7s %s\n", st.Node, st.Namespace, state, ifs)
	}
}
