package maps

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// spiKey is the esp_spis key: the SPI in network order, as on the wire.
func spiKey(spi uint32) uint32 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], spi)
	return binary.NativeEndian.Uint32(b[:])
}

// AddSPI admits inbound ESP with spi (an installed inbound SA bound to ifID).
func (s *Set) AddSPI(spi, ifID uint32) error {
	if err := s.ESPSPIs.Put(spiKey(spi), ifID); err != nil {
		return fmt.Errorf("add inbound SPI %#x: %w", spi, err)
	}
	return nil
}

// RemoveSPI stops admitting inbound ESP with spi.
func (s *Set) RemoveSPI(spi uint32) error {
	if err := s.ESPSPIs.Delete(spiKey(spi)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("remove inbound SPI %#x: %w", spi, err)
	}
	return nil
}
