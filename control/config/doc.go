// Package config reads, validates and displays the Junos (SRX) configuration
// language that bpfvpn is configured with, and compiles it into the typed
// model (Config) that the rest of bpfvpn works from.
//
// Both textual forms are read by one parser into one Tree: set commands
// (set, delete, deactivate, activate, insert) and the hierarchical brace form
// (containers, leaves, [ lists ], comments, inactive: tags, quoted strings,
// SECRET-DATA trailers). The form is detected per file. A schema of the
// statements bpfvpn implements tells the parser which words are keywords,
// names and values; statements outside it are kept verbatim, displayed, and
// reported as warnings when compiling. The tree keeps file:line:col positions
// and configuration order, and displays canonically in both forms.
//
// Compiling (Tree.Compile, Load, ParseBytes) validates the whole tree,
// reports every problem as a Diagnostic (FILE:LINE:COL: message), applies the
// versioned Defaults table, and resolves every reference: zones, address
// books (prefixes), applications (protocol/port/ICMP terms, including the
// predefined junos-* table), host-inbound services, IKE/IPsec proposals,
// policies, gateways and VPNs, interface names through system interface-map,
// and st0.N units with XFRM if_id N+1. Inactive statements are not compiled.
//
// Pre-shared keys are stored in the tree only in $9$ form (package secret)
// and held in the model as secret.Value, which never prints its contents.
package config
