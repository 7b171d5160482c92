// Package ops holds bpfvpn's operational views: the plain data types behind
// every `show` command, their renderers in the SRX text layouts of the
// reference (§4) and as JSON, the Provider interface the daemon implements to
// fill them, and the grammar that parses the words of `show …` / `clear …`
// (unique-prefix abbreviation, `| display json`, vendor-style syntax errors)
// and dispatches them to a Provider.
//
// The daemon's Provider assembles views with the adapter packages:
// configview (policies, zones, st0 interfaces, routes from the
// configuration), ikeview (IKE and IPsec SAs from the engines' status
// reports), kernelview (IPsec statistics from XFRM counters) and
// sessionview (flow sessions from the data plane's table). opstest is a
// fake Provider holding SRX1's reference state.
//
// Renderers never see secrets: the view types carry no key material, so no
// output can leak any.
package ops
