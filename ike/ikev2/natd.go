package ikev2

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"time"
)

// natHash is the NAT_DETECTION_*_IP data: SHA-1(SPIi | SPIr | IP | Port)
// (RFC 7296 §2.23).
func natHash(spiI, spiR uint64, ap netip.AddrPort) []byte {
	h := sha1.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], spiI)
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], spiR)
	h.Write(b[:])
	h.Write(ap.Addr().Unmap().AsSlice())
	binary.BigEndian.PutUint16(b[:], ap.Port())
	h.Write(b[:2])
	return h.Sum(nil)
}

// natPayloads are our NAT detection notifications for a message with the
// given SPIs sent from local to remote.
func natPayloads(spiI, spiR uint64, local, remote netip.AddrPort) []Payload {
	return []Payload{
		notifyPayload(NAT_DETECTION_SOURCE_IP, natHash(spiI, spiR, local)),
		notifyPayload(NAT_DETECTION_DESTINATION_IP, natHash(spiI, spiR, remote)),
	}
}

// detectNAT checks the peer's NAT detection data against the addresses the
// message really used. ok=false when the peer sent none.
func detectNAT(in []Payload, spiI, spiR uint64, local, remote netip.AddrPort) (localNAT, remoteNAT, ok bool) {
	var srcMatch, anySrc bool
	dst := findNotify(in, NAT_DETECTION_DESTINATION_IP)
	for _, p := range in {
		if n, isN := p.(*Notify); isN && n.NotifyType == NAT_DETECTION_SOURCE_IP {
			anySrc = true
			if hmac.Equal(n.Data, natHash(spiI, spiR, remote)) {
				srcMatch = true
			}
		}
	}
	if !anySrc || dst == nil {
		return false, false, false
	}
	return !hmac.Equal(dst.Data, natHash(spiI, spiR, local)), !srcMatch, true
}

// cookieRotation is how long one COOKIE secret is handed out.
const cookieRotation = 5 * time.Minute

// rotateCookieSecret renews the secret when its time is up; cookies made
// with the previous secret stay valid for one more period.
func (e *Engine) rotateCookieSecret(now time.Time) {
	if e.cookieRotateAt.IsZero() {
		e.cookieRotateAt = now.Add(cookieRotation)
		return
	}
	if now.Before(e.cookieRotateAt) {
		return
	}
	e.cookiePrev = e.cookieSecret
	e.random(e.cookieSecret[:])
	e.cookieVersion++
	e.cookieRotateAt = now.Add(cookieRotation)
}

// cookieFor is the stateless COOKIE of RFC 7296 §2.6: a version byte and
// HMAC-SHA256(secret, Ni | IPi | SPIi) truncated to 16 bytes.
func (e *Engine) cookieFor(secret *[32]byte, version uint8, ni []byte, remote netip.AddrPort, spiI uint64) []byte {
	m := hmac.New(sha256.New, secret[:])
	m.Write(ni)
	m.Write(remote.Addr().Unmap().AsSlice())
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], spiI)
	m.Write(b[:])
	return append([]byte{version}, m.Sum(nil)[:16]...)
}

// validCookie checks a received COOKIE against the current and the
// previous secret.
func (e *Engine) validCookie(got []byte, ni []byte, remote netip.AddrPort, spiI uint64) bool {
	if len(got) != 17 {
		return false
	}
	switch got[0] {
	case e.cookieVersion:
		return hmac.Equal(got, e.cookieFor(&e.cookieSecret, e.cookieVersion, ni, remote, spiI))
	case e.cookieVersion - 1:
		return hmac.Equal(got, e.cookieFor(&e.cookiePrev, e.cookieVersion-1, ni, remote, spiI))
	}
	return false
}
