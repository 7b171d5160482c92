package api

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/ops/opstest"
)

// FuzzDispatch feeds arbitrary request lines through decoding, the command
// grammar and the renderers: none may panic, and every answer must be a
// response that encodes.
func FuzzDispatch(f *testing.F) {
	for _, seed := range []string{
		`{"version":1,"verb":"op","words":["show","security","ike","sa"]}`,
		`{"version":1,"verb":"op","words":["sh","sec","ipsec","sa","index","131073","detail"],"json":true}`,
		`{"version":1,"verb":"op","words":["show","route","|","match","st0|ge","|","count"]}`,
		`{"version":1,"verb":"op","words":["show","route","|","last","0"]}`,
		`{"version":1,"verb":"op","words":["show","interfaces","st0","terse","|","except","("]}`,
		`{"version":1,"verb":"op","words":["clear","security","ike","sa","index","4294967296"]}`,
		`{"version":1,"verb":"ping"}`,
		`{"version":2,"verb":"op"}`,
		`{"version":1,"verb":"op","words":["|","|"]}`,
		`{"version":1,"verb":"op","words":["show","security","i"]}`,
		`[]`, `null`, ``, `{"verb":7}`,
	} {
		f.Add([]byte(seed))
	}
	s := NewServer(opstest.Reference(), nil)
	f.Fuzz(func(t *testing.T, line []byte) {
		resp := s.dispatch(context.Background(), line)
		if resp.Version != Version {
			t.Fatalf("response version %d", resp.Version)
		}
		if resp.OK == (resp.Error != nil) {
			t.Fatalf("OK %v with error %v", resp.OK, resp.Error)
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Fatalf("response does not encode: %v", err)
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"version":1,"verb":"op","words":["show"]}`))
	f.Add([]byte(`{"version":1,"verb":"x","args":{"a":[1,2,{}]}}`))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := DecodeRequest(line)
		if err == nil && req.Verb == "" {
			t.Fatal("decoded a request without a verb")
		}
	})
}
