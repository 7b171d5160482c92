package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Hook names a program attachment point of an interface.
type Hook string

const (
	HookXDP       Hook = "xdp"
	HookTCIngress Hook = "tc-ingress"
	HookTCEgress  Hook = "tc-egress"
)

// Pin layout inside an instance directory:
//
//	<map name>             the maps (pinned by name)
//	prog_<program>         the programs
//	links/<hook>@<ifname>  XDP and tcx links
//	links/clsact-<hook>@<ifname>  the program of a clsact filter (6.1 path)
const linksDir = "links"

// tcFilterName / tcFilterPrio identify bpfvpn's clsact filters.
const (
	tcFilterName = "bpfvpn"
	tcFilterPrio = 0xbf
)

// Attachment describes one attached hook.
type Attachment struct {
	Hook    Hook
	Ifname  string
	Mode    string // "xdp-native", "xdp-generic", "tcx", "clsact"
	ProgID  ebpf.ProgramID
	PinPath string
}

// pinIfname encodes an interface name for bpffs, which refuses '.' in
// names (st0.0 becomes st0:0; ':' cannot appear in Linux interface names
// that iproute2 creates).
func pinIfname(ifname string) string { return strings.ReplaceAll(ifname, ".", ":") }

func linkPin(dir string, hook Hook, ifname string) string {
	return filepath.Join(dir, linksDir, fmt.Sprintf("%s@%s", hook, pinIfname(ifname)))
}

func clsactPin(dir string, hook Hook, ifname string) string {
	return filepath.Join(dir, linksDir, fmt.Sprintf("clsact-%s@%s", hook, pinIfname(ifname)))
}

// AttachXDP attaches prog to ifname (native mode when the driver has it,
// generic otherwise) and pins the link; an existing pinned link is updated
// to prog in place.
func AttachXDP(dir string, prog *ebpf.Program, ifname string) (Attachment, error) {
	ifc, err := netlink.LinkByName(ifname)
	if err != nil {
		return Attachment{}, fmt.Errorf("interface %s: %w", ifname, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, linksDir), 0o700); err != nil {
		return Attachment{}, fmt.Errorf("create %s: %w", dir, err)
	}
	pin := linkPin(dir, HookXDP, ifname)
	a := Attachment{Hook: HookXDP, Ifname: ifname, PinPath: pin, Mode: "xdp"}
	if l, err := link.LoadPinnedLink(pin, nil); err == nil {
		defer l.Close()
		if err := l.Update(prog); err != nil {
			return a, fmt.Errorf("update XDP program on %s: %w", ifname, err)
		}
		return a, nil
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Attrs().Index, Flags: link.XDPDriverMode})
	if err == nil {
		a.Mode = "xdp-native"
	} else {
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Attrs().Index, Flags: link.XDPGenericMode})
		if err != nil {
			return a, fmt.Errorf("attach XDP to %s: %w", ifname, err)
		}
		a.Mode = "xdp-generic"
	}
	defer l.Close()
	if err := l.Pin(pin); err != nil {
		return a, fmt.Errorf("pin XDP link of %s: %w", ifname, err)
	}
	return a, nil
}

// AttachTC attaches prog to the tc ingress or egress hook of ifname: a tcx
// link where the kernel has them (≥ 6.6), a clsact direct-action filter
// otherwise (6.1). Existing attachments are updated in place.
func AttachTC(dir string, prog *ebpf.Program, ifname string, hook Hook) (Attachment, error) {
	ifc, err := netlink.LinkByName(ifname)
	if err != nil {
		return Attachment{}, fmt.Errorf("interface %s: %w", ifname, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, linksDir), 0o700); err != nil {
		return Attachment{}, fmt.Errorf("create %s: %w", dir, err)
	}
	at := ebpf.AttachTCXIngress
	parent := uint32(netlink.HANDLE_MIN_INGRESS)
	if hook == HookTCEgress {
		at = ebpf.AttachTCXEgress
		parent = netlink.HANDLE_MIN_EGRESS
	}
	pin := linkPin(dir, hook, ifname)
	a := Attachment{Hook: hook, Ifname: ifname, PinPath: pin, Mode: "tcx"}
	if l, err := link.LoadPinnedLink(pin, nil); err == nil {
		defer l.Close()
		if err := l.Update(prog); err != nil {
			return a, fmt.Errorf("update tc program on %s: %w", ifname, err)
		}
		return a, nil
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifc.Attrs().Index, Program: prog, Attach: at})
	if err == nil {
		defer l.Close()
		if err := l.Pin(pin); err != nil {
			return a, fmt.Errorf("pin tcx link of %s: %w", ifname, err)
		}
		return a, nil
	}
	if !errors.Is(err, ebpf.ErrNotSupported) {
		return a, fmt.Errorf("attach tcx %s to %s: %w", hook, ifname, err)
	}
	// clsact fallback
	a.Mode, a.PinPath = "clsact", clsactPin(dir, hook, ifname)
	q := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifc.Attrs().Index,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}, QdiscType: "clsact"}
	if err := netlink.QdiscAdd(q); err != nil && !errors.Is(err, unix.EEXIST) {
		return a, fmt.Errorf("add clsact qdisc to %s: %w", ifname, err)
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: ifc.Attrs().Index, Parent: parent,
			Handle: 1, Protocol: unix.ETH_P_ALL, Priority: tcFilterPrio},
		Fd: prog.FD(), Name: tcFilterName, DirectAction: true,
	}
	if err := netlink.FilterReplace(f); err != nil {
		return a, fmt.Errorf("add clsact %s filter to %s: %w", hook, ifname, err)
	}
	os.Remove(a.PinPath)
	if err := prog.Pin(a.PinPath); err != nil {
		return a, fmt.Errorf("record clsact filter of %s: %w", ifname, err)
	}
	return a, nil
}

// Detach removes every hook bpfvpn attached to ifname.
func Detach(dir, ifname string) (int, error) {
	n := 0
	var errs []error
	for _, h := range []Hook{HookXDP, HookTCIngress, HookTCEgress} {
		pin := linkPin(dir, h, ifname)
		if l, err := link.LoadPinnedLink(pin, nil); err == nil {
			if err := l.Unpin(); err != nil {
				errs = append(errs, fmt.Errorf("unpin %s: %w", pin, err))
			}
			l.Close() // the last reference: detaches
			n++
		}
		cp := clsactPin(dir, h, ifname)
		if _, err := os.Stat(cp); err == nil {
			if ifc, err := netlink.LinkByName(ifname); err == nil {
				parent := uint32(netlink.HANDLE_MIN_INGRESS)
				if h == HookTCEgress {
					parent = netlink.HANDLE_MIN_EGRESS
				}
				f := &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: ifc.Attrs().Index, Parent: parent,
					Handle: 1, Protocol: unix.ETH_P_ALL, Priority: tcFilterPrio}}
				if err := netlink.FilterDel(f); err != nil && !errors.Is(err, unix.ENOENT) {
					errs = append(errs, fmt.Errorf("delete clsact filter of %s: %w", ifname, err))
				}
			}
			os.Remove(cp)
			n++
		}
	}
	return n, errors.Join(errs...)
}

// Attachments lists the hooks pinned in dir.
func Attachments(dir string) ([]Attachment, error) {
	ents, err := os.ReadDir(filepath.Join(dir, linksDir))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []Attachment
	for _, e := range ents {
		name := e.Name()
		hook, ifname, ok := strings.Cut(name, "@")
		if !ok {
			continue
		}
		ifname = strings.ReplaceAll(ifname, ":", ".")
		a := Attachment{Ifname: ifname, PinPath: filepath.Join(dir, linksDir, name)}
		if strings.HasPrefix(hook, "clsact-") {
			a.Hook, a.Mode = Hook(strings.TrimPrefix(hook, "clsact-")), "clsact"
			if p, err := ebpf.LoadPinnedProgram(a.PinPath, nil); err == nil {
				if info, err := p.Info(); err == nil {
					a.ProgID, _ = info.ID()
				}
				p.Close()
			}
		} else {
			a.Hook = Hook(hook)
			a.Mode = "tcx"
			if a.Hook == HookXDP {
				a.Mode = "xdp"
			}
			if l, err := link.LoadPinnedLink(a.PinPath, nil); err == nil {
				if info, err := l.Info(); err == nil {
					a.ProgID = info.Program
				}
				l.Close()
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// PinPrograms pins the programs as prog_<name> (replacing older pins).
func PinPrograms(dir string, objs *Objects) error {
	for name, p := range map[string]*ebpf.Program{
		BpfvpnProgXdpZone: objs.XdpZone, BpfvpnProgTcSt0Ingress: objs.TcSt0Ingress, BpfvpnProgTcSt0Egress: objs.TcSt0Egress,
		BpfvpnProgTcZoneEgress: objs.TcZoneEgress,
	} {
		path := filepath.Join(dir, "prog_"+name)
		os.Remove(path)
		if err := p.Pin(path); err != nil {
			return fmt.Errorf("pin program %s: %w", name, err)
		}
	}
	return nil
}
