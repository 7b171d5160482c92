package ops

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// XFRMStat holds the counters of /proc/net/xfrm_stat (per network
// namespace), by name: XfrmInNoStates, XfrmInStateSeqError, …
type XFRMStat map[string]uint64

// ParseXFRMStat reads /proc/net/xfrm_stat: one "Name <blanks> value" pair
// per line. Blank lines are skipped; anything else malformed is an error.
func ParseXFRMStat(r io.Reader) (XFRMStat, error) {
	st := XFRMStat{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("xfrm_stat line %d: want name and value, got %q", n, sc.Text())
		}
		v, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("xfrm_stat line %d: %s: %w", n, fields[0], err)
		}
		st[fields[0]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read xfrm_stat: %w", err)
	}
	return st, nil
}

func (s XFRMStat) sum(names ...string) uint64 {
	var t uint64
	for _, n := range names {
		t += s[n]
	}
	return t
}

// Errors maps the kernel's drop counters onto the Errors block of `show
// security ipsec statistics`:
//
//	Replay errors               XfrmInStateSeqError (sequence number outside the window)
//	ESP authentication failures XfrmInStateProtoError (ICV check failed: wrong key)
//	Bad headers                 XfrmInHdrError
//	Invalid SPI                 XfrmInNoStates (no SA for SPI/address/protocol)
//	TS check fail               XfrmInTmplMismatch, XfrmInNoPols (decrypted packet fits no policy)
//	Discarded                   every other inbound, outbound and forward error
//
// The kernel does not count AH authentication, ESP decryption, bad-trailer
// or tunnel-MTU failures apart; those stay 0 here (per-SA integrity failures
// come from the SA's own XFRM statistics).
func (s XFRMStat) Errors() IPsecErrors {
	return IPsecErrors{
		ReplayErrors:    s["XfrmInStateSeqError"],
		ESPAuthFailures: s["XfrmInStateProtoError"],
		BadHeaders:      s["XfrmInHdrError"],
		InvalidSPI:      s["XfrmInNoStates"],
		TSCheckFail:     s.sum("XfrmInTmplMismatch", "XfrmInNoPols"),
		Discarded: s.sum("XfrmInError", "XfrmInBufferError", "XfrmInStateModeError", "XfrmInStateExpired",
			"XfrmInStateMismatch", "XfrmInStateInvalid", "XfrmInPolBlock", "XfrmInPolError", "XfrmInStateDirError",
			"XfrmInIptfsError", "XfrmAcquireError", "XfrmFwdHdrError",
			"XfrmOutError", "XfrmOutBundleGenError", "XfrmOutBundleCheckError", "XfrmOutNoStates",
			"XfrmOutStateProtoError", "XfrmOutStateModeError", "XfrmOutStateSeqError", "XfrmOutStateExpired",
			"XfrmOutPolBlock", "XfrmOutPolDead", "XfrmOutPolError", "XfrmOutStateInvalid", "XfrmOutStateDirError",
			"XfrmOutNoQueueSpace"),
	}
}
