package suite

import (
	"fmt"
	"log/slog"
)

// Key holds secret key material. Its String, Format, GoString, LogValue,
// MarshalJSON and MarshalText never reveal the bytes, so a Key can sit in any
// struct that is printed, logged or encoded.
type Key []byte

const redacted = "[redacted]"

func (k Key) String() string                { return fmt.Sprintf("[redacted %d bytes]", len(k)) }
func (k Key) GoString() string              { return k.String() }
func (k Key) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(k.String())) }
func (k Key) LogValue() slog.Value          { return slog.StringValue(k.String()) }
func (k Key) MarshalJSON() ([]byte, error)  { return []byte(`"` + redacted + `"`), nil }
func (k Key) MarshalText() ([]byte, error)  { return []byte(redacted), nil }
func (k Key) Bytes() []byte                 { return k }
func (k Key) Clone() Key                    { return append(Key(nil), k...) }
func (k Key) Wipe()                         { Wipe(k) }

// Wipe overwrites b with zeros. It is used on every secret (DH private values,
// shared secrets, SKEYSEED, derived keys) when the owning SA dies.
func Wipe(b []byte) {
	clear(b)
}

// WipeAll wipes every key.
func WipeAll(keys ...Key) {
	for _, k := range keys {
		Wipe(k)
	}
}
