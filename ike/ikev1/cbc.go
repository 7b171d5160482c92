package ikev1

import (
	"crypto/cipher"
	"errors"
	"fmt"
)

// errDecrypt is returned for ciphertext that cannot be decrypted.
var errDecrypt = errors.New("decrypt: ciphertext not a positive multiple of the block size")

// encryptCBC pads plain with zeros to the block size and encrypts it with
// iv. It returns the ciphertext and the IV for the next message (its last
// block).
func encryptCBC(b cipher.Block, iv, plain []byte) (ct, next []byte) {
	bs := b.BlockSize()
	n := (len(plain) + bs - 1) / bs * bs
	if n == 0 {
		n = bs
	}
	ct = make([]byte, n)
	copy(ct, plain)
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(ct, ct)
	return ct, append([]byte(nil), ct[n-bs:]...)
}

// decryptCBC decrypts ct with iv and returns the plaintext (padding
// included) and the IV for the next message.
func decryptCBC(b cipher.Block, iv, ct []byte) (plain, next []byte, err error) {
	bs := b.BlockSize()
	if len(ct) == 0 || len(ct)%bs != 0 {
		return nil, nil, fmt.Errorf("%d bytes: %w", len(ct), errDecrypt)
	}
	next = append([]byte(nil), ct[len(ct)-bs:]...)
	plain = make([]byte, len(ct))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(plain, ct)
	return plain, next, nil
}
