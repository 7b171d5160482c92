// Package kernel makes the kernel match bpfvpn's desired state through
// netlink: st0.N XFRM interfaces with their addresses, interface addresses on
// physical ports, static routes, and the XFRM SAs and policies of CHILD SA
// pairs. It also reads per-SA counters and /proc/net/xfrm_stat.
//
// Ownership. bpfvpn only ever changes or removes kernel objects it owns:
//   - links named st0.N of kind xfrm (if_id N+1), and st0.N.pK (if_id
//     PeerIfID(N, K)) for peer K of a multipoint unit;
//   - every address on an st0.N link, and addresses on other links whose
//     address protocol (IFA_PROTO, Linux ≥ 6.1) is RouteProtocol (246);
//   - routes in the main table whose protocol is RouteProtocol;
//   - XFRM states and policies whose if_id is IfID(N) and whose reqid is
//     ReqID(N) for a unit N in 0…MaxUnit (PeerIfID and PeerReqID for
//     multipoint peers).
//
// Anything else (a foreign route, address, link, SA or policy) is read at most
// and never modified, even when it collides with the desired state; a
// collision is reported as an error.
//
// Restart safety. All ownership marks live in the kernel, so a new Reconciler
// (for example in a restarted daemon) recognises what an earlier one
// installed and adopts it: given the same desired state it changes nothing.
package kernel
