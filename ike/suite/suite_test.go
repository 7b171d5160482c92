package suite

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex: %v", err)
	}
	return b
}

// RFC 4231 test cases 1 and 2.
func TestPRFRFC4231(t *testing.T) {
	cases := []struct {
		id        PRFID
		key, data []byte
		want      string
	}{
		{PRFHMACSHA2256, bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{PRFHMACSHA2384, bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"), "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"},
		{PRFHMACSHA2512, bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"), "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"},
		{PRFHMACSHA2256, []byte("Jefe"), []byte("what do ya want for nothing?"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		// RFC 2202 test case 1 for HMAC-SHA1.
		{PRFHMACSHA1, bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"), "b617318655057264e28bc0b6fb378c8ef146be00"},
	}
	for _, c := range cases {
		p, err := c.id.PRF()
		if err != nil {
			t.Fatal(err)
		}
		got := p.Compute(c.key, c.data[:3], c.data[3:])
		if hex.EncodeToString(got) != c.want {
			t.Errorf("%v: got %x want %s", c.id, []byte(got), c.want)
		}
	}
}

// prf+ must equal the concatenation defined in RFC 7296 §2.13.
func TestPRFPlus(t *testing.T) {
	p, _ := PRFHMACSHA2256.PRF()
	key, seed := []byte("key"), []byte("seed")
	got, err := p.Plus(key, seed, 70)
	if err != nil {
		t.Fatal(err)
	}
	t1 := p.Compute(key, seed, []byte{1})
	t2 := p.Compute(key, t1, seed, []byte{2})
	t3 := p.Compute(key, t2, seed, []byte{3})
	want := append(append(append([]byte{}, t1...), t2...), t3...)[:70]
	if !bytes.Equal(got, want) {
		t.Fatalf("prf+ mismatch")
	}
	if _, err := p.Plus(key, seed, 256*32); err == nil {
		t.Fatal("prf+ beyond 255 blocks accepted")
	}
}

// RFC 4231 test case 2, truncated as the IKE integrity transforms do.
func TestIntegRFC4231(t *testing.T) {
	full := map[IntegID]string{
		IntegHMACSHA2256128: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
		IntegHMACSHA2384192: "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
		IntegHMACSHA2512256: "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
	}
	for id, w := range full {
		alg, err := id.Integ()
		if err != nil {
			t.Fatal(err)
		}
		key := make([]byte, alg.KeyLen())
		copy(key, "Jefe") // HMAC pads short keys with zeros: same result
		m, err := alg.New(key)
		if err != nil {
			t.Fatal(err)
		}
		got := m.Sum(nil, []byte("what do ya want for nothing?"))
		if hex.EncodeToString(got) != w[:alg.OutputLen()*2] {
			t.Errorf("%v: got %x", id, got)
		}
		if !m.Verify(got, []byte("what do ya want for nothing?")) {
			t.Errorf("%v: verify failed", id)
		}
		got[0] ^= 1
		if m.Verify(got, []byte("what do ya want for nothing?")) {
			t.Errorf("%v: verify accepted a bad ICV", id)
		}
		if alg.TruncBits() != alg.OutputLen()*8 || alg.XFRMName() == "" {
			t.Errorf("%v: XFRM description missing", id)
		}
	}
}

// RFC 7748 §6.1.
func TestX25519RFC7748(t *testing.T) {
	a, err := newKeyExchange(Curve25519, nil, unhex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(a.PublicValue()); got != "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a" {
		t.Fatalf("public %s", got)
	}
	s, err := a.SharedSecret(unhex(t, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(s) != "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742" {
		t.Fatalf("shared %x", []byte(s))
	}
	// RFC 8031 §2.3 / RFC 6989: a low-order point yields all zeros and is refused.
	if _, err := a.SharedSecret(make([]byte, 32)); !errors.Is(err, ErrInvalidPublicValue) {
		t.Fatalf("zero point accepted: %v", err)
	}
}

// ECP vectors from RFC 5114 §A.6–A.7 (the RFC 5903 groups 19 and 20, IKE x||y format).
func TestECPVectors(t *testing.T) {
	cases := []struct {
		g                            DHGroup
		privI, privR, pubI, pubR, zz string
	}{
		{ECP256,
			"814264145f2f56f2e96a8e337a1284993faf432a5abce59e867b7291d507a3af",
			"2ce1788ec197e096db95a200cc0ab26a19ce6bccad562b8eee1b593761cf7f41",
			"2af502f3be8952f2c9b5a8d4160d09e97165be50bc42ae4a5e8d3b4ba83aeb15eb0faf4ca986c4d38681a0f9872d79d56795bd4bff6e6de3c0f5015ece5efd85",
			"b120de4aa36492795346e8de6c2c8646ae06aaea279fa775b3ab0715f6ce51b09f1b7eece20d7b5ed8ec685fa3f071d83727027092a8411385c34dde5708b2b6",
			"dd0f5396219d1ea393310412d19a08f1f5811e9dc8ec8eea7f80d21c820c2788"},
		{ECP384,
			"d27335ea71664af244dd14e9fd1260715dfd8a7965571c48d709ee7a7962a156d706a90cbcb5df2986f05feadb9376f1",
			"52d1791fdb4b70f89c0f00d456c2f7023b6125262c36a7df1f80231121cce3d39be52e00c194a4132c4a6c768bcd94d2",
			"793148f1787634d5da4c6d9074417d05e057ab62f82054d10ee6b0403d6279547e6a8ea9d1fd77427d016fe27a8b8c66c6c41294331d23e6f480f4fb4cd40504c947392e94f4c3f06b8f398bb29e42368f7a685923de3b67baced214a1a1d128",
			"5cd42ab9c41b5347f74b8d4efb708b3d5b36db65915359b44abc17647b6b9999789d72a84865ae2f223f12b5a1abc120e171458feaa939aaa3a8bfac46b404bd8f6d5b348c0fa4d80ceca16356ca933240bde8723415a8ece035b0edf36755de",
			"5ea1fc4af7256d2055981b110575e0a8cae53160137d904c59d926eb1b8456e427aa8a4540884c37de159a58028abc0e"},
	}
	for _, c := range cases {
		i, err := newKeyExchange(c.g, nil, unhex(t, c.privI))
		if err != nil {
			t.Fatal(err)
		}
		r, err := newKeyExchange(c.g, nil, unhex(t, c.privR))
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(i.PublicValue()) != c.pubI || hex.EncodeToString(r.PublicValue()) != c.pubR {
			t.Fatalf("%v: public values differ", c.g)
		}
		zi, err := i.SharedSecret(r.PublicValue())
		if err != nil {
			t.Fatal(err)
		}
		zr, _ := r.SharedSecret(i.PublicValue())
		if hex.EncodeToString(zi) != c.zz || !bytes.Equal(zi, zr) {
			t.Fatalf("%v: shared %x", c.g, []byte(zi))
		}
		// RFC 6989 §2.3: a point off the curve is refused.
		bad := unhex(t, c.pubR)
		bad[len(bad)-1] ^= 1
		if _, err := i.SharedSecret(bad); !errors.Is(err, ErrInvalidPublicValue) {
			t.Fatalf("%v: off-curve point accepted", c.g)
		}
	}
}

func TestAllGroupsAgree(t *testing.T) {
	for _, g := range []DHGroup{MODP1024, MODP1536, MODP2048, MODP3072, MODP4096, ECP256, ECP384, ECP521, Curve25519} {
		a, err := NewKeyExchange(g)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := NewKeyExchange(g)
		if len(a.PublicValue()) != g.PublicValueLen() {
			t.Fatalf("%v: public length %d", g, len(a.PublicValue()))
		}
		za, err := a.SharedSecret(b.PublicValue())
		if err != nil {
			t.Fatalf("%v: %v", g, err)
		}
		zb, _ := b.SharedSecret(a.PublicValue())
		if !bytes.Equal(za, zb) {
			t.Fatalf("%v: secrets differ", g)
		}
		if _, err := a.SharedSecret(b.PublicValue()[1:]); !errors.Is(err, ErrInvalidPublicValue) {
			t.Fatalf("%v: short value accepted", g)
		}
		a.Wipe()
		if _, err := a.SharedSecret(b.PublicValue()); err == nil {
			t.Fatalf("%v: wiped key still usable", g)
		}
	}
}

// RFC 6989 §2.1: y must satisfy 1 < y < p-1.
func TestMODPRangeCheck(t *testing.T) {
	a, _ := NewKeyExchange(MODP2048)
	n := MODP2048.PublicValueLen()
	one := make([]byte, n)
	one[n-1] = 1
	pm1 := modpParams[MODP2048].Bytes()
	pm1[len(pm1)-1]--
	for name, v := range map[string][]byte{"zero": make([]byte, n), "one": one, "p-1": pm1, "p": modpParams[MODP2048].Bytes()} {
		if _, err := a.SharedSecret(v); !errors.Is(err, ErrInvalidPublicValue) {
			t.Errorf("%s accepted", name)
		}
	}
}

// RFC 7634 Appendix B (IKEv2 example) and RFC 8439 §2.8.2 (salt = 07000000).
func TestChaCha20Poly1305Vectors(t *testing.T) {
	e := Encr{ID: EncrChaCha20Poly1305}
	c, err := e.New(unhex(t, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f a0a1a2a3"))
	if err != nil {
		t.Fatal(err)
	}
	aad := unhex(t, "c0c1c2c3c4c5c6c7d0d1d2d3d4d5d6d72e202500000000090000004529000029")
	ct, err := c.Seal(nil, unhex(t, "1011121314151617"), unhex(t, "0000000c000040010000000a00"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(ct) != "610394701f8d017f7c129248896b71bfe25236efd7cdc67066906315b2" {
		t.Fatalf("RFC 7634 ciphertext %x", ct)
	}
	pt, err := c.Open(nil, unhex(t, "1011121314151617"), ct, aad)
	if err != nil || hex.EncodeToString(pt) != "0000000c000040010000000a00" {
		t.Fatalf("open: %v", err)
	}
	ct[0] ^= 1
	if _, err := c.Open(nil, unhex(t, "1011121314151617"), ct, aad); !errors.Is(err, ErrAuthFailed) {
		t.Fatal("tampered ciphertext accepted")
	}

	c2, _ := e.New(unhex(t, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f 07000000"))
	plain := []byte("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
	ct2, _ := c2.Seal(nil, unhex(t, "4041424344454647"), plain, unhex(t, "50515253c0c1c2c3c4c5c6c7"))
	want := "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116" + "1ae10b594f09e26a7e902ecbd0600691"
	if hex.EncodeToString(ct2) != want {
		t.Fatalf("RFC 8439 ciphertext %x", ct2)
	}
}

// AES-GCM per RFC 5282: the last 4 key bytes are the salt, nonce = salt||iv.
// The vector is the McGrew-Viega GCM test case 4 (AES-128) with its 12-byte
// IV split into salt cafebabe and explicit IV facedbaddecaf888.
func TestAESGCMSaltHandling(t *testing.T) {
	e := Encr{ID: EncrAESGCM16, KeyBits: 128}
	c, err := e.New(unhex(t, "feffe9928665731c6d6a8f9467308308 cafebabe"))
	if err != nil {
		t.Fatal(err)
	}
	plain := unhex(t, "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
	aad := unhex(t, "feedfacedeadbeeffeedfacedeadbeefabaddad2")
	ct, _ := c.Seal(nil, unhex(t, "facedbaddecaf888"), plain, aad)
	want := "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091" + "5bc94fbc3221a5db94fae95ae7121a47"
	if hex.EncodeToString(ct) != want {
		t.Fatalf("GCM ciphertext %x", ct)
	}
	if e.KeyLen() != 20 || e.IVLen() != 8 || e.ICVLen() != 16 || e.XFRMName() != "rfc4106(gcm(aes))" {
		t.Fatal("GCM parameters wrong")
	}
}

func TestCBCRoundTrip(t *testing.T) {
	for _, e := range []Encr{{EncrAESCBC, 128}, {EncrAESCBC, 256}, {Encr3DES, 0}} {
		key := make([]byte, e.KeyLen())
		rand.Read(key)
		c, err := e.New(key)
		if err != nil {
			t.Fatal(err)
		}
		iv := make([]byte, e.IVLen())
		buf := bytes.Repeat([]byte("x"), e.BlockSize()*3)
		if err := c.EncryptCBC(iv, buf); err != nil {
			t.Fatal(err)
		}
		if err := c.DecryptCBC(iv, buf); err != nil || string(buf) != strings.Repeat("x", e.BlockSize()*3) {
			t.Fatalf("%v: round trip failed", e)
		}
		if err := c.EncryptCBC(iv, buf[:5]); err == nil {
			t.Fatalf("%v: unaligned input accepted", e)
		}
	}
	if (Encr{EncrAESCBC, 100}).Validate() == nil {
		t.Fatal("bad key length accepted")
	}
	if !(Encr{Encr3DES, 0}).Weak() {
		t.Fatal("3DES not weak")
	}
}

func TestKeyRedaction(t *testing.T) {
	k := Key{0xde, 0xad, 0xbe, 0xef}
	s := struct {
		K Key
		N int
	}{k, 1}
	for _, out := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %x %X %s %q", s, s, s, k, k, k, k)} {
		if strings.Contains(strings.ToLower(out), "dead") || strings.Contains(out, "222") {
			t.Fatalf("key leaked: %s", out)
		}
	}
	j, _ := json.Marshal(s)
	if strings.Contains(string(j), "3q2") || strings.Contains(string(j), "dead") {
		t.Fatalf("key leaked in JSON: %s", j)
	}
	k.Wipe()
	if !bytes.Equal(k, make([]byte, 4)) {
		t.Fatal("wipe left bytes")
	}
}
