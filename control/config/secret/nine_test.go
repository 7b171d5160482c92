package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// Vectors of reference §7.
var vectors = []struct{ enc, plain string }{
	{"$9$LbHX-wg4Z", "lc"},
	{"$9$FNkC3/t1IcevLuOWx", "hello"},
	{"$9$UQiqf36A1RSTzRSreXxDik.Tzn/CuBI", "juniper123"},
	{"$9$jjik.PfQ3n9p08XN-wsfTQ", "$ABC123"},
}

func TestDecodeVectors(t *testing.T) {
	for _, v := range vectors {
		got, err := Decode(v.enc)
		if err != nil {
			t.Fatalf("Decode(%q): %v", v.enc, err)
		}
		if string(got) != v.plain {
			t.Errorf("Decode(%q) = %q, want %q", v.enc, got, v.plain)
		}
		if !IsEncoded(v.enc) {
			t.Errorf("IsEncoded(%q) = false", v.enc)
		}
	}
}

// fixedReader replays the salt and filler characters of a known encoding.
type fixedReader struct{ b []byte }

func (r *fixedReader) Read(p []byte) (int, error) {
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func TestEncodeVectors(t *testing.T) {
	for _, v := range vectors {
		body := v.enc[len(Prefix):]
		n := 1 + int(extra[body[0]])
		var seed []byte
		for i := 0; i < n; i++ {
			seed = append(seed, byte(alphaPos[body[i]]))
		}
		got := EncodeWith([]byte(v.plain), &fixedReader{b: seed})
		if got != v.enc {
			t.Errorf("EncodeWith(%q) = %q, want %q", v.plain, got, v.enc)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		plain := make([]byte, r.IntN(40))
		for j := range plain {
			plain[j] = byte(r.IntN(256))
		}
		enc := Encode(plain)
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(%x)): %v", plain, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("round trip %x -> %q -> %x", plain, enc, got)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, s := range []string{"", "$9$", "$ABC123", "$9$L", "$9$LbHX-wg4", "$9$LbHX-wg4Z!", "plain"} {
		if _, err := Decode(s); err == nil {
			t.Errorf("Decode(%q) succeeded", s)
		} else if len(s) > 3 && strings.Contains(err.Error(), s) {
			t.Errorf("error %q repeats the input", err)
		}
	}
}

func TestValueRedacts(t *testing.T) {
	v := New([]byte("topsecret"), "")
	for _, s := range []string{fmt.Sprint(v), fmt.Sprintf("%v %+v %#v %s %q %x", v, v, v, v, v, v), v.String()} {
		if strings.Contains(s, "topsecret") || strings.Contains(s, fmt.Sprintf("%x", "topsecret")) {
			t.Errorf("formatted value leaks the secret: %q", s)
		}
	}
	j, err := json.Marshal(struct{ K Value }{v})
	if err != nil || strings.Contains(string(j), "topsecret") {
		t.Errorf("JSON %s, %v", j, err)
	}
	if string(v.Bytes()) != "topsecret" {
		t.Errorf("Bytes() = %q", v.Bytes())
	}
	if d, err := Decode(v.Encoded()); err != nil || string(d) != "topsecret" {
		t.Errorf("Encoded() does not decode back: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, v := range vectors {
		f.Add(v.enc)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Decode(s)
		if err != nil {
			return
		}
		// A valid encoding decodes to bytes that encode and decode back.
		if q, err := Decode(Encode(p)); err != nil || !bytes.Equal(p, q) {
			t.Fatalf("re-encode of %q failed", s)
		}
	})
}
