package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// NotRunningError reports that no daemon answers on the socket.
type NotRunningError struct {
	Path string
	Err  error
}

func (e *NotRunningError) Error() string {
	if errors.Is(e.Err, syscall.ECONNREFUSED) {
		return fmt.Sprintf("bpfvpn daemon is not running (stale socket at %s)", e.Path)
	}
	return fmt.Sprintf("bpfvpn daemon is not running (no socket at %s)", e.Path)
}

func (e *NotRunningError) Unwrap() error { return e.Err }

// PermissionError reports that the caller may not use the socket.
type PermissionError struct {
	Path   string
	Detail string
}

func (e *PermissionError) Error() string {
	if e.Detail != "" {
		return e.Detail
	}
	return fmt.Sprintf("permission denied: %s (bpfvpn commands need root)", e.Path)
}

// Client sends requests to a daemon's control socket, one connection per
// request.
type Client struct {
	Path string
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client { return &Client{Path: path} }

// Do sends req and returns the daemon's response. Transport failures come
// back as *NotRunningError, *PermissionError or a wrapped error; a response
// carrying an error comes back as that *Error.
func (c *Client) Do(ctx context.Context, req Request) (Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Path)
	if err != nil {
		return Response{}, dialError(c.Path, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	req.Version = Version
	line, err := json.Marshal(req)
	if err != nil {
		return Response{}, fmt.Errorf("encode request: %w", err)
	}
	_, werr := conn.Write(append(line, '\n'))
	// Read even when the write failed: a server that refuses the peer
	// answers and hangs up before reading the request.
	var resp Response
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&resp); err != nil {
		if werr != nil {
			return Response{}, c.ioErr(ctx, "send request", werr)
		}
		return Response{}, c.ioErr(ctx, "read response", err)
	}
	if resp.Error != nil {
		if resp.Error.Code == CodePermissionDenied {
			return resp, &PermissionError{Path: c.Path, Detail: resp.Error.Message}
		}
		return resp, resp.Error
	}
	return resp, nil
}

// dialError classifies a failed connect to the socket at path.
func dialError(path string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return &NotRunningError{Path: path, Err: err}
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return &PermissionError{Path: path}
	}
	return fmt.Errorf("connect to bpfvpn daemon at %s: %w", path, err)
}

func (c *Client) ioErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s to bpfvpn daemon at %s: %w", what, c.Path, ctx.Err())
	}
	return fmt.Errorf("%s to bpfvpn daemon at %s: %w", what, c.Path, err)
}

// Op runs an operational command (the words of show/clear) and returns its
// output: the device text layout, or JSON when asJSON is set.
func (c *Client) Op(ctx context.Context, words []string, asJSON bool) (string, error) {
	resp, err := c.Do(ctx, Request{Verb: VerbOp, Words: words, JSON: asJSON})
	if err != nil {
		return "", err
	}
	return resp.Output, nil
}

// Ping checks that a daemon answers and speaks this protocol version.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.Do(ctx, Request{Verb: VerbPing})
	return err
}
