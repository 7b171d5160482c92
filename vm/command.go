package vm

import (
	"os"
	"strings"
)

// GuestEnviron is the environment of commands in the guest: BPFVPN_VM=1,
// the caller's PATH plus the sbin directories, a writable HOME and Go's
// caches on the guest's tmpfs. extra ("K=V") entries are added last.
func GuestEnviron(extra ...string) []string {
	path := os.Getenv("PATH")
	for _, d := range []string{"/usr/local/go/bin", "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if !strings.Contains(":"+path+":", ":"+d+":") {
			path += ":" + d
		}
	}
	path = strings.TrimPrefix(path, ":")
	env := []string{
		GuestEnv + "=1",
		"PATH=" + path,
		"HOME=/root",
		"TMPDIR=/tmp",
		"GOCACHE=/tmp/go-cache",
		"GOTMPDIR=/tmp",
		"GOTOOLCHAIN=local",
		"LANG=C.UTF-8",
		"TERM=dumb",
	}
	return append(env, extra...)
}

// guestBusybox is where stage1 copies busybox in the switched root; the
// run scripts use its env to start commands with a clean environment.
const guestBusybox = "/run/vmrun/busybox"

// CommandScript is a run script that runs argv in dir with env and exits
// with its exit code (125 when dir does not exist, 127 when argv[0] is
// not found).
func CommandScript(dir string, env, argv []string) string {
	var b strings.Builder
	b.WriteString("cd " + shellQuote(dir) + " || exit 125\n")
	b.WriteString("exec " + guestBusybox + " env -i")
	for _, e := range env {
		b.WriteString(" " + shellQuote(e))
	}
	for _, a := range argv {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString("\n")
	return b.String()
}
