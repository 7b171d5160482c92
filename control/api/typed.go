package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// Typed adapts a function with typed arguments and result to a Handler: the
// request's Args decode into A (absent Args leave A zero), the returned text
// becomes Output and result is encoded into Result (omitted when nil).
// This is how the daemon adds verbs such as commit, rollback or status.
func Typed[A any](f func(ctx context.Context, args A) (output string, result any, err error)) Handler {
	return HandlerFunc(func(ctx context.Context, req Request) (Response, error) {
		var args A
		if len(bytes.TrimSpace(req.Args)) > 0 {
			if err := json.Unmarshal(req.Args, &args); err != nil {
				return Response{}, Errorf(CodeBadRequest, "%s arguments: %v", req.Verb, err)
			}
		}
		out, result, err := f(ctx, args)
		if err != nil {
			return Response{}, err
		}
		resp := Response{OK: true, Output: out}
		if result != nil {
			b, err := json.Marshal(result)
			if err != nil {
				return Response{}, fmt.Errorf("%s result: %w", req.Verb, err)
			}
			resp.Result = b
		}
		return resp, nil
	})
}

// Call sends verb with args (encoded as JSON, nil for none), decodes the
// response's Result into result when both are non-nil, and returns the
// response's Output.
func (c *Client) Call(ctx context.Context, verb string, args, result any) (string, error) {
	req := Request{Verb: verb}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return "", fmt.Errorf("%s arguments: %w", verb, err)
		}
		req.Args = b
	}
	resp, err := c.Do(ctx, req)
	if err != nil {
		return "", err
	}
	if result != nil && len(resp.Result) > 0 {
		if err := json.Unmarshal(resp.Result, result); err != nil {
			return "", fmt.Errorf("%s result: %w", verb, err)
		}
	}
	return resp.Output, nil
}
