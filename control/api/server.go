package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/bpfvpn/bpfvpn/control/ops"
)

// Handler serves one verb.
type Handler interface {
	ServeRequest(ctx context.Context, req Request) (Response, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req Request) (Response, error)

// ServeRequest calls f.
func (f HandlerFunc) ServeRequest(ctx context.Context, req Request) (Response, error) {
	return f(ctx, req)
}

// IdleTimeout closes connections that send nothing for this long.
const IdleTimeout = 5 * time.Minute

// Server answers requests on a control socket.
type Server struct {
	log *slog.Logger

	mu       sync.Mutex
	handlers map[string]Handler
	// allowUID decides which peers are served; only root unless a test
	// overrides it.
	allowUID func(uid uint32) bool
}

// NewServer returns a server that answers "ping" and, when provider is not
// nil, operational commands ("op"). log may be nil.
func NewServer(provider ops.Provider, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, handlers: map[string]Handler{}, allowUID: func(uid uint32) bool { return uid == 0 }}
	s.Handle(VerbPing, HandlerFunc(func(context.Context, Request) (Response, error) {
		return Response{OK: true, Result: json.RawMessage(fmt.Sprintf(`{"version":%d}`, Version))}, nil
	}))
	if provider != nil {
		s.Handle(VerbOp, OpsHandler(provider))
	}
	return s
}

// Handle registers h for verb, replacing any earlier handler.
func (s *Server) Handle(verb string, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[verb] = h
}

// OpsHandler runs the operational command in req.Words against p.
func OpsHandler(p ops.Provider) Handler {
	return HandlerFunc(func(ctx context.Context, req Request) (Response, error) {
		out, err := ops.Run(ctx, p, req.Words, req.JSON)
		if err != nil {
			var se *ops.SyntaxError
			if errors.As(err, &se) {
				return Response{}, &Error{Code: CodeSyntax, Message: se.Error()}
			}
			return Response{}, err
		}
		return Response{OK: true, Output: out}, nil
	})
}

// Listen creates the control socket at path: the parent directory is created
// with mode 0700 when missing, a stale socket left by a dead daemon is
// removed, and the socket is made mode 0600. It fails when another server
// answers on path or path is not a socket.
func Listen(path string) (*net.UnixListener, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("control socket directory %s: %w", dir, err)
		}
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("control socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s: another bpfvpn daemon is listening", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale control socket %s: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod control socket %s: %w", path, err)
	}
	return ln, nil
}

// Serve accepts connections on ln until ctx is done (or accepting fails),
// then closes ln, which removes the socket file, and every open connection,
// and waits for their handlers to return.
func (s *Server) Serve(ctx context.Context, ln *net.UnixListener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var conns sync.Map
	defer func() {
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	}()
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			ln.Close()
			return fmt.Errorf("accept on control socket: %w", err)
		}
		conns.Store(c, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conns.Delete(c)
			defer c.Close()
			s.serveConn(ctx, c)
		}()
	}
}

// PeerUID returns the uid of the process at the other end of c.
func PeerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	if serr != nil {
		return 0, fmt.Errorf("peer credentials: %w", serr)
	}
	return cred.Uid, nil
}

func (s *Server) serveConn(ctx context.Context, c *net.UnixConn) {
	enc := json.NewEncoder(c)
	uid, err := PeerUID(c)
	if err != nil || !s.allowUID(uid) {
		msg := fmt.Sprintf("permission denied: uid %d may not use the bpfvpn control socket (root only)", uid)
		if err != nil {
			msg = "permission denied: " + err.Error()
		}
		s.log.Warn("control socket: refused peer", "uid", uid, "err", err)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		enc.Encode(Response{Version: Version, Error: &Error{Code: CodePermissionDenied, Message: msg}})
		return
	}
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		c.SetReadDeadline(time.Now().Add(IdleTimeout))
		line, err := readLine(r, MaxRequestBytes)
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				enc.Encode(Response{Version: Version, Error: Errorf(CodeBadRequest, "request exceeds %d bytes", MaxRequestBytes)})
			}
			return
		}
		resp := s.dispatch(ctx, line)
		c.SetWriteDeadline(time.Now().Add(IdleTimeout))
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine reads one newline-terminated line of at most max bytes.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max+1 {
			return nil, errLineTooLong
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}

// dispatch decodes and answers one request line. It never panics on input.
func (s *Server) dispatch(ctx context.Context, line []byte) (resp Response) {
	req, err := DecodeRequest(line)
	if err != nil {
		return Response{Version: Version, Error: Errorf(CodeBadRequest, "%v", err)}
	}
	if req.Version != Version {
		return Response{Version: Version, Error: Errorf(CodeVersion, "protocol version %d not supported (server speaks %d)", req.Version, Version)}
	}
	s.mu.Lock()
	h, ok := s.handlers[req.Verb]
	s.mu.Unlock()
	if !ok {
		return Response{Version: Version, Error: Errorf(CodeUnknownVerb, "unknown request %q", req.Verb)}
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("control socket: handler panicked", "verb", req.Verb, "panic", p)
			resp = Response{Version: Version, Error: Errorf(CodeFailed, "internal error serving %q", req.Verb)}
		}
	}()
	resp, err = h.ServeRequest(ctx, req)
	if err != nil {
		var ae *Error
		if !errors.As(err, &ae) {
			ae = &Error{Code: CodeFailed, Message: err.Error()}
		}
		return Response{Version: Version, Error: ae}
	}
	resp.Version = Version
	resp.OK = resp.Error == nil
	return resp
}
