package ikev2

import (
	"errors"
	"time"
)

// task is one step of an exchange, after strongSwan's task model: the
// initiator builds its part of the request (buildI) and processes the
// response (processI); the responder processes the request (processR) and
// builds its part of the response (buildR). Exchanges compose tasks.
type task interface {
	buildI(s *ikeSA, now time.Time, out *[]Payload) error
	processI(s *ikeSA, now time.Time, in []Payload) error
	processR(s *ikeSA, now time.Time, in []Payload) error
	buildR(s *ikeSA, now time.Time, out *[]Payload) error
}

// exchange is a request/response pair made of tasks.
type exchange struct {
	typ   ExchangeType
	tasks []task
	dpd   bool // a liveness check: retried per the DPD settings
}

// errRetry asks to send the same exchange again (COOKIE, INVALID_KE_PAYLOAD).
var errRetry = errors.New("retry exchange")

// fatalError ends the IKE SA; the notification (if any) is sent alone in
// the response.
type fatalError struct {
	notify NotifyType
	err    error
}

func (f *fatalError) Error() string { return f.err.Error() }
func (f *fatalError) Unwrap() error { return f.err }

func fatal(n NotifyType, err error) error { return &fatalError{notify: n, err: err} }

// notifyPayload builds an error or status notification without SPI.
func notifyPayload(t NotifyType, data []byte) *Notify {
	return &Notify{NotifyType: t, Data: data}
}
