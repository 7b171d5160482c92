package daemon

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// NotifySocketEnv names the variable through which systemd passes its
// notification socket (sd_notify(3)).
const NotifySocketEnv = "NOTIFY_SOCKET"

// Notify sends state (for example "READY=1" or "STATUS=…") to the service
// manager over the datagram socket named by $NOTIFY_SOCKET. Without that
// variable it does nothing and reports sent=false. Abstract socket names
// start with '@'.
func Notify(state string) (sent bool, err error) {
	path := os.Getenv(NotifySocketEnv)
	if path == "" {
		return false, nil
	}
	name := path
	if strings.HasPrefix(path, "@") {
		name = "\x00" + path[1:]
	} else if !strings.HasPrefix(path, "/") {
		return false, fmt.Errorf("sd_notify: %s=%q is neither absolute nor abstract", NotifySocketEnv, path)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sd_notify: connect %s: %w", path, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sd_notify: send to %s: %w", path, err)
	}
	return true, nil
}
