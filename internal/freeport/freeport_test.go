package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestRange(t *testing.T) {
	for _, tc := range []struct {
		ephLo, ephHi, lo, hi int
		fail                 bool
	}{
		{32768, 60999, 10000, 31000, false}, // Linux's default: below, and below Mesos' default agent ports
		{20000, 60999, 10000, 20000, false},
		{10500, 60999, 61000, 65536, false}, // no room below: above
		{1024, 65535, 0, 0, true},           // no room anywhere
	} {
		lo, hi, err := Range(tc.ephLo, tc.ephHi)
		if (err != nil) != tc.fail || lo != tc.lo || hi != tc.hi {
			t.Errorf("Range(%d, %d) = %d, %d, %v; want %d, %d, fail %v", tc.ephLo, tc.ephHi, lo, hi, err, tc.lo, tc.hi, tc.fail)
		}
	}
}

func TestParseEphemeral(t *testing.T) {
	if lo, hi, err := ParseEphemeral("32768\t60999\n"); err != nil || lo != 32768 || hi != 60999 {
		t.Errorf("got %d %d %v", lo, hi, err)
	}
	for _, bad := range []string{"", "1", "a b", "1 b", "60999 32768", "0 10", "1 70000"} {
		if _, _, err := ParseEphemeral(bad); err == nil {
			t.Errorf("ParseEphemeral(%q): no error", bad)
		}
	}
}

func TestTakeGivesDistinctFreePortsOutsideTheEphemeralRange(t *testing.T) {
	ips := []string{"127.0.0.1", "127.0.0.2"}
	first, err := Take(ips, 20)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Take(ips, 20)
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := ephemeral()
	seen := map[int]bool{}
	for _, p := range append(first, second...) {
		if seen[p] {
			t.Errorf("port %d handed out twice", p)
		}
		seen[p] = true
		if p >= lo && p <= hi {
			t.Errorf("port %d is in the ephemeral range %d-%d", p, lo, hi)
		}
		for _, ip := range ips {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p)))
			if err != nil {
				t.Errorf("port %d on %s: %v", p, ip, err)
				continue
			}
			l.Close()
		}
	}
}

func TestTakeSkipsABoundPort(t *testing.T) {
	// A port bound on one of the addresses is never free.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	bound := l.Addr().(*net.TCPAddr).Port
	if free([]string{"127.0.0.1"}, bound) {
		t.Fatalf("free says the bound port %d is free", bound)
	}
	if _, err := Take(nil, 1); err == nil {
		t.Error("Take with no address: no error")
	}
}
