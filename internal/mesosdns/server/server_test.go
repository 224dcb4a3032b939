package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/internal/mesosdns"
)

// Listeners of these tests use 127.1.100.x (other packages use other ranges).

func fixture(t *testing.T) []byte { return fixtureB(t) }

func fixtureB(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/master-state.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// swappable is a Source whose answer the test changes.
type swappable struct {
	mu    sync.Mutex
	doc   []byte
	err   error
	calls int
}

func (s *swappable) set(doc []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc, s.err = doc, err
}

func (s *swappable) source(context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return s.doc, s.err
}

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); s.Close() })
	return s
}

func waitReady(t *testing.T, s *Server) {
	t.Helper()
	select {
	case <-s.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("server never became ready")
	}
}

func query(t *testing.T, addr, netw, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m, err := tryQuery(addr, netw, name, qtype, 5*time.Second)
	if err != nil {
		t.Fatalf("%s %s %s: %v", netw, dns.TypeToString[qtype], name, err)
	}
	return m
}

func tryQuery(addr, netw, name string, qtype uint16, timeout time.Duration) (*dns.Msg, error) {
	c := &dns.Client{Net: netw, Timeout: timeout}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	m, _, err := c.Exchange(q, addr)
	return m, err
}

func aValues(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	sort.Strings(out)
	return out
}

func srvValues(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			out = append(out, fmt.Sprintf("%s:%d", s.Target, s.Port))
		}
	}
	sort.Strings(out)
	return out
}

func eq(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

const (
	agentS0 = "d10602e3-409b-4ff3-a8c2-2ac0bdb8a688-S0"
	agentS1 = "d10602e3-409b-4ff3-a8c2-2ac0bdb8a688-S1"
)

func TestAnswersFromRealMasterState(t *testing.T) {
	s := start(t, Config{Addr: "127.1.100.1:0", Source: StaticSource(fixture(t)), Refresh: time.Second})
	waitReady(t, s)
	srvCanon := mesosdns.CanonicalSlaveTaskHost("consul-server-0", "consul-server-0", agentS0, "consul-fixture", "mesos") + "."
	for _, netw := range []string{"udp", "tcp"} {
		t.Run(netw, func(t *testing.T) {
			addr := s.Addr()
			for name, want := range map[string][]string{
				"consul-server-0.consul-fixture.mesos":                                                               {"127.0.0.21"},
				"CONSUL-Server-0.Consul-Fixture.MESOS":                                                               {"127.0.0.21"}, // case-insensitive
				"consul-client-0.consul-fixture.mesos":                                                               {"127.0.0.22"},
				"consul-server-0.consul-fixture.slave.mesos":                                                         {"127.0.0.21"},
				"consul-client-0.consul-fixture.slave.mesos":                                                         {"127.0.0.22"},
				mesosdns.CanonicalTaskHost("consul-server-0", "consul-server-0", agentS0, "consul-fixture", "mesos"): {"127.0.0.21"},
				mesosdns.CanonicalTaskHost("consul-client-0", "consul-client-0", agentS1, "consul-fixture", "mesos"): {"127.0.0.22"},
				srvCanon:        {"127.0.0.21"},
				"leader.mesos":  {"127.0.0.1"},
				"master.mesos":  {"127.0.0.1"},
				"master0.mesos": {"127.0.0.1"},
				"slave.mesos":   {"127.0.0.21", "127.0.0.22"},
				"ns1.mesos":     {"127.1.100.1"},
			} {
				m := query(t, addr, netw, name, dns.TypeA)
				if m.Rcode != dns.RcodeSuccess || !m.Authoritative || !eq(aValues(m), want) {
					t.Errorf("A %s: rcode %s aa=%v answers %v, want %v", name, dns.RcodeToString[m.Rcode], m.Authoritative, aValues(m), want)
				}
				for _, rr := range m.Answer {
					if rr.Header().Ttl != 60 {
						t.Errorf("A %s: TTL %d, want 60", name, rr.Header().Ttl)
					}
				}
			}

			// SRV records, with the targets' A records as extras.
			for _, name := range []string{"_consul-server-0._tcp.consul-fixture.mesos", "_consul-server-0._tcp.consul-fixture.slave.mesos", "_consul-server-0._udp.consul-fixture.mesos"} {
				m := query(t, addr, netw, name, dns.TypeSRV)
				want := []string{srvCanon + ":8300", srvCanon + ":8301", srvCanon + ":8302"}
				if m.Rcode != dns.RcodeSuccess || !eq(srvValues(m), want) {
					t.Errorf("SRV %s: %s %v, want %v", name, dns.RcodeToString[m.Rcode], srvValues(m), want)
				}
				if len(m.Extra) != 1 || m.Extra[0].(*dns.A).A.String() != "127.0.0.21" || m.Extra[0].Header().Name != srvCanon {
					t.Errorf("SRV %s extras: %v", name, m.Extra)
				}
			}
			m := query(t, addr, netw, "_leader._tcp.mesos", dns.TypeSRV)
			if !eq(srvValues(m), []string{"leader.mesos.:5060"}) {
				t.Errorf("_leader._tcp: %v", srvValues(m))
			}

			// Unknown names in the domain: NXDOMAIN with the SOA.
			for _, name := range []string{"nope.consul-fixture.mesos", "dup-first.consul-fixture.mesos", "consul-fixture.mesos", "mesos"} {
				m := query(t, addr, netw, name, dns.TypeA)
				if m.Rcode != dns.RcodeNameError || len(m.Answer) != 0 {
					t.Errorf("A %s: %s with %d answers, want NXDOMAIN", name, dns.RcodeToString[m.Rcode], len(m.Answer))
					continue
				}
				soa, ok := m.Ns[0].(*dns.SOA)
				if len(m.Ns) != 1 || !ok || soa.Ns != "ns1.mesos." || soa.Mbox != "root.ns1.mesos." || soa.Minttl != 60 || soa.Serial == 0 {
					t.Errorf("A %s: authority %v, want Mesos-DNS's SOA", name, m.Ns)
				}
			}
			// Known name, other type: NODATA (NOERROR, no answers, SOA).
			for _, qt := range []uint16{dns.TypeAAAA, dns.TypeTXT, dns.TypeMX} {
				m := query(t, addr, netw, "consul-server-0.consul-fixture.mesos", qt)
				if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 {
					t.Errorf("%s on a known name: %s, %d answers, %d authority; want NODATA", dns.TypeToString[qt], dns.RcodeToString[m.Rcode], len(m.Answer), len(m.Ns))
				}
			}
			// SRV for an unknown name: NOERROR, empty (as Mesos-DNS).
			m = query(t, addr, netw, "_nope._tcp.consul-fixture.mesos", dns.TypeSRV)
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
				t.Errorf("SRV unknown: %s %v", dns.RcodeToString[m.Rcode], m.Answer)
			}
			// SOA question: SOA in the authority section.
			m = query(t, addr, netw, "mesos", dns.TypeSOA)
			if m.Rcode != dns.RcodeSuccess || len(m.Ns) != 1 {
				t.Errorf("SOA: %s %v", dns.RcodeToString[m.Rcode], m.Ns)
			}
			// Outside the domain without upstreams: REFUSED.
			m = query(t, addr, netw, "example.com", dns.TypeA)
			if m.Rcode != dns.RcodeRefused {
				t.Errorf("example.com without upstreams: %s, want REFUSED", dns.RcodeToString[m.Rcode])
			}
		})
	}
}

func TestFrameworkAndCustomDomainAndTTL(t *testing.T) {
	st := map[string]any{
		"leader": "master@10.0.0.1:5050",
		"slaves": []any{map[string]any{"id": "a-S0", "pid": "slave(1)@10.0.0.5:5051"}},
		"frameworks": []any{
			map[string]any{"name": "Prod.Consul_DC1", "hostname": "10.0.0.9", "tasks": []any{
				map[string]any{"id": "t1", "name": "Consul_Client.web", "slave_id": "a-S0", "state": "TASK_RUNNING", "resources": map[string]any{"ports": "[8500-8500]"}},
				map[string]any{"id": "t2", "name": "0-Long_Task-Name-That-Exceeds-24", "slave_id": "a-S0", "state": "TASK_RUNNING"},
			}},
			map[string]any{"name": "marathon", "pid": "scheduler(1)@10.0.0.8:25501", "hostname": "m1", "tasks": []any{}},
		},
	}
	doc, _ := json.Marshal(st)
	s := start(t, Config{Addr: "127.1.100.2:0", Domain: "Example.", TTL: 7 * time.Second, Source: StaticSource(doc)})
	waitReady(t, s)
	for name, want := range map[string][]string{
		"consul-client-web.prod.consul-dc1.example":                {"10.0.0.5"},
		"prod.consul-dc1.example":                                  {"10.0.0.9"},
		"marathon.example":                                         {"10.0.0.8"},
		"leader.example":                                           {"10.0.0.1"},
		"0-long-task-name-that-exceeds-24.prod.consul-dc1.example": {"10.0.0.5"},
	} {
		m := query(t, s.Addr(), "udp", name, dns.TypeA)
		if !eq(aValues(m), want) {
			t.Errorf("A %s = %v, want %v", name, aValues(m), want)
		}
		for _, rr := range m.Answer {
			if rr.Header().Ttl != 7 {
				t.Errorf("%s TTL %d, want 7", name, rr.Header().Ttl)
			}
		}
	}
	m := query(t, s.Addr(), "udp", "_framework._tcp.marathon.example", dns.TypeSRV)
	if !eq(srvValues(m), []string{"marathon.example.:25501"}) {
		t.Errorf("_framework._tcp = %v", srvValues(m))
	}
	// RFC 952 labels on request, as Mesos-DNS's EnforceRFC952.
	s952 := start(t, Config{Addr: "127.1.100.2:0", EnforceRFC952: true, Source: StaticSource(doc)})
	waitReady(t, s952)
	if m := query(t, s952.Addr(), "udp", "consul-client-web.prod.consul-dc1.mesos", dns.TypeA); !eq(aValues(m), []string{"10.0.0.5"}) {
		t.Errorf("RFC 952 name: %v", aValues(m))
	}
	if m := query(t, s952.Addr(), "udp", "long-task-name-that-exce.prod.consul-dc1.mesos", dns.TypeA); !eq(aValues(m), []string{"10.0.0.5"}) {
		t.Errorf("RFC 952 cut name: %v", aValues(m))
	}
	if m := query(t, s952.Addr(), "udp", "0-long-task-name-that-exceeds-24.prod.consul-dc1.mesos", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("RFC 1123 name on an RFC 952 server: %s", dns.RcodeToString[m.Rcode])
	}

	// The .mesos domain is not served here: it is forwarded (and refused).
	m = query(t, s.Addr(), "udp", "leader.mesos", dns.TypeA)
	if m.Rcode != dns.RcodeRefused {
		t.Errorf("leader.mesos on an example server: %s", dns.RcodeToString[m.Rcode])
	}
}

func TestForwardsOutsideTheDomain(t *testing.T) {
	// A fake upstream on 127.1.100.3 that knows example.com.
	upstream := &dns.Server{Addr: "127.1.100.3:0", Net: "udp"}
	pc, err := net.ListenPacket("udp", "127.1.100.3:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Name == "example.com." {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.ParseIP("192.0.2.7")})
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	upstream.PacketConn, upstream.Handler = pc, h
	tcpUp := &dns.Server{Listener: ln, Handler: h}
	go upstream.ActivateAndServe()
	go tcpUp.ActivateAndServe()
	defer upstream.Shutdown()
	defer tcpUp.Shutdown()

	// A dead upstream first: the server must fall through to the next one.
	dead, _ := net.ListenPacket("udp", "127.1.100.3:0")
	deadAddr := dead.LocalAddr().String()
	dead.Close()

	s := start(t, Config{Addr: "127.1.100.4:0", Source: StaticSource(fixture(t)),
		Upstreams: []string{deadAddr, pc.LocalAddr().String()}, ForwardTimeout: time.Second})
	waitReady(t, s)
	for _, netw := range []string{"udp", "tcp"} {
		m := query(t, s.Addr(), netw, "example.com", dns.TypeA)
		if m.Rcode != dns.RcodeSuccess || !eq(aValues(m), []string{"192.0.2.7"}) {
			t.Errorf("%s forwarded example.com: %s %v", netw, dns.RcodeToString[m.Rcode], aValues(m))
		}
		m = query(t, s.Addr(), netw, "nothing.example.org", dns.TypeA)
		if m.Rcode != dns.RcodeNameError {
			t.Errorf("%s forwarded NXDOMAIN: %s", netw, dns.RcodeToString[m.Rcode])
		}
		// The domain itself is never forwarded.
		m = query(t, s.Addr(), netw, "leader.mesos", dns.TypeA)
		if !eq(aValues(m), []string{"127.0.0.1"}) {
			t.Errorf("leader.mesos: %v", aValues(m))
		}
	}

	// Only dead upstreams: SERVFAIL.
	s2 := start(t, Config{Addr: "127.1.100.4:0", Source: StaticSource(fixture(t)), Upstreams: []string{deadAddr}, ForwardTimeout: 500 * time.Millisecond})
	waitReady(t, s2)
	m := query(t, s2.Addr(), "udp", "example.com", dns.TypeA)
	if m.Rcode != dns.RcodeServerFailure {
		t.Errorf("dead upstream: %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
}

func TestRefreshLifecycle(t *testing.T) {
	src := &swappable{}
	src.set(nil, errors.New("master unreachable"))
	s := start(t, Config{Addr: "127.1.100.5:0", Source: src.source, Refresh: 200 * time.Millisecond})

	// Not answering before the first successful load.
	if m, err := tryQuery(s.Addr(), "udp", "leader.mesos", dns.TypeA, 700*time.Millisecond); err == nil {
		t.Fatalf("answered before the first load: %v", m)
	}
	select {
	case <-s.Ready():
		t.Fatal("ready without a load")
	default:
	}
	if err := s.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh with a failing source returned nil")
	}

	doc := fixture(t)
	src.set(doc, nil)
	waitReady(t, s) // picked up by the retry loop
	m := query(t, s.Addr(), "udp", "consul-server-0.consul-fixture.mesos", dns.TypeA)
	if !eq(aValues(m), []string{"127.0.0.21"}) {
		t.Fatalf("after first load: %v", aValues(m))
	}

	// A failed reload (master down, then a non-leading master's state)
	// keeps the previous records.
	src.set(nil, errors.New("connection refused"))
	if err := s.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh error not reported")
	}
	src.set([]byte(`{"leader":"","frameworks":[],"slaves":[]}`), nil)
	if err := s.Refresh(context.Background()); !errors.Is(err, mesosdns.ErrNoLeader) {
		t.Fatalf("Refresh with a leaderless state: %v", err)
	}
	src.set([]byte(`{"leader":"master@127.0.0.1:5050","slaves":[{"id":"x","pid":7}]}`), nil)
	if err := s.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh with a malformed state returned nil")
	}
	m = query(t, s.Addr(), "tcp", "consul-server-0.consul-fixture.mesos", dns.TypeA)
	if !eq(aValues(m), []string{"127.0.0.21"}) {
		t.Fatalf("previous records lost after failed reloads: %v", aValues(m))
	}

	// The task stops running: gone after the next periodic refresh.
	var st map[string]any
	_ = json.Unmarshal(doc, &st)
	fw := st["frameworks"].([]any)[0].(map[string]any)
	tasks := fw["tasks"].([]any)
	tasks[0].(map[string]any)["state"] = "TASK_KILLED"
	changed, _ := json.Marshal(st)
	src.set(changed, nil)
	deadline := time.Now().Add(20 * time.Second)
	for {
		m = query(t, s.Addr(), "udp", "consul-server-0.consul-fixture.mesos", dns.TypeA)
		if m.Rcode == dns.RcodeNameError {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("killed task still served after the refresh interval: %v", aValues(m))
		}
		time.Sleep(50 * time.Millisecond)
	}
	m = query(t, s.Addr(), "udp", "consul-client-0.consul-fixture.mesos", dns.TypeA)
	if !eq(aValues(m), []string{"127.0.0.22"}) {
		t.Fatalf("running task lost: %v", aValues(m))
	}
}

func TestUDPTruncation(t *testing.T) {
	// 60 agents each running a task of the same name: one A record per
	// agent, more than fits in 512 bytes.
	var slaves, tasks []any
	for i := 0; i < 60; i++ {
		id := fmt.Sprintf("a-S%d", i)
		slaves = append(slaves, map[string]any{"id": id, "pid": fmt.Sprintf("slave(1)@10.1.%d.%d:5051", i/200, i%200+1)})
		tasks = append(tasks, map[string]any{"id": fmt.Sprintf("t%d", i), "name": "consul-client", "slave_id": id, "state": "TASK_RUNNING"})
	}
	doc, _ := json.Marshal(map[string]any{"leader": "master@10.0.0.1:5050", "slaves": slaves,
		"frameworks": []any{map[string]any{"name": "consul", "tasks": tasks}}})
	s := start(t, Config{Addr: "127.1.100.6:0", Source: StaticSource(doc)})
	waitReady(t, s)
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion("consul-client.consul.mesos.", dns.TypeA)
	m, _, err := c.Exchange(q, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	m.Compress = true // it came compressed; measure it as sent
	if !m.Truncated || len(m.Answer) >= 60 || m.Len() > 512 {
		t.Errorf("UDP: truncated=%v answers=%d len=%d; want TC and a 512-byte reply", m.Truncated, len(m.Answer), m.Len())
	}
	m = query(t, s.Addr(), "tcp", "consul-client.consul.mesos", dns.TypeA)
	if m.Truncated || len(m.Answer) != 60 {
		t.Errorf("TCP: truncated=%v answers=%d, want all 60", m.Truncated, len(m.Answer))
	}
}

func TestHTTPSourceFollowsLeader(t *testing.T) {
	doc := fixture(t)
	var leaderHits, standbyHits int
	var mu sync.Mutex
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaderHits++
		mu.Unlock()
		if r.URL.Path != "/master/state" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		var st map[string]any
		_ = json.Unmarshal(doc, &st)
		st["leader"] = "master@" + r.Host
		st["marker"] = "from-leader"
		_ = json.NewEncoder(w).Encode(st)
	}))
	defer leader.Close()
	leaderAddr := strings.TrimPrefix(leader.URL, "http://")
	standby := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		standbyHits++
		mu.Unlock()
		// A non-leading master's state names the leader.
		fmt.Fprintf(w, `{"leader":"master@%s","frameworks":[],"slaves":[]}`, leaderAddr)
	}))
	defer standby.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusServiceUnavailable)
	}))
	defer broken.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	src := HTTPSource(nil, deadURL, broken.URL, strings.TrimPrefix(standby.URL, "http://"))
	body, err := src(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "from-leader") {
		t.Fatalf("did not follow the leader: %.200s", body)
	}
	if standbyHits != 1 || leaderHits != 1 {
		t.Errorf("hits standby=%d leader=%d, want 1 and 1", standbyHits, leaderHits)
	}

	// End to end: the server loads through HTTP.
	s := start(t, Config{Addr: "127.1.100.7:0", Source: HTTPSource(nil, leader.URL)})
	waitReady(t, s)
	m := query(t, s.Addr(), "udp", "consul-server-0.consul-fixture.mesos", dns.TypeA)
	if !eq(aValues(m), []string{"127.0.0.21"}) {
		t.Errorf("via HTTP: %v", aValues(m))
	}

	// All masters failing: one error naming each.
	_, err = HTTPSource(nil, deadURL, broken.URL)(context.Background())
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("all masters failing: %v", err)
	}
	if _, err := HTTPSource(nil)(context.Background()); err == nil {
		t.Error("no masters: nil error")
	}
}

func TestNewValidates(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no source":      {Addr: "127.1.100.8:0"},
		"no addr":        {Source: StaticSource(nil)},
		"bad addr":       {Addr: "127.1.100.8", Source: StaticSource(nil)},
		"bad ip sources": {Addr: "127.1.100.8:0", Source: StaticSource(nil), IPSources: []string{"docker", "bogus"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	s, err := New(Config{Addr: "127.1.100.8:0", Source: StaticSource(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(context.Background()); err == nil {
		t.Error("second Start: no error")
	}
	// Same fixed address again: a clear bind error.
	s2, _ := New(Config{Addr: s.Addr(), Source: StaticSource(nil)})
	if err := s2.Start(context.Background()); err == nil {
		s2.Close()
		t.Error("binding a taken address: no error")
	}
}

func TestSystemResolvers(t *testing.T) {
	if _, err := os.Stat("/etc/resolv.conf"); err != nil {
		t.Skip("no /etc/resolv.conf")
	}
	ups, err := SystemResolvers()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range ups {
		if _, _, err := net.SplitHostPort(u); err != nil {
			t.Errorf("resolver %q is not host:port", u)
		}
	}
	t.Logf("system resolvers: %v", ups)
}

// closeWithin fails the test when Close does not return in time (the hang
// this guards against: a dns.Server shut down before ActivateAndServe
// started it, which then served forever).
func closeWithin(t *testing.T, s *Server, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: Close did not return within 30s", what)
	}
}

func TestCloseWhateverTheStartUpState(t *testing.T) {
	doc := fixture(t)
	newServer := func(src Source) *Server {
		s, err := New(Config{Addr: "127.1.100.10:0", Source: src, Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Never started.
	closeWithin(t, newServer(StaticSource(doc)), "never started")

	// Listening, first load still failing.
	s := newServer(func(context.Context) ([]byte, error) { return nil, errors.New("no master") })
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	closeWithin(t, s, "listening, not loaded")

	// The state already loaded, so Start launches the serving goroutines
	// and Close follows at once: many times, to hit the window before
	// ActivateAndServe.
	for i := 0; i < 200; i++ {
		s := newServer(StaticSource(doc))
		if err := s.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		closeWithin(t, s, fmt.Sprintf("just started (round %d)", i))
	}

	// Serving, then the context is cancelled (dev's Ctrl-C) and Close is
	// called as well.
	s = newServer(StaticSource(doc))
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitReady(t, s)
	query(t, s.Addr(), "tcp", "leader.mesos", dns.TypeA)
	cancel()
	closeWithin(t, s, "serving, context cancelled")
	if _, err := tryQuery(s.Addr(), "udp", "leader.mesos", dns.TypeA, 500*time.Millisecond); err == nil {
		t.Fatal("still answering after Close")
	}
}
