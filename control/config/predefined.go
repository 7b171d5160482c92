package config

import "sort"

// IP protocol numbers used by the tables.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	protoOSPF   = 89
	protoPIM    = 103
	protoVRRP   = 112
	protoRSVP   = 46
	protoIGMP   = 2
	protoGRE    = 47
	protoESP    = 50
	protoAH     = 51
)

func tcp(lo, hi uint16) AppTerm {
	return AppTerm{Protocol: protoTCP, DstPorts: PortRange{lo, hi}, ICMPType: -1, ICMPCode: -1}
}
func udp(lo, hi uint16) AppTerm {
	return AppTerm{Protocol: protoUDP, DstPorts: PortRange{lo, hi}, ICMPType: -1, ICMPCode: -1}
}
func icmp(typ, code int) AppTerm {
	return AppTerm{Protocol: protoICMP, ICMPType: typ, ICMPCode: code}
}
func icmp6(typ, code int) AppTerm {
	return AppTerm{Protocol: protoICMPv6, ICMPType: typ, ICMPCode: code}
}
func proto(p uint8) AppTerm { return AppTerm{Protocol: p, ICMPType: -1, ICMPCode: -1} }

// predefinedApplications are the junos-* applications bpfvpn knows
// (reference §5 plus common ones).
var predefinedApplications = map[string][]AppTerm{
	"junos-http":               {tcp(80, 80)},
	"junos-https":              {tcp(443, 443)},
	"junos-ssh":                {tcp(22, 22)},
	"junos-telnet":             {tcp(23, 23)},
	"junos-ftp":                {tcp(21, 21)},
	"junos-smtp":               {tcp(25, 25)},
	"junos-pop3":               {tcp(110, 110)},
	"junos-imap":               {tcp(143, 143)},
	"junos-imaps":              {tcp(993, 993)},
	"junos-ldap":               {tcp(389, 389)},
	"junos-bgp":                {tcp(179, 179)},
	"junos-ms-rpc-tcp":         {tcp(135, 135)},
	"junos-smb":                {tcp(139, 139), tcp(445, 445)},
	"junos-rdp":                {tcp(3389, 3389)},
	"junos-dns-udp":            {udp(53, 53)},
	"junos-dns-tcp":            {tcp(53, 53)},
	"junos-ntp":                {udp(123, 123)},
	"junos-snmp-agentx":        {tcp(705, 705)},
	"junos-syslog":             {udp(514, 514)},
	"junos-tftp":               {udp(69, 69)},
	"junos-radius":             {udp(1812, 1812)},
	"junos-dhcp-client":        {udp(68, 68)},
	"junos-dhcp-server":        {udp(67, 67)},
	"junos-ike":                {udp(500, 500)},
	"junos-ike-nat":            {udp(4500, 4500)},
	"junos-icmp-all":           {icmp(-1, -1)},
	"junos-icmp-ping":          {icmp(8, 0)},
	"junos-icmp6-all":          {icmp6(-1, -1)},
	"junos-ping":               {icmp(8, 0), icmp6(128, 0)},
	"junos-pingv6":             {icmp6(128, 0)},
	"junos-traceroute":         {udp(33434, 33534)},
	"junos-gre":                {proto(protoGRE)},
	"junos-ospf":               {proto(protoOSPF)},
	"junos-vrrp":               {proto(protoVRRP)},
	"junos-http-ext":           {tcp(7001, 7001)},
	"junos-sip":                {udp(5060, 5060), tcp(5060, 5060)},
	"junos-ssh-ext":            {tcp(2222, 2222)},
	"junos-mysql":              {tcp(3306, 3306)},
	"junos-sqlnet-v2":          {tcp(1521, 1521)},
	"junos-ms-sql":             {tcp(1433, 1433)},
	"junos-nfs":                {udp(2049, 2049), tcp(2049, 2049)},
	"junos-netbios-session":    {tcp(139, 139)},
	"junos-nbname":             {udp(137, 137)},
	"junos-nbds":               {udp(138, 138)},
	"junos-tcp-any":            {tcp(0, 65535)},
	"junos-udp-any":            {udp(0, 65535)},
	"junos-nntp":               {tcp(119, 119)},
	"junos-pptp":               {tcp(1723, 1723)},
	"junos-l2tp":               {udp(1701, 1701)},
	"junos-smtps":              {tcp(465, 465)},
	"junos-printer":            {tcp(515, 515)},
	"junos-radacct":            {udp(1813, 1813)},
	"junos-rip":                {udp(520, 520)},
	"junos-rsh":                {tcp(514, 514)},
	"junos-x-windows":          {tcp(6000, 6063)},
	"junos-finger":             {tcp(79, 79)},
	"junos-ident":              {tcp(113, 113)},
	"junos-ldp-tcp":            {tcp(646, 646)},
	"junos-ldp-udp":            {udp(646, 646)},
	"junos-bootpc":             {udp(68, 68)},
	"junos-bootps":             {udp(67, 67)},
	"junos-cvspserver":         {tcp(2401, 2401)},
	"junos-whois":              {tcp(43, 43)},
	"junos-gopher":             {tcp(70, 70)},
	"junos-sun-rpc-tcp":        {tcp(111, 111)},
	"junos-sun-rpc-udp":        {udp(111, 111)},
	"junos-talk":               {udp(517, 517)},
	"junos-ntalk":              {udp(518, 518)},
	"junos-uucp":               {tcp(540, 540)},
	"junos-snmp-get":           {udp(161, 161)},
	"junos-snmp-trap":          {udp(162, 162)},
	"junos-icmp6-echo-request": {icmp6(128, 0)},
	"junos-icmp6-echo-reply":   {icmp6(129, 0)},
}

// PredefinedApplication returns the terms of a predefined junos-* application.
func PredefinedApplication(name string) ([]AppTerm, bool) {
	t, ok := predefinedApplications[name]
	return t, ok
}

// PredefinedApplicationNames lists the predefined applications, sorted.
func PredefinedApplicationNames() []string {
	names := make([]string, 0, len(predefinedApplications))
	for n := range predefinedApplications {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// hostServices are the host-inbound-traffic system-services and their matches.
var hostServices = map[string][]HostInboundRule{
	"bootp":          {{Protocol: protoUDP, Ports: PortRange{67, 68}}},
	"dhcp":           {{Protocol: protoUDP, Ports: PortRange{67, 68}}},
	"dhcpv6":         {{Protocol: protoUDP, Ports: PortRange{546, 547}}},
	"dns":            {{Protocol: protoUDP, Ports: PortRange{53, 53}}, {Protocol: protoTCP, Ports: PortRange{53, 53}}},
	"finger":         {{Protocol: protoTCP, Ports: PortRange{79, 79}}},
	"ftp":            {{Protocol: protoTCP, Ports: PortRange{21, 21}}},
	"http":           {{Protocol: protoTCP, Ports: PortRange{80, 80}}},
	"https":          {{Protocol: protoTCP, Ports: PortRange{443, 443}}},
	"ident-reset":    {{Protocol: protoTCP, Ports: PortRange{113, 113}}},
	"ike":            {{Protocol: protoUDP, Ports: PortRange{500, 500}}, {Protocol: protoUDP, Ports: PortRange{4500, 4500}}},
	"netconf":        {{Protocol: protoTCP, Ports: PortRange{830, 830}}},
	"ntp":            {{Protocol: protoUDP, Ports: PortRange{123, 123}}},
	"ping":           {{Protocol: protoICMP, ICMPType: 8}, {Protocol: protoICMPv6, ICMPType: 128}},
	"rlogin":         {{Protocol: protoTCP, Ports: PortRange{513, 513}}},
	"rsh":            {{Protocol: protoTCP, Ports: PortRange{514, 514}}},
	"snmp":           {{Protocol: protoUDP, Ports: PortRange{161, 161}}},
	"snmp-trap":      {{Protocol: protoUDP, Ports: PortRange{162, 162}}},
	"ssh":            {{Protocol: protoTCP, Ports: PortRange{22, 22}}},
	"telnet":         {{Protocol: protoTCP, Ports: PortRange{23, 23}}},
	"tftp":           {{Protocol: protoUDP, Ports: PortRange{69, 69}}},
	"traceroute":     {{Protocol: protoUDP, Ports: PortRange{33434, 33534}}, {Protocol: protoICMP, ICMPType: 8}},
	"xnm-clear-text": {{Protocol: protoTCP, Ports: PortRange{3221, 3221}}},
	"xnm-ssl":        {{Protocol: protoTCP, Ports: PortRange{3220, 3220}}},
}

// hostProtocols are the host-inbound-traffic protocols and their matches.
var hostProtocols = map[string][]HostInboundRule{
	"bfd":              {{Protocol: protoUDP, Ports: PortRange{3784, 3785}}, {Protocol: protoUDP, Ports: PortRange{4784, 4784}}},
	"bgp":              {{Protocol: protoTCP, Ports: PortRange{179, 179}}},
	"igmp":             {{Protocol: protoIGMP}},
	"ldp":              {{Protocol: protoTCP, Ports: PortRange{646, 646}}, {Protocol: protoUDP, Ports: PortRange{646, 646}}},
	"ospf":             {{Protocol: protoOSPF}},
	"ospf3":            {{Protocol: protoOSPF}},
	"pim":              {{Protocol: protoPIM}},
	"rip":              {{Protocol: protoUDP, Ports: PortRange{520, 520}}},
	"ripng":            {{Protocol: protoUDP, Ports: PortRange{521, 521}}},
	"rsvp":             {{Protocol: protoRSVP}},
	"vrrp":             {{Protocol: protoVRRP}},
	"router-discovery": {{Protocol: protoICMP, ICMPType: 10}},
}
