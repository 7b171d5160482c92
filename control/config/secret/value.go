package secret

import "fmt"

// Redacted is what every textual form of a Value prints.
const Redacted = "<redacted>"

// Value holds a secret (a pre-shared key) so that it cannot be printed by
// accident: String, GoString, Format, MarshalJSON and MarshalText all yield
// Redacted. The only ways to the plaintext are Bytes and Encoded.
type Value struct {
	plain   []byte
	encoded string
}

// New returns a Value for plain, remembering its $9$ form encoded (which may be
// empty; then one is made on demand).
func New(plain []byte, encoded string) Value {
	return Value{plain: append([]byte(nil), plain...), encoded: encoded}
}

// IsZero reports whether the Value holds nothing.
func (v Value) IsZero() bool { return v.plain == nil && v.encoded == "" }

// Bytes returns a copy of the secret bytes (the IKE pre-shared key).
func (v Value) Bytes() []byte { return append([]byte(nil), v.plain...) }

// Encoded returns the $9$ form, the only form the configuration displays.
func (v Value) Encoded() string {
	if v.encoded == "" && v.plain != nil {
		v.encoded = Encode(v.plain)
	}
	return v.encoded
}

// Equal reports whether two Values hold the same secret bytes.
func (v Value) Equal(o Value) bool { return string(v.plain) == string(o.plain) }

func (v Value) String() string   { return Redacted }
func (v Value) GoString() string { return Redacted }

// Format prints Redacted for every verb.
func (v Value) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// MarshalJSON yields the JSON string Redacted.
func (v Value) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText yields Redacted.
func (v Value) MarshalText() ([]byte, error) { return []byte(Redacted), nil }
