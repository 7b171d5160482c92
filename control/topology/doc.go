// Package topology builds the multi-site setups of issue 8 on top of the
// two-site lab (control/lab, control/daemon/labrun): many tunnels between two
// gateways, routing daemons (BIRD) beside the gateways speaking BGP over st0,
// and the configurations these need. Its TestVM… tests are the end-to-end
// proofs of issue 8 (dynamic routing over st0, tunnel scale).
package topology
