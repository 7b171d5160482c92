package daemon

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readNotify(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifyPathSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	c := listenNotify(t, path)
	t.Setenv(NotifySocketEnv, path)
	sent, err := Notify("READY=1")
	if err != nil || !sent {
		t.Fatalf("Notify: sent %v, %v", sent, err)
	}
	if got := readNotify(t, c); got != "READY=1" {
		t.Fatalf("got %q", got)
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	name := "bpfvpn-gw-notify-" + t.Name() + time.Now().Format("150405.000000000")
	c := listenNotify(t, "\x00"+name)
	t.Setenv(NotifySocketEnv, "@"+name)
	if sent, err := Notify("STATUS=hello"); err != nil || !sent {
		t.Fatalf("Notify: sent %v, %v", sent, err)
	}
	if got := readNotify(t, c); got != "STATUS=hello" {
		t.Fatalf("got %q", got)
	}
}

func TestNotifyWithoutSocketIsNoop(t *testing.T) {
	t.Setenv(NotifySocketEnv, "")
	if sent, err := Notify("READY=1"); sent || err != nil {
		t.Fatalf("sent %v, err %v", sent, err)
	}
	t.Setenv(NotifySocketEnv, "relative/path")
	if _, err := Notify("READY=1"); err == nil {
		t.Fatal("relative NOTIFY_SOCKET accepted")
	}
}
