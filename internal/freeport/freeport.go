// Package freeport picks ports for listeners that are bound a moment later
// by another component (a Consul agent, a simulated Mesos agent, the
// scheduler in a test), on loopback addresses.
//
// It picks outside the kernel's ephemeral range. Asking the kernel for
// ":0" and closing the listener returns a port from that range, and the
// kernel may hand the same port to the next outgoing connection from the
// same address: a Consul agent that connects to itself (serf, raft, its
// own HTTP check) before all its listeners are up then fails to bind one
// of them with "address already in use". Ports below the ephemeral range
// are never given to outgoing connections.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// rangeFile is where Linux keeps the ephemeral port range.
const rangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// Linux's default ephemeral range, used when rangeFile cannot be read.
const defaultEphemeralLo, defaultEphemeralHi = 32768, 60999

// Picks stay in [lowest, mesosAgentPorts) when the ephemeral range allows:
// above the ports services on a development machine tend to use, and
// below [31000-32000], the ports a Mesos agent offers by default (a
// simulated agent's own listener must not be a port its offers hand to a
// task).
const lowest, mesosAgentPorts = 10000, 31000

var (
	mu     sync.Mutex
	handed = map[int]bool{} // ports this process has already handed out
)

// Range returns the half-open range [lo, hi) to pick from, given the
// kernel's ephemeral range [ephLo, ephHi]: below it when there is room for
// a few thousand ports there (and below mesosAgentPorts), else above it.
func Range(ephLo, ephHi int) (lo, hi int, err error) {
	if ephLo-lowest >= 2000 {
		return lowest, min(ephLo, mesosAgentPorts), nil
	}
	if 65536-(ephHi+1) >= 2000 {
		return ephHi + 1, 65536, nil
	}
	return 0, 0, fmt.Errorf("freeport: the ephemeral port range %d-%d leaves no room for fixed ports", ephLo, ephHi)
}

// ParseEphemeral reads the contents of ip_local_port_range ("32768\t60999").
func ParseEphemeral(s string) (lo, hi int, err error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("freeport: ephemeral port range %q: want two numbers", s)
	}
	if lo, err = strconv.Atoi(f[0]); err != nil {
		return 0, 0, fmt.Errorf("freeport: ephemeral port range %q: %w", s, err)
	}
	if hi, err = strconv.Atoi(f[1]); err != nil {
		return 0, 0, fmt.Errorf("freeport: ephemeral port range %q: %w", s, err)
	}
	if lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("freeport: ephemeral port range %q is not a range of ports", s)
	}
	return lo, hi, nil
}

func ephemeral() (int, int) {
	b, err := os.ReadFile(rangeFile)
	if err != nil {
		return defaultEphemeralLo, defaultEphemeralHi
	}
	lo, hi, err := ParseEphemeral(string(b))
	if err != nil {
		return defaultEphemeralLo, defaultEphemeralHi
	}
	return lo, hi
}

// Take returns n distinct ports, each free for TCP and UDP on every one of
// ips at the time of the call, outside the ephemeral range and never
// handed out before by this process.
func Take(ips []string, n int) ([]int, error) {
	if len(ips) == 0 {
		return nil, errors.New("freeport: no address given")
	}
	lo, hi, err := Range(ephemeral())
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	var out []int
	for tries := 0; len(out) < n && tries < 5000; tries++ {
		p := lo + rand.IntN(hi-lo)
		if handed[p] || !free(ips, p) {
			continue
		}
		handed[p] = true
		out = append(out, p)
	}
	if len(out) < n {
		return nil, fmt.Errorf("freeport: found %d of %d free ports on %v in %d-%d", len(out), n, ips, lo, hi-1)
	}
	return out, nil
}

// One is Take for one port on one address.
func One(ip string) (int, error) {
	p, err := Take([]string{ip}, 1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func free(ips []string, p int) bool {
	for _, ip := range ips {
		addr := net.JoinHostPort(ip, strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		l.Close()
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		u.Close()
	}
	return true
}
