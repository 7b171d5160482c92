// Command bpfvpn is a route-based IPsec VPN gateway for Linux configured
// with the SRX configuration language.
package main

import (
	"os"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}
