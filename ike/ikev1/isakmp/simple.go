package isakmp

// Data is a payload whose body is opaque data: KE, HASH, NONCE, VID, NAT-D,
// SIG and certificate payloads.
type Data struct {
	Kind PayloadType
	Data []byte
}

// Type implements Payload.
func (d *Data) Type() PayloadType { return d.Kind }

// AppendBody implements Payload.
func (d *Data) AppendBody(b []byte) []byte { return append(b, d.Data...) }

// KE returns a key exchange payload.
func KE(pub []byte) *Data { return &Data{Kind: PayloadKE, Data: pub} }

// Hash returns a HASH payload.
func Hash(h []byte) *Data { return &Data{Kind: PayloadHash, Data: h} }

// Nonce returns a NONCE payload.
func Nonce(n []byte) *Data { return &Data{Kind: PayloadNonce, Data: n} }

// VendorID returns a VID payload.
func VendorID(v []byte) *Data { return &Data{Kind: PayloadVendorID, Data: v} }

// NATD returns a NAT-D payload of type kind (PayloadNATD or PayloadNATDDraft).
func NATD(kind PayloadType, h []byte) *Data { return &Data{Kind: kind, Data: h} }

// Raw is an already encoded payload body, re-emitted verbatim.
type Raw struct {
	Kind PayloadType
	Body []byte
}

// Type implements Payload.
func (r Raw) Type() PayloadType { return r.Kind }

// AppendBody implements Payload.
func (r Raw) AppendBody(b []byte) []byte { return append(b, r.Body...) }
