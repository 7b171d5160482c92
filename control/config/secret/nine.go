// Package secret implements the Junos "$9$" obfuscation of configuration
// secrets (the public, keyless substitution scheme also implemented by the
// Perl module Crypt::Juniper) and a value type that keeps a secret out of
// logs and output.
//
// $9$ is obfuscation, not encryption: anyone can decode it. It only keeps
// secrets from being read over a shoulder; the configuration file itself must
// be protected.
package secret

import (
	"crypto/rand"
	"errors"
	"io"
	"strings"
)

// Prefix starts every encoded secret.
const Prefix = "$9$"

// families are the four character families of the alphabet. A salt from
// family f is followed by 3-f filler characters.
var families = [4]string{"QzF3n6/9CAtpu0O", "B1IREhcSyrleKvMW8LXx", "7N-dVbwsY2g4oaJZGUDj", "iHkq.mPf5T"}

// encoding holds the weight vectors; plaintext byte i uses encoding[i%7].
var encoding = [7][]int{{1, 4, 32}, {1, 16, 32}, {1, 8, 32}, {1, 64}, {1, 32}, {1, 4, 16, 128}, {1, 32, 64}}

var (
	alphabet string    // the 65 characters, families concatenated
	alphaPos [256]int8 // position of a character in alphabet, -1 if absent
	extra    [256]int8 // filler count following a salt character
)

func init() {
	alphabet = strings.Join(families[:], "")
	for i := range alphaPos {
		alphaPos[i] = -1
	}
	for i := 0; i < len(alphabet); i++ {
		alphaPos[alphabet[i]] = int8(i)
	}
	for f, fam := range families {
		for i := 0; i < len(fam); i++ {
			extra[fam[i]] = int8(3 - f)
		}
	}
}

// ErrInvalid is returned by Decode for text that is not a well-formed $9$ string.
var ErrInvalid = errors.New("not a valid $9$ secret")

// Decode returns the plaintext of a $9$ string. The error never contains the input.
func Decode(s string) ([]byte, error) {
	if !strings.HasPrefix(s, Prefix) {
		return nil, ErrInvalid
	}
	chars := s[len(Prefix):]
	if len(chars) == 0 {
		return nil, ErrInvalid
	}
	for i := 0; i < len(chars); i++ {
		if alphaPos[chars[i]] < 0 {
			return nil, ErrInvalid
		}
	}
	salt := chars[0]
	n := 1 + int(extra[salt])
	if len(chars) < n {
		return nil, ErrInvalid
	}
	prev := int(alphaPos[salt])
	chars = chars[n:]
	out := make([]byte, 0, len(chars)/2)
	for len(chars) > 0 {
		enc := encoding[len(out)%len(encoding)]
		if len(chars) < len(enc) {
			return nil, ErrInvalid
		}
		num := 0
		for i, w := range enc {
			cur := int(alphaPos[chars[i]])
			gap := (cur-prev+len(alphabet))%len(alphabet) - 1
			if gap < 0 {
				return nil, ErrInvalid
			}
			num += gap * w
			prev = cur
		}
		if num > 255 {
			return nil, ErrInvalid
		}
		out = append(out, byte(num))
		chars = chars[len(enc):]
	}
	return out, nil
}

// IsEncoded reports whether s is a well-formed $9$ string; such input is taken
// as already encoded.
func IsEncoded(s string) bool {
	_, err := Decode(s)
	return err == nil
}

// Encode returns plain encoded as a $9$ string with a random salt.
func Encode(plain []byte) string {
	return EncodeWith(plain, rand.Reader)
}

// EncodeWith encodes plain taking the salt and filler characters from r (tests
// pass a fixed source to get stable output). If r fails, the first alphabet
// character is used, which still yields a valid encoding.
func EncodeWith(plain []byte, r io.Reader) string {
	pick := func() byte {
		var b [1]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return alphabet[0]
		}
		return alphabet[int(b[0])%len(alphabet)]
	}
	var sb strings.Builder
	sb.Grow(len(Prefix) + 4 + 4*len(plain))
	sb.WriteString(Prefix)
	salt := pick()
	sb.WriteByte(salt)
	for i := 0; i < int(extra[salt]); i++ {
		sb.WriteByte(pick())
	}
	prev := int(alphaPos[salt])
	var gaps [4]int
	for i, c := range plain {
		enc := encoding[i%len(encoding)]
		v := int(c)
		for x := len(enc) - 1; x >= 0; x-- {
			gaps[x] = v / enc[x]
			v %= enc[x]
		}
		for x := range enc {
			p := (prev + gaps[x] + 1) % len(alphabet)
			sb.WriteByte(alphabet[p])
			prev = p
		}
	}
	return sb.String()
}
