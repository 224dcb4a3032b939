// Package testdns is a small authoritative DNS server for the executor's
// tests, standing in for Mesos-DNS: A records that a test publishes (and
// may publish late, as Mesos-DNS's refresh does), over UDP and TCP.
package testdns

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server answers A queries for the names published on it; NXDOMAIN for
// the others.
type Server struct {
	// Addr is ip:port, for the DNSServer of a task spec.
	Addr  string
	mu    sync.Mutex
	recs  map[string]string
	asked map[string]int
	udp   *dns.Server
	tcp   *dns.Server
}

// Start serves on ip (UDP and TCP on one free port) until the test ends.
func Start(t testing.TB, ip string) *Server {
	t.Helper()
	s := &Server{recs: map[string]string{}, asked: map[string]int{}}
	pc, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	s.Addr = net.JoinHostPort(ip, strconv.Itoa(port))
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: l, Handler: h}
	// Shutdown ignores a server ActivateAndServe has not started yet (it
	// would then serve past the test): wait until both are started, and
	// at cleanup until both have returned.
	var done sync.WaitGroup
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		ended := make(chan struct{})
		done.Add(1)
		go func() {
			defer done.Done()
			defer close(ended)
			_ = srv.ActivateAndServe()
		}()
		select {
		case <-started:
		case <-ended:
			t.Fatal("testdns: the server did not start")
		}
	}
	t.Cleanup(func() {
		s.udp.Shutdown()
		s.tcp.Shutdown()
		done.Wait()
	})
	return s
}

// Publish makes name resolve to ip.
func (s *Server) Publish(name, ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[dns.Fqdn(strings.ToLower(name))] = ip
}

// Queries is how often name was asked for.
func (s *Server) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asked[dns.Fqdn(strings.ToLower(name))]
}

func (s *Server) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for _, q := range r.Question {
		name := strings.ToLower(q.Name)
		s.asked[name]++
		ip, ok := s.recs[name]
		if !ok {
			continue
		}
		found = true
		if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
				A:   net.ParseIP(ip).To4(),
			})
		}
	}
	if !found {
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}
