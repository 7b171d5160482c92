package ikev2

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/bpfvpn/bpfvpn/ike"
	"github.com/bpfvpn/bpfvpn/ike/iketest"
)

// responderSeeds are real messages of an exchange plus broken variants.
func responderSeeds(t testing.TB) [][]byte {
	p := newPair(t, nil, nil)
	var msgs [][]byte
	p.net.Tap = func(d ike.Datagram) {
		if d.Remote.Addr() == addrB {
			msgs = append(msgs, append([]byte(nil), d.Data...))
		}
	}
	p.establish()
	p.a.RekeyChild(p.now(), "vpnA")
	p.net.RunUntil(p.quiet, time.Second, time.Minute)
	init := msgs[0]
	var seeds [][]byte
	seeds = append(seeds, msgs...)
	seeds = append(seeds, init[:len(init)/2]) // truncated
	over := append([]byte(nil), init...)
	binary.BigEndian.PutUint16(over[HeaderLen+2:], 0xfff0) // oversized payload length
	seeds = append(seeds, over)
	loop := append([]byte(nil), init[:HeaderLen]...)
	for i := 0; i < 100; i++ {
		loop = append(loop, byte(PayloadVendorID), 0, 0, 4)
	}
	loop[16] = byte(PayloadVendorID)
	binary.BigEndian.PutUint32(loop[24:], uint32(len(loop)))
	seeds = append(seeds, loop) // looping chain
	if len(msgs) > 1 {
		wrong := append([]byte(nil), msgs[1]...)
		wrong[8] ^= 0x55 // wrong responder SPI
		seeds = append(seeds, wrong)
		bad := append([]byte(nil), msgs[1]...)
		bad[len(bad)-1] ^= 1 // broken ICV
		seeds = append(seeds, bad)
	}
	return seeds
}

// FuzzResponder feeds arbitrary datagrams to a responder that may hold an
// established SA; it must never panic.
func FuzzResponder(f *testing.F) {
	for _, s := range responderSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		net := iketest.NewNetwork(1)
		b, err := New(Config{Sender: net, Log: testLogger(t), CookieThreshold: -1})
		if err != nil {
			t.Fatal(err)
		}
		c := baseConn("vpnB", addrB, addrA)
		c.Remote = netip.AddrPortFrom(netip.IPv4Unspecified(), 500)
		if err := b.AddConnection(c); err != nil {
			t.Fatal(err)
		}
		now := net.Now()
		d := ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: data}
		b.HandleDatagram(now, d)
		b.HandleDatagram(now, d)
		b.Tick(now.Add(time.Hour))
	})
}

// TestResponderSeeds runs the fuzz seeds against a live responder pair.
func TestResponderSeeds(t *testing.T) {
	p := newPair(t, nil, nil)
	p.establish()
	for _, s := range responderSeeds(t) {
		p.b.HandleDatagram(p.now(), ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: s})
	}
	p.net.Settle(100)
	if established(p.b, p.now()) != 1 {
		t.Fatal("garbage disturbed the established SA")
	}
}

// FuzzEstablishedResponder sends arbitrary (decodable) payload chains,
// properly protected with the keys of an established IKE SA, in every
// exchange type: the tasks behind the SK payload must never panic.
func FuzzEstablishedResponder(f *testing.F) {
	_, rekey := EncodePayloads(nil, []Payload{
		&Notify{Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, NotifyType: REKEY_SA},
		childProposals(defaultChild(), 0x1234, true), &Nonce{Data: make([]byte, 32)},
		tsPayload(false, anyTS()), tsPayload(true, anyTS())})
	f.Add(uint8(CREATE_CHILD_SA), uint8(PayloadNotify), rekey)
	_, ikeRekey := EncodePayloads(nil, []Payload{ikeProposals(defaultIKE(), make([]byte, 8)), &Nonce{Data: make([]byte, 32)}, &KE{Group: 20, Data: make([]byte, 96)}})
	f.Add(uint8(CREATE_CHILD_SA), uint8(PayloadSA), ikeRekey)
	_, del := EncodePayloads(nil, []Payload{&Delete{Protocol: ProtoESP, SPISize: 4, SPIs: [][]byte{{0, 0, 1, 0}}}, &Delete{Protocol: ProtoIKE}})
	f.Add(uint8(INFORMATIONAL), uint8(PayloadDelete), del)
	f.Add(uint8(IKE_AUTH), uint8(PayloadNone), []byte{})
	f.Fuzz(func(t *testing.T, ex, first uint8, chain []byte) {
		payloads, err := DecodePayloads(PayloadType(first), chain)
		if err != nil {
			return
		}
		p := newPair(t, nil, nil)
		p.establish()
		p.a.mu.Lock()
		var s *ikeSA
		for _, x := range p.a.sas {
			s = x
		}
		h := s.header(ExchangeType(ex), s.nextMsgID, false)
		packets, err := s.pack(h, payloads)
		p.a.mu.Unlock()
		if err != nil {
			return
		}
		for _, pkt := range packets {
			p.b.HandleDatagram(p.now(), ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: pkt})
		}
		p.net.Settle(50)
		p.net.Advance(time.Hour)
		p.net.Settle(50)
	})
}

// TestEmptyRetransmissionOfLastRequest: a header-only datagram with the SPIs
// and message ID of the last answered request (all visible on the wire) is
// dropped, not a crash.
func TestEmptyRetransmissionOfLastRequest(t *testing.T) {
	p := newPair(t, nil, nil)
	p.establish()
	st := p.b.IKESAs(p.now())[0]
	m := &Message{Header: Header{SPIi: st.SPIi, SPIr: st.SPIr, Exchange: IKE_AUTH, Flags: FlagInitiator, MessageID: 1}}
	p.b.HandleDatagram(p.now(), ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: m.Encode()})
	m.MessageID = 2
	p.b.HandleDatagram(p.now(), ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: m.Encode()})
	if established(p.b, p.now()) != 1 {
		t.Fatal("SA disturbed")
	}
}

// FuzzEstablishedRaw delivers arbitrary datagrams carrying the SPIs of an
// established IKE SA (which anyone on the path can see) to its responder.
func FuzzEstablishedRaw(f *testing.F) {
	for _, s := range responderSeeds(f) {
		f.Add(s)
	}
	f.Add(make([]byte, HeaderLen))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < HeaderLen {
			return
		}
		p := newPair(t, nil, nil)
		p.establish()
		st := p.b.IKESAs(p.now())[0]
		d := append([]byte(nil), data...)
		binary.BigEndian.PutUint64(d[0:], st.SPIi)
		binary.BigEndian.PutUint64(d[8:], st.SPIr)
		d[17] = 0x20
		binary.BigEndian.PutUint32(d[24:], uint32(len(d)))
		p.b.HandleDatagram(p.now(), ike.Datagram{Local: netip.AddrPortFrom(addrB, 500), Remote: netip.AddrPortFrom(addrA, 500), Data: d})
		p.net.Settle(20)
		p.net.Advance(time.Hour)
		p.net.Settle(20)
	})
}
