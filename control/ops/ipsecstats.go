package ops

import (
	"fmt"
	"io"
)

// ESPStatistics are the ESP byte and packet counters.
type ESPStatistics struct {
	EncryptedBytes   uint64 `json:"encrypted-bytes"`
	DecryptedBytes   uint64 `json:"decrypted-bytes"`
	EncryptedPackets uint64 `json:"encrypted-packets"`
	DecryptedPackets uint64 `json:"decrypted-packets"`
}

// AHStatistics are the AH byte and packet counters.
type AHStatistics struct {
	InputBytes    uint64 `json:"input-bytes"`
	OutputBytes   uint64 `json:"output-bytes"`
	InputPackets  uint64 `json:"input-packets"`
	OutputPackets uint64 `json:"output-packets"`
}

// IPsecErrors are the error counters of the statistics view (from XFRM
// state statistics and /proc/net/xfrm_stat).
type IPsecErrors struct {
	AHAuthFailures     uint64 `json:"ah-authentication-failures"`
	ReplayErrors       uint64 `json:"replay-errors"`
	ESPAuthFailures    uint64 `json:"esp-authentication-failures"`
	ESPDecryptFailures uint64 `json:"esp-decryption-failures"`
	BadHeaders         uint64 `json:"bad-headers"`
	BadTrailers        uint64 `json:"bad-trailers"`
	InvalidSPI         uint64 `json:"invalid-spi"`
	TSCheckFail        uint64 `json:"ts-check-fail"`
	ExceedsTunnelMTU   uint64 `json:"exceeds-tunnel-mtu"`
	Discarded          uint64 `json:"discarded"`
}

// IPsecStatistics is the answer to `show security ipsec statistics [index N]`.
type IPsecStatistics struct {
	ESP    ESPStatistics `json:"esp-statistics"`
	AH     AHStatistics  `json:"ah-statistics"`
	Errors IPsecErrors   `json:"errors"`
}

// statLine right-aligns a counter so that every line of the block ends in
// column 35, as on the device.
func statLine(label string, v uint64) string {
	return fmt.Sprintf("  %s%*d\n", label, 33-len(label), v)
}

// WriteText prints the ESP / AH / Errors block.
func (s IPsecStatistics) WriteText(w io.Writer) error {
	ew := errWriter{w: w}
	ew.line("ESP Statistics:")
	ew.printf("%s", statLine("Encrypted bytes:", s.ESP.EncryptedBytes))
	ew.printf("%s", statLine("Decrypted bytes:", s.ESP.DecryptedBytes))
	ew.printf("%s", statLine("Encrypted packets:", s.ESP.EncryptedPackets))
	ew.printf("%s", statLine("Decrypted packets:", s.ESP.DecryptedPackets))
	ew.line("AH Statistics:")
	ew.printf("%s", statLine("Input bytes:", s.AH.InputBytes))
	ew.printf("%s", statLine("Output bytes:", s.AH.OutputBytes))
	ew.printf("%s", statLine("Input packets:", s.AH.InputPackets))
	ew.printf("%s", statLine("Output packets:", s.AH.OutputPackets))
	e := s.Errors
	ew.line("Errors:")
	ew.printf("  AH authentication failures: %d, Replay errors: %d\n", e.AHAuthFailures, e.ReplayErrors)
	ew.printf("  ESP authentication failures: %d, ESP decryption failures: %d\n", e.ESPAuthFailures, e.ESPDecryptFailures)
	ew.printf("  Bad headers: %d, Bad trailers: %d\n", e.BadHeaders, e.BadTrailers)
	ew.printf("  Invalid SPI: %d, TS check fail: %d\n", e.InvalidSPI, e.TSCheckFail)
	ew.printf("  Exceeds tunnel MTU: %d\n", e.ExceedsTunnelMTU)
	ew.printf("  Discarded: %d\n", e.Discarded)
	return ew.err
}
