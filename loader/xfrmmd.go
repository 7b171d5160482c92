package loader

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
)

// ErrXfrmMDUnsupported: the running kernel has no bpf_skb_set_xfrm_info
// kfunc (collect_md XFRM interfaces need Linux 6.2 or later, with the
// xfrm_interface module loaded); multipoint st0 units then use one XFRM
// interface per tunnel.
var ErrXfrmMDUnsupported = errors.New("kernel has no bpf_skb_set_xfrm_info (collect_md XFRM interfaces need Linux 6.2+)")

// LoadXfrmMultipoint loads tc_xfrm_md_egress, the program of a shared collect_md
// XFRM interface, with its next hop → if_id map (pinned by name in pinDir
// when set). It returns an error wrapping ErrXfrmMDUnsupported when the
// kernel lacks the kfunc.
func LoadXfrmMultipoint(pinDir string) (*XfrmMDObjects, error) {
	spec, err := LoadXfrmMD()
	if err != nil {
		return nil, fmt.Errorf("parse embedded xfrm_md object: %w", err)
	}
	var copts ebpf.CollectionOptions
	if pinDir != "" {
		if err := os.MkdirAll(pinDir, 0o700); err != nil {
			return nil, fmt.Errorf("create pin directory %s: %w", pinDir, err)
		}
		copts.Maps.PinPath = pinDir
	} else {
		for _, m := range spec.Maps {
			m.Pinning = ebpf.PinNone
		}
	}
	var objs XfrmMDObjects
	if err := spec.LoadAndAssign(&objs, &copts); err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			return nil, fmt.Errorf("load tc_xfrm_md_egress: %w (%v)", ErrXfrmMDUnsupported, err)
		}
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load tc_xfrm_md_egress (verifier): %+v", ve)
		}
		return nil, fmt.Errorf("load tc_xfrm_md_egress: %w", err)
	}
	return &objs, nil
}
