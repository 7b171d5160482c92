package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Version is the protocol version this package speaks.
const Version = 1

// MaxRequestBytes bounds one request line. A commit carries the whole
// configuration text: 100,000 policies in set form are ~36 MB, so the bound
// leaves room for that (the socket is root-only; the bound only stops a
// runaway client).
const MaxRequestBytes = 64 << 20

// DefaultSocketPath is where the daemon listens unless told otherwise.
const DefaultSocketPath = "/run/bpfvpn/bpfvpn.sock"

// SocketEnv names the environment variable that overrides the default path.
const SocketEnv = "BPFVPN_SOCKET"

// SocketPath resolves the socket path: flagValue when set, else $BPFVPN_SOCKET,
// else DefaultSocketPath.
func SocketPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if env := os.Getenv(SocketEnv); env != "" {
		return env
	}
	return DefaultSocketPath
}

// Verbs served by every server. The daemon adds its own with Server.Handle.
const (
	VerbOp   = "op"   // run an operational command: Words, JSON
	VerbPing = "ping" // answer with the protocol version
)

// Request is one client request.
type Request struct {
	Version int    `json:"version"`
	Verb    string `json:"verb"`
	// Words are the words of an operational command (verb "op"),
	// e.g. ["show", "security", "ike", "security-associations"].
	Words []string `json:"words,omitempty"`
	// JSON asks for the JSON form of a view instead of the text layout.
	JSON bool `json:"json,omitempty"`
	// Args carries the parameters of other verbs, defined by their handler.
	Args json.RawMessage `json:"args,omitempty"`
}

// Response answers one request. On success OK is set and Output holds text
// to print (possibly empty) and Result any structured answer; otherwise
// Error says what went wrong.
type Response struct {
	Version int             `json:"version"`
	OK      bool            `json:"ok"`
	Output  string          `json:"output,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// Error codes carried in responses.
const (
	CodeSyntax           = "syntax"            // the command words were rejected; Message is the vendor-style text
	CodePermissionDenied = "permission-denied" // the peer is not root
	CodeUnknownVerb      = "unknown-verb"
	CodeBadRequest       = "bad-request" // undecodable or oversized request
	CodeVersion          = "version"     // unsupported protocol version
	CodeFailed           = "failed"      // the handler failed; Message says why
)

// Error is an error carried in a response. Handlers may return one to choose
// the code; any other error becomes CodeFailed with its text.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// DecodeRequest parses one request line. It never panics; a request of
// another protocol version decodes without error and is refused by the
// server with CodeVersion.
func DecodeRequest(line []byte) (Request, error) {
	var req Request
	if len(bytes.TrimSpace(line)) == 0 {
		return req, errors.New("empty request")
	}
	if len(line) > MaxRequestBytes {
		return req, fmt.Errorf("request of %d bytes exceeds %d", len(line), MaxRequestBytes)
	}
	if err := json.Unmarshal(line, &req); err != nil {
		return Request{}, fmt.Errorf("decode request: %w", err)
	}
	if req.Verb == "" {
		return req, errors.New("request has no verb")
	}
	return req, nil
}
