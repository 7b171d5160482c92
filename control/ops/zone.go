package ops

import "io"

// Zone is one security zone.
type Zone struct {
	Name string `json:"name"`
	ID   uint32 `json:"zone-id"`
	// TCPRST is "Send reset for non-SYN session TCP packets".
	TCPRST      bool     `json:"tcp-rst"`
	Interfaces  []string `json:"interfaces"`
	HostInbound []string `json:"host-inbound-services,omitempty"`
}

// Zones is the answer to `show security zones`.
type Zones struct {
	Zones []Zone `json:"zones"`
}

// WriteText prints one block per zone, separated by blank lines.
func (v Zones) WriteText(w io.Writer) error {
	ew := errWriter{w: w}
	for i, z := range v.Zones {
		if i > 0 {
			ew.line("")
		}
		rst := "Off"
		if z.TCPRST {
			rst = "On"
		}
		ew.printf("Security zone: %s\n", z.Name)
		ew.printf("  Zone ID: %d\n", z.ID)
		ew.printf("  Send reset for non-SYN session TCP packets: %s\n", rst)
		ew.line("  Policy configurable: Yes")
		ew.printf("  Interfaces bound: %d\n", len(z.Interfaces))
		ew.line("  Interfaces:")
		for _, ifname := range z.Interfaces {
			ew.printf("    %s\n", ifname)
		}
	}
	return ew.err
}
