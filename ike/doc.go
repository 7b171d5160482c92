// Package ike holds what the IKEv1 and IKEv2 engines share with the gateway:
// the description of a negotiated CHILD SA (ChildSA) and the SASink that
// receives it, the status types behind the `show security ike/ipsec` views,
// and the event-driven transport contract (Datagram, Sender, Engine).
//
// The engines own no sockets: they consume datagrams and clock ticks and
// produce datagrams and SASink calls. ike/udp runs an Engine over UDP 500 and
// 4500; tests run two engines over in-memory pipes with a fake clock.
//
// Nothing here knows about netlink, BPF or the configuration language.
package ike
