package suite

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Encr describes an encryption transform with its key length in bits.
type Encr struct {
	ID      EncrID
	KeyBits int // 0 for fixed-length ciphers (3DES, ChaCha20-Poly1305)
}

// ErrAuthFailed is returned when an AEAD tag does not verify.
var ErrAuthFailed = errors.New("message authentication failed")

// Validate checks that the cipher and key length are supported.
func (e Encr) Validate() error {
	switch e.ID {
	case EncrAESCBC, EncrAESGCM16, EncrAESGCM12, EncrAESGCM8:
		if e.KeyBits != 128 && e.KeyBits != 192 && e.KeyBits != 256 {
			return fmt.Errorf("encryption %v: key length %d unsupported", e.ID, e.KeyBits)
		}
		return nil
	case Encr3DES, EncrChaCha20Poly1305:
		if e.KeyBits != 0 {
			return fmt.Errorf("encryption %v: takes no key length attribute", e.ID)
		}
		return nil
	}
	return fmt.Errorf("encryption %v: unsupported", e.ID)
}

// String names the transform, e.g. "AES-GCM-16-256".
func (e Encr) String() string {
	if e.KeyBits == 0 {
		return e.ID.String()
	}
	return fmt.Sprintf("%v-%d", e.ID, e.KeyBits)
}

// Weak reports a cipher accepted only for old peers (3DES); callers warn.
func (e Encr) Weak() bool { return e.ID == Encr3DES }

// AEAD reports a combined-mode cipher (no separate integrity transform).
func (e Encr) AEAD() bool {
	switch e.ID {
	case EncrAESGCM8, EncrAESGCM12, EncrAESGCM16, EncrChaCha20Poly1305:
		return true
	}
	return false
}

// KeyLen is the keying material length in bytes, including the 4-byte salt
// of AES-GCM (RFC 5282 §7.1) and ChaCha20-Poly1305 (RFC 7634 §2).
func (e Encr) KeyLen() int {
	switch e.ID {
	case Encr3DES:
		return 24
	case EncrChaCha20Poly1305:
		return 36
	case EncrAESGCM8, EncrAESGCM12, EncrAESGCM16:
		return e.KeyBits/8 + 4
	}
	return e.KeyBits / 8
}

// IVLen is the explicit IV carried in each message: the block size for CBC,
// 8 bytes for the AEAD ciphers.
func (e Encr) IVLen() int {
	switch e.ID {
	case Encr3DES:
		return des.BlockSize
	case EncrAESCBC:
		return aes.BlockSize
	}
	return 8
}

// BlockSize is the padding alignment of the plaintext (4 for AEAD ciphers).
func (e Encr) BlockSize() int {
	switch e.ID {
	case Encr3DES:
		return des.BlockSize
	case EncrAESCBC:
		return aes.BlockSize
	}
	return 4
}

// ICVLen is the AEAD tag length, 0 for CBC ciphers.
func (e Encr) ICVLen() int {
	switch e.ID {
	case EncrAESGCM8:
		return 8
	case EncrAESGCM12:
		return 12
	case EncrAESGCM16, EncrChaCha20Poly1305:
		return 16
	}
	return 0
}

// XFRMName is the Linux XFRM algorithm name for ESP: an "aead" algorithm for
// the combined modes, an "enc" algorithm otherwise.
func (e Encr) XFRMName() string {
	switch e.ID {
	case Encr3DES:
		return "cbc(des3_ede)"
	case EncrAESCBC:
		return "cbc(aes)"
	case EncrAESGCM8, EncrAESGCM12, EncrAESGCM16:
		return "rfc4106(gcm(aes))"
	case EncrChaCha20Poly1305:
		return "rfc7539esp(chacha20,poly1305)"
	}
	return ""
}

// Cipher is a keyed encryption transform. Not safe for concurrent use.
type Cipher struct {
	alg   Encr
	block cipher.Block
	aead  cipher.AEAD
	salt  [4]byte
	nonce [12]byte
}

// New keys the cipher with KeyLen bytes (salt last for AEAD ciphers).
func (e Encr) New(key []byte) (*Cipher, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	if len(key) != e.KeyLen() {
		return nil, fmt.Errorf("encryption %v: key %d bytes, want %d", e, len(key), e.KeyLen())
	}
	c := &Cipher{alg: e}
	var err error
	switch e.ID {
	case Encr3DES:
		c.block, err = des.NewTripleDESCipher(key)
	case EncrAESCBC:
		c.block, err = aes.NewCipher(key)
	case EncrAESGCM8, EncrAESGCM12, EncrAESGCM16:
		k := key[:len(key)-4]
		copy(c.salt[:], key[len(k):])
		var b cipher.Block
		if b, err = aes.NewCipher(k); err == nil {
			c.aead, err = cipher.NewGCMWithTagSize(b, e.ICVLen())
		}
	case EncrChaCha20Poly1305:
		copy(c.salt[:], key[32:])
		c.aead, err = chacha20poly1305.New(key[:32])
	}
	if err != nil {
		return nil, fmt.Errorf("encryption %v: %w", e, err)
	}
	return c, nil
}

// Alg returns the transform.
func (c *Cipher) Alg() Encr { return c.alg }

// Block returns the block cipher of a CBC transform (IKEv1 chains IVs itself).
func (c *Cipher) Block() cipher.Block { return c.block }

// EncryptCBC encrypts buf in place; len(buf) must be a multiple of the block size.
func (c *Cipher) EncryptCBC(iv, buf []byte) error {
	if c.block == nil || len(iv) != c.block.BlockSize() || len(buf)%c.block.BlockSize() != 0 {
		return fmt.Errorf("encryption %v: bad CBC input (iv %d, data %d)", c.alg, len(iv), len(buf))
	}
	cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(buf, buf)
	return nil
}

// DecryptCBC decrypts buf in place; len(buf) must be a multiple of the block size.
func (c *Cipher) DecryptCBC(iv, buf []byte) error {
	if c.block == nil || len(iv) != c.block.BlockSize() || len(buf)%c.block.BlockSize() != 0 {
		return fmt.Errorf("encryption %v: bad CBC input (iv %d, data %d)", c.alg, len(iv), len(buf))
	}
	cipher.NewCBCDecrypter(c.block, iv).CryptBlocks(buf, buf)
	return nil
}

func (c *Cipher) aeadNonce(iv []byte) ([]byte, error) {
	if c.aead == nil || len(iv) != 8 {
		return nil, fmt.Errorf("encryption %v: bad AEAD IV length %d", c.alg, len(iv))
	}
	copy(c.nonce[:4], c.salt[:])
	copy(c.nonce[4:], iv)
	return c.nonce[:], nil
}

// Seal appends ciphertext||tag of plaintext to dst. The nonce is salt||iv
// (RFC 5282 §3, RFC 7634 §2).
func (c *Cipher) Seal(dst, iv, plaintext, aad []byte) ([]byte, error) {
	n, err := c.aeadNonce(iv)
	if err != nil {
		return nil, err
	}
	return c.aead.Seal(dst, n, plaintext, aad), nil
}

// Open verifies and decrypts ciphertext||tag, appending the plaintext to dst.
func (c *Cipher) Open(dst, iv, ciphertext, aad []byte) ([]byte, error) {
	n, err := c.aeadNonce(iv)
	if err != nil {
		return nil, err
	}
	out, err := c.aead.Open(dst, n, ciphertext, aad)
	if err != nil {
		return nil, ErrAuthFailed
	}
	return out, nil
}
