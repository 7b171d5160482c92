package api_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/control/api"
	"github.com/bpfvpn/bpfvpn/control/ops/opstest"
)

const nobody = 65534

// dialAs connects to the unix socket at path with effective uid euid. Only
// the calling OS thread changes identity (a raw setresuid, unlike
// syscall.Setresuid which changes every thread); the kernel records the
// peer credentials at connect time, so the connection keeps euid after the
// thread switches back to root.
func dialAs(path string, euid int) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is unlocked only once it is root again; otherwise it
		// dies with this goroutine.
		keep := ^uintptr(0)
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, keep, uintptr(euid), keep); e != 0 {
			ch <- result{err: fmt.Errorf("setresuid(-1, %d, -1): %w", euid, e)}
			return
		}
		fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err == nil {
			err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: path})
			if err != nil {
				syscall.Close(fd)
			}
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, keep, 0, keep); e != 0 {
			if err == nil {
				syscall.Close(fd)
			}
			ch <- result{err: fmt.Errorf("restore euid 0: %w", e)}
			return
		}
		runtime.UnlockOSThread()
		if err != nil {
			ch <- result{err: err}
			return
		}
		f := os.NewFile(uintptr(fd), "control-socket")
		defer f.Close()
		conn, err := net.FileConn(f)
		ch <- result{conn, err}
	}()
	r := <-ch
	return r.conn, r.err
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to connect as another uid")
	}
}

func TestNonRootPeerRefused(t *testing.T) {
	requireRoot(t)
	path, _ := startServer(t, opstest.Reference())
	// Open the file-system path so that only the SO_PEERCRED check stands
	// between the peer and the server.
	openPath(t, path, true, true)
	conn, err := dialAs(path, nobody)
	if err != nil {
		t.Fatalf("connect as uid %d: %v", nobody, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	conn.Write([]byte(`{"version":1,"verb":"op","words":["show","security","ike","sa"]}` + "\n"))
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		t.Fatalf("read refusal: %v", err)
	}
	var resp api.Response
	if err := json.Unmarshal(line, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.OK || resp.Error == nil || resp.Error.Code != api.CodePermissionDenied || resp.Output != "" {
		t.Fatalf("non-root peer got %+v", resp)
	}
	want := fmt.Sprintf("permission denied: uid %d may not use the bpfvpn control socket (root only)", nobody)
	if resp.Error.Message != want {
		t.Errorf("message %q, want %q", resp.Error.Message, want)
	}

	// Root on a connection opened the same way is served.
	rootConn, err := dialAs(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rootConn.Close()
	rootConn.SetDeadline(time.Now().Add(30 * time.Second))
	rootConn.Write([]byte(`{"version":1,"verb":"ping"}` + "\n"))
	line, err = bufio.NewReader(rootConn).ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &resp) != nil || !resp.OK {
		t.Fatalf("root peer: %s, %v", line, err)
	}
}

// openPath makes the temporary directories above the socket's directory
// world-searchable and, when asked, the socket's directory itself and the
// socket.
func openPath(t *testing.T, path string, socketDir, socket bool) {
	t.Helper()
	dir := filepath.Dir(path)
	if !socketDir {
		dir = filepath.Dir(dir)
	}
	for ; dir != filepath.Clean(os.TempDir()) && dir != "/"; dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if socket {
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNonRootBlockedByFileModes(t *testing.T) {
	requireRoot(t)
	t.Run("directory 0700", func(t *testing.T) {
		path, _ := startServer(t, opstest.Reference())
		openPath(t, path, false, true)
		if _, err := dialAs(path, nobody); !errors.Is(err, syscall.EACCES) {
			t.Fatalf("connect as uid %d: %v, want EACCES", nobody, err)
		}
	})
	t.Run("socket 0600", func(t *testing.T) {
		path, _ := startServer(t, opstest.Reference())
		openPath(t, path, true, false)
		if _, err := dialAs(path, nobody); !errors.Is(err, syscall.EACCES) {
			t.Fatalf("connect as uid %d: %v, want EACCES", nobody, err)
		}
	})
}
