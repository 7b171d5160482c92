package ops

import (
	"fmt"
	"strconv"
)

// protocolNames are the IP protocols the flow views name (the vendor's
// list for `clear security flow session protocol`, plus icmp6); any other
// protocol shows as its number.
var protocolNames = map[uint8]string{1: "icmp", 2: "igmp", 4: "ipip", 6: "tcp", 8: "egp", 17: "udp", 46: "rsvp",
	47: "gre", 50: "esp", 51: "ah", 58: "icmp6", 89: "ospf", 103: "pim", 132: "sctp"}

// ProtocolName is how the flow views show IP protocol p: "tcp", "udp",
// "icmp", … or the number.
func ProtocolName(p uint8) string {
	if n, ok := protocolNames[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

// ParseProtocol reads an IP protocol as the flow views show it (the
// inverse of ProtocolName): a name or a number from 0 to 255.
func ParseProtocol(w string) (uint8, error) {
	for p, n := range protocolNames {
		if n == w {
			return p, nil
		}
	}
	n, err := strconv.ParseUint(w, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("'%s' is not a protocol (a name such as tcp, udp, icmp, or 0-255)", w)
	}
	return uint8(n), nil
}
