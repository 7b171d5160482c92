package ikev1

import (
	"bytes"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// TestNoSecretsInLogs runs establishment, DPD, a rekey, an authentication
// failure and a delete with debug logging and checks that neither the PSK
// nor any CHILD SA key appears in the log.
func TestNoSecretsInLogs(t *testing.T) {
	var buf lockedBuf
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pa := basePeer("A", addrA, addrB)
	pb := basePeer("B", addrB, addrA)
	pa.DPD = DPD{Mode: DPDAlwaysSend, Interval: 10 * time.Second, Threshold: 3}
	pr := newPair(t, pa, pb)
	for _, e := range []*end{pr.a, pr.b} {
		e.eng.log = log.With("end", e.name)
	}
	pr.initiate(pr.a)
	pr.advance(3600*time.Second, 10*time.Second)
	pr.a.eng.Terminate(pr.now(), "A")
	pr.pump()
	// A wrong key on a third run.
	pb.PSK = []byte("wrong")
	pr2 := newPair(t, pa, pb)
	for _, e := range []*end{pr2.a, pr2.b} {
		e.eng.log = log.With("end", e.name)
	}
	pr2.initiate(pr2.a)
	out := buf.b.String()
	if !strings.Contains(out, "CHILD SA rekeyed") || !strings.Contains(out, "wrong pre-shared key") {
		t.Fatalf("log lacks the expected events:\n%s", out)
	}
	if strings.Contains(out, pairPSK) || strings.Contains(out, "wrong\"") {
		t.Fatal("pre-shared key in the log")
	}
	var sas []ike.ChildSA
	sas = append(sas, pr.a.sink.installedSAs()...)
	for _, r := range pr.a.sink.rekeyedPairs() {
		sas = append(sas, r[1])
	}
	for _, sa := range sas {
		for _, k := range [][]byte{sa.In.Encryption, sa.Out.Encryption, sa.In.Integrity, sa.Out.Integrity} {
			if len(k) == 0 {
				continue
			}
			if strings.Contains(out, hex.EncodeToString(k)) || strings.Contains(out, string(k)) {
				t.Fatal("CHILD SA key material in the log")
			}
		}
	}
}
