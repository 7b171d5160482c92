package dataplane

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/bpfvpn/bpfvpn/loader"
	"github.com/bpfvpn/bpfvpn/maps"
)

// NextHopKey is the key of next hop nh in the xfrm_md program's next-hop map.
func NextHopKey(nh netip.Addr) loader.XfrmMDNexthopKey {
	nh = nh.Unmap()
	f := uint32(maps.AFInet6)
	if nh.Is4() {
		f = maps.AFInet
	}
	return loader.XfrmMDNexthopKey{Family: f, Addr: maps.AddrWords(nh)}
}

// SetNextHopIfID makes packets whose next hop on the shared collect_md XFRM
// interface is nh use the SAs and policies of ifID (the tunnel of the peer
// that owns nh).
func SetNextHopIfID(objs *loader.XfrmMDObjects, nh netip.Addr, ifID uint32) error {
	k := NextHopKey(nh)
	if err := objs.XfrmNexthops.Put(&k, ifID); err != nil {
		return fmt.Errorf("map next hop %s to if_id %d: %w", nh, ifID, err)
	}
	return nil
}

// RemoveNextHop forgets nh: its packets are dropped at the interface.
func RemoveNextHop(objs *loader.XfrmMDObjects, nh netip.Addr) error {
	k := NextHopKey(nh)
	if err := objs.XfrmNexthops.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("remove next hop %s: %w", nh, err)
	}
	return nil
}
