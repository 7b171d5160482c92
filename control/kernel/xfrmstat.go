package kernel

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// XfrmStat holds the counters of /proc/net/xfrm_stat (per network
// namespace; see Documentation/networking/xfrm_proc.rst). Names are the
// kernel's without the "Xfrm" prefix. Counters the kernel adds later land in
// Other.
type XfrmStat struct {
	InError             uint64
	InBufferError       uint64
	InHdrError          uint64
	InNoStates          uint64 // no state for the SPI: "Invalid SPI"
	InStateProtoError   uint64 // e.g. ESP authentication failure
	InStateModeError    uint64
	InStateSeqError     uint64 // replay check failed
	InStateExpired      uint64
	InStateMismatch     uint64
	InStateInvalid      uint64
	InTmplMismatch      uint64 // "TS check fail"
	InNoPols            uint64
	InPolBlock          uint64
	InPolError          uint64
	InIptfsError        uint64
	OutError            uint64
	OutBundleGenError   uint64
	OutBundleCheckError uint64
	OutNoStates         uint64
	OutStateProtoError  uint64
	OutStateModeError   uint64
	OutStateSeqError    uint64
	OutStateExpired     uint64
	OutPolBlock         uint64
	OutPolDead          uint64
	OutPolError         uint64
	FwdHdrError         uint64
	OutStateInvalid     uint64
	AcquireError        uint64
	OutStateDirError    uint64
	InStateDirError     uint64
	Other               map[string]uint64 `json:",omitempty"`
}

// fields maps each kernel counter name to its field.
func (s *XfrmStat) fields() map[string]*uint64 {
	return map[string]*uint64{
		"XfrmInError": &s.InError, "XfrmInBufferError": &s.InBufferError, "XfrmInHdrError": &s.InHdrError,
		"XfrmInNoStates": &s.InNoStates, "XfrmInStateProtoError": &s.InStateProtoError,
		"XfrmInStateModeError": &s.InStateModeError, "XfrmInStateSeqError": &s.InStateSeqError,
		"XfrmInStateExpired": &s.InStateExpired, "XfrmInStateMismatch": &s.InStateMismatch,
		"XfrmInStateInvalid": &s.InStateInvalid, "XfrmInTmplMismatch": &s.InTmplMismatch,
		"XfrmInNoPols": &s.InNoPols, "XfrmInPolBlock": &s.InPolBlock, "XfrmInPolError": &s.InPolError,
		"XfrmInIptfsError": &s.InIptfsError,
		"XfrmOutError":     &s.OutError, "XfrmOutBundleGenError": &s.OutBundleGenError,
		"XfrmOutBundleCheckError": &s.OutBundleCheckError, "XfrmOutNoStates": &s.OutNoStates,
		"XfrmOutStateProtoError": &s.OutStateProtoError, "XfrmOutStateModeError": &s.OutStateModeError,
		"XfrmOutStateSeqError": &s.OutStateSeqError, "XfrmOutStateExpired": &s.OutStateExpired,
		"XfrmOutPolBlock": &s.OutPolBlock, "XfrmOutPolDead": &s.OutPolDead, "XfrmOutPolError": &s.OutPolError,
		"XfrmFwdHdrError": &s.FwdHdrError, "XfrmOutStateInvalid": &s.OutStateInvalid,
		"XfrmAcquireError": &s.AcquireError, "XfrmOutStateDirError": &s.OutStateDirError,
		"XfrmInStateDirError": &s.InStateDirError,
	}
}

// ParseXfrmStat parses the text of /proc/net/xfrm_stat: lines of a name and
// a decimal value separated by white space. Blank lines are skipped; any
// other malformed line is an error. It never panics.
func ParseXfrmStat(r io.Reader) (XfrmStat, error) {
	var s XfrmStat
	f := s.fields()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		parts := strings.Fields(line)
		if len(parts) != 2 {
			return XfrmStat{}, fmt.Errorf("xfrm_stat line %d: want a name and a value", n)
		}
		v, err := strconv.ParseUint(parts[1], 10, 64)
		if err != nil {
			return XfrmStat{}, fmt.Errorf("xfrm_stat line %d: value of %.40q: %w", n, parts[0], err)
		}
		if p, ok := f[parts[0]]; ok {
			*p = v
			continue
		}
		if s.Other == nil {
			s.Other = map[string]uint64{}
		}
		s.Other[parts[0]] = v
	}
	if err := sc.Err(); err != nil {
		return XfrmStat{}, fmt.Errorf("xfrm_stat: %w", err)
	}
	return s, nil
}

// Sub returns s minus base, counter by counter; a counter below its base
// (the namespace was recreated) counts from zero.
func (s XfrmStat) Sub(base XfrmStat) XfrmStat {
	out := s
	out.Other = nil
	of, bf := out.fields(), base.fields()
	for k, p := range of {
		*p = subSat(*p, *bf[k])
	}
	for k, v := range s.Other {
		if out.Other == nil {
			out.Other = map[string]uint64{}
		}
		out.Other[k] = subSat(v, base.Other[k])
	}
	return out
}

func subSat(v, base uint64) uint64 {
	if v < base {
		return v
	}
	return v - base
}

// ReadXfrmStat reads the XFRM counters of the Reconciler's namespace,
// relative to the last ClearStatistics(-1).
func (r *Reconciler) ReadXfrmStat() (XfrmStat, error) {
	s, err := r.rawXfrmStat()
	if err != nil {
		return XfrmStat{}, err
	}
	r.mu.Lock()
	base := r.statBase
	r.mu.Unlock()
	return s.Sub(base), nil
}

func (r *Reconciler) rawXfrmStat() (XfrmStat, error) {
	var b []byte
	err := inNetns(r.ns, func() error {
		var err error
		// thread-self: /proc/net follows the thread group leader's
		// namespace, not this thread's.
		b, err = readFile("/proc/thread-self/net/xfrm_stat")
		return err
	})
	if err != nil {
		return XfrmStat{}, fmt.Errorf("read xfrm_stat: %w", err)
	}
	return ParseXfrmStat(bytes.NewReader(b))
}
