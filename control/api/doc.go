// Package api is bpfvpn's control socket: a unix stream socket, root only,
// on which the CLI sends requests to the daemon and reads responses.
//
// Wire format: JSON lines. Each request is one JSON object on one line
// (at most MaxRequestBytes); the server answers each with one JSON object on
// one line, in order, and keeps the connection open for further requests
// until the client closes it. Every message carries "version"; a server
// answers requests of a version it does not speak with error code
// "version". Requests name a verb; "op" runs an operational command (the
// words of show/clear), "ping" answers with the protocol version, and the
// daemon registers further verbs (commit, rollback, status, …) with
// Server.Handle. Errors travel back as messages with a code; the CLI prints
// them.
//
// Access control: the socket file is created mode 0600 in a directory
// created mode 0700, and every connection's peer credentials (SO_PEERCRED)
// are checked: only uid 0 is served.
package api
