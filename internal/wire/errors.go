package wire

import "errors"

// Errors returned by the parsers. They are fixed values so that rejecting a
// malformed packet on the hot path costs no allocation; callers count them
// with errors.Is or ==.
var (
	ErrTruncated = errors.New("wire: truncated header")

	ErrARPFormat = errors.New("wire: ARP is not Ethernet/IPv4")

	ErrIPv4Version   = errors.New("wire: IP version is not 4")
	ErrIPv4HeaderLen = errors.New("wire: IPv4 header length below 20 or beyond total length")
	ErrIPv4TotalLen  = errors.New("wire: IPv4 total length beyond buffer")

	ErrTCPDataOffset = errors.New("wire: TCP data offset below 5 or beyond segment")

	ErrOptionsTooLong  = errors.New("wire: TCP options longer than 40 bytes")
	ErrOptionTruncated = errors.New("wire: TCP option overruns the option space")
	ErrOptionLen       = errors.New("wire: TCP option length wrong for its kind")
)
