package service

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string // substring; "" means success
		check   func(Config) bool
	}{
		{[]string{"--ip-addr=10.0.0.1/24", "--nic=afxdp:eth0"}, "", func(c Config) bool {
			return c.Addr.String() == "10.0.0.1/24" && c.NIC == NICSpec{Kind: "afxdp", Name: "eth0"} && c.Cores == 1 && c.XDPMode == "auto"
		}},
		{[]string{"--ip-addr=10.0.0.1", "--nic=tap:tas0", "--fp-no-ints", "--fp-cores-max=2"}, "", func(c Config) bool {
			return c.Addr.Bits() == 32 && c.NIC.Kind == "tap" && c.BusyPoll && c.Cores == 2
		}},
		{[]string{"--nic=afxdp:eth0"}, "--ip-addr is required", nil},
		{[]string{"--ip-addr=10.0.0.1/24"}, "--nic is required", nil},
		{[]string{"--ip-addr=fe80::1/64", "--nic=afxdp:eth0"}, "only IPv4", nil},
		{[]string{"--ip-addr=banana", "--nic=afxdp:eth0"}, "want an IPv4 address", nil},
		{[]string{"--ip-addr=0.0.0.0/0", "--nic=afxdp:eth0"}, "not a unicast", nil},
		{[]string{"--ip-addr=10.0.0.1/24", "--nic=eth0"}, "want KIND:INTERFACE", nil},
		{[]string{"--ip-addr=10.0.0.1/24", "--nic=dpdk:eth0"}, "unknown back-end", nil},
		{[]string{"--ip-addr=10.0.0.1/24", "--nic=afxdp:averyveryverylongname"}, "not a valid interface name", nil},
		{[]string{"--ip-addr=10.0.0.1/24", "--nic=afxdp:eth0", "--xdp-mode=fast"}, "--xdp-mode", nil},
		{[]string{"--ip-addr=10.0.0.1/24", "--nic=afxdp:eth0", "--fp-cores-max=0"}, "--fp-cores-max", nil},
		{[]string{"--ip-addr=10.0.0.1/24", "--nic=afxdp:eth0", "--bogus"}, "flag provided but not defined", nil},
		{[]string{"--ip-addr=10.0.0.1/24", "--nic=afxdp:eth0", "extra"}, "unexpected argument", nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cfg, err := ParseFlags(tt.args, io.Discard)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if !tt.check(cfg) {
					t.Fatalf("parsed %+v", cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("error %v does not wrap ErrUsage", err)
			}
		})
	}
	if _, err := ParseFlags([]string{"--help"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help gave %v", err)
	}
}
