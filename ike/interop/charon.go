package interop

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// CharonBinary is Debian's charon path.
const CharonBinary = "/usr/lib/ipsec/charon"

// Available reports why charon cannot run here, "" when it can.
func Available() string {
	if os.Geteuid() != 0 {
		return "needs root (network namespaces)"
	}
	for _, p := range []string{CharonBinary, "/usr/sbin/swanctl", "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so"} {
		if _, err := os.Stat(p); err != nil {
			return p + " missing (Debian strongswan-charon, strongswan-swanctl, libcharon-extra-plugins)"
		}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "ip (iproute2) missing"
	}
	return ""
}

// CharonOptions configure one charon instance.
type CharonOptions struct {
	Dir         string // private directory for configs, socket and log
	Netns       *Netns
	Port        int // IKE port (500)
	NATPort     int // NAT-T port (4500)
	Threads     int // worker threads (16)
	LogLevel    int // ike/cfg log level (1)
	SwanctlConf string
	// Plugins replaces the plugin list (default: openssl crypto,
	// kernel-libipsec, kernel-netlink, socket-default, vici).
	Plugins      string
	DefaultLevel int
}

// Charon is a running charon daemon.
type Charon struct {
	opt  CharonOptions
	cmd  *exec.Cmd
	vici string
	done chan error
}

var strongswanConf = template.Must(template.New("").Parse(`charon {
  port = {{.Port}}
  port_nat_t = {{.NATPort}}
  threads = {{.Threads}}
  install_routes = no
  install_virtual_ip = no
  retransmit_tries = 3
  retransmit_timeout = 2
  # bpfvpn's load generator opens many SAs from one address.
  ikesa_table_size = 4096
  ikesa_table_segments = 16
  init_limit_half_open = 0
  block_threshold = 1000000
  cookie_threshold = 1000000
  load = {{.Plugins}}
  filelog {
    main {
      path = {{.Dir}}/charon.log
      default = {{.DefaultLevel}}
      ike = {{.LogLevel}}
      cfg = {{.LogLevel}}
      knl = {{.LogLevel}}
      net = {{.LogLevel}}
      flush_line = yes
    }
  }
  plugins {
    vici {
      socket = unix://{{.Dir}}/charon.vici
    }
  }
}
`))

// StartCharon writes the configuration and starts charon inside the
// namespace with a private /run.
func StartCharon(opt CharonOptions) (*Charon, error) {
	if opt.Port == 0 {
		opt.Port = 500
	}
	if opt.NATPort == 0 {
		opt.NATPort = 4500
	}
	if opt.Threads == 0 {
		opt.Threads = 16
	}
	if opt.LogLevel == 0 {
		opt.LogLevel = 1
	}
	if opt.Plugins == "" {
		opt.Plugins = "random nonce openssl kdf pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici"
	}
	opt.DefaultLevel = 1
	if opt.LogLevel < 0 {
		opt.LogLevel, opt.DefaultLevel = -1, -1
	}
	var buf bytes.Buffer
	if err := strongswanConf.Execute(&buf, opt); err != nil {
		return nil, err
	}
	conf := filepath.Join(opt.Dir, "strongswan.conf")
	if err := os.WriteFile(conf, buf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	c := &Charon{opt: opt, vici: "unix://" + filepath.Join(opt.Dir, "charon.vici"), done: make(chan error, 1)}
	c.cmd = exec.Command("ip", "netns", "exec", opt.Netns.Name, "unshare", "-m", "sh", "-c",
		"mount -t tmpfs tmpfs /run && exec "+CharonBinary)
	c.cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+conf)
	logf, err := os.Create(filepath.Join(opt.Dir, "charon.stderr"))
	if err != nil {
		return nil, err
	}
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start charon: %w", err)
	}
	go func() { c.done <- c.cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := c.Swanctl("--stats"); err == nil {
			break
		}
		select {
		case err := <-c.done:
			return nil, fmt.Errorf("charon exited: %v (see %s)", err, opt.Dir)
		default:
		}
		if time.Now().After(deadline) {
			c.Stop()
			return nil, fmt.Errorf("charon did not open its VICI socket (see %s)", opt.Dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if opt.SwanctlConf != "" {
		if err := c.Load(opt.SwanctlConf); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// Load replaces charon's connections and secrets with conf (swanctl.conf syntax).
func (c *Charon) Load(conf string) error {
	f := filepath.Join(c.opt.Dir, "swanctl.conf")
	if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
		return err
	}
	if out, err := c.Swanctl("--load-all", "--clear", "--file", f); err != nil {
		return fmt.Errorf("swanctl --load-all: %v: %s", err, out)
	}
	return nil
}

// Swanctl runs swanctl against this charon's VICI socket (30 s limit).
func (c *Charon) Swanctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "swanctl", append(args, "--uri", c.vici)...)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+filepath.Join(c.opt.Dir, "strongswan.conf"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Log returns charon's log file.
func (c *Charon) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.opt.Dir, "charon.log"))
	return string(b)
}

// Pid is charon's process id (the exec'ed shell becomes charon).
func (c *Charon) Pid() int { return c.cmd.Process.Pid }

// Stop terminates charon and waits for it.
func (c *Charon) Stop() {
	if c.cmd.Process == nil {
		return
	}
	c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// ChildSA is one CHILD SA as listed by swanctl.
type ChildSA struct {
	Name, State   string
	SPIIn, SPIOut string
}

// IKESA is one IKE SA as listed by swanctl --list-sas --raw.
type IKESA struct {
	Name, State string
	SPIi, SPIr  string
	Children    []ChildSA
}

// ListSAs parses `swanctl --list-sas --raw`.
func (c *Charon) ListSAs() ([]IKESA, error) {
	out, err := c.Swanctl("--list-sas", "--raw")
	if err != nil {
		return nil, fmt.Errorf("list-sas: %v: %s", err, out)
	}
	return parseListSAs(out), nil
}

// parseListSAs reads the vici raw dump: nested "name {k=v ...}" sections.
func parseListSAs(out string) []IKESA {
	var sas []IKESA
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "list-sa event") {
			continue
		}
		toks := tokenize(strings.TrimPrefix(line, "list-sa event"))
		var stack []string
		var cur *IKESA
		var child *ChildSA
		for _, t := range toks {
			switch {
			case t == "}":
				if len(stack) > 0 {
					if child != nil && len(stack) == 4 {
						cur.Children = append(cur.Children, *child)
						child = nil
					}
					if cur != nil && len(stack) == 2 {
						sas = append(sas, *cur)
						cur = nil
					}
					stack = stack[:len(stack)-1]
				}
			case strings.HasSuffix(t, "{"):
				name := strings.TrimSuffix(t, "{")
				stack = append(stack, name)
				if len(stack) == 2 {
					cur = &IKESA{Name: name}
				}
				if len(stack) == 4 && stack[2] == "child-sas" {
					child = &ChildSA{Name: name}
				}
			default:
				k, v, _ := strings.Cut(t, "=")
				switch {
				case child != nil && len(stack) == 4:
					switch k {
					case "state":
						child.State = v
					case "spi-in":
						child.SPIIn = v
					case "spi-out":
						child.SPIOut = v
					}
				case cur != nil && len(stack) == 2:
					switch k {
					case "state":
						cur.State = v
					case "initiator-spi":
						cur.SPIi = v
					case "responder-spi":
						cur.SPIr = v
					}
				}
			}
		}
	}
	return sas
}

func tokenize(s string) []string {
	s = strings.ReplaceAll(s, "{", "{ ")
	s = strings.ReplaceAll(s, "}", " } ")
	var out []string
	for _, f := range strings.Fields(s) {
		if f == "{" && len(out) > 0 {
			out[len(out)-1] += "{"
			continue
		}
		out = append(out, f)
	}
	return out
}
