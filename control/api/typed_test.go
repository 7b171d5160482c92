package api_test

import (
	"context"
	"errors"
	"testing"

	"github.com/bpfvpn/bpfvpn/control/api"
)

type commitArgs struct {
	File  string `json:"file"`
	Check bool   `json:"check"`
}

type commitResult struct {
	Generation int      `json:"generation"`
	Changed    []string `json:"changed"`
}

func TestTypedVerb(t *testing.T) {
	path, srv := startServer(t, nil)
	srv.Handle("commit", api.Typed(func(_ context.Context, a commitArgs) (string, any, error) {
		if a.File == "" {
			return "", nil, api.Errorf(api.CodeBadRequest, "commit: no file")
		}
		if a.Check {
			return "configuration check succeeds\n", nil, nil
		}
		return "commit complete\n", commitResult{Generation: 2, Changed: []string{"policy VPN-OUT"}}, nil
	}))
	c := api.NewClient(path)
	ctx := testCtx(t)

	var res commitResult
	out, err := c.Call(ctx, "commit", commitArgs{File: "/etc/bpfvpn/bpfvpn.conf"}, &res)
	if err != nil || out != "commit complete\n" || res.Generation != 2 || len(res.Changed) != 1 {
		t.Fatalf("commit: %q %+v %v", out, res, err)
	}
	out, err = c.Call(ctx, "commit", commitArgs{File: "x", Check: true}, nil)
	if err != nil || out != "configuration check succeeds\n" {
		t.Fatalf("commit check: %q %v", out, err)
	}
	_, err = c.Call(ctx, "commit", nil, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeBadRequest || ae.Message != "commit: no file" {
		t.Fatalf("commit without args: %v", err)
	}
	_, err = c.Call(ctx, "commit", []int{1}, nil)
	if !errors.As(err, &ae) || ae.Code != api.CodeBadRequest {
		t.Fatalf("commit with bad args: %v", err)
	}
}
