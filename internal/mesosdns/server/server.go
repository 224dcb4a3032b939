// Package server is a DNS server that answers as Mesos-DNS does
// (mesosphere/mesos-dns @ e888ef40, resolver/resolver.go) from a Mesos
// master's state document: it reloads the state every refresh interval,
// builds the records with mesosdns.Generate, serves them over UDP and TCP,
// and forwards names outside its domain to upstream resolvers.
//
// Like Mesos-DNS it answers only after the first successful load, and a
// failed reload keeps the previous records.
package server

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/mesosdns"
)

// Source returns a master state document (the body of GET /master/state).
type Source func(ctx context.Context) ([]byte, error)

// Defaults of Mesos-DNS (records/config.go) and DC/OS.
const (
	DefaultTTL            = 60 * time.Second
	DefaultRefresh        = 60 * time.Second // Mesos-DNS's refreshSeconds
	DCOSRefresh           = 30 * time.Second // DC/OS's setting
	DefaultForwardTimeout = 5 * time.Second
	soaRefresh            = 60
	soaRetry              = 600
	soaExpire             = 86400
)

// Config configures a Server.
type Config struct {
	// Addr is the host:port to listen on, UDP and TCP. Port 0 picks a free
	// port (the same for both).
	Addr string
	// Domain is the zone served, default "mesos".
	Domain string
	// Refresh is the reload interval, default 60 s (DC/OS uses 30 s).
	Refresh time.Duration
	// TTL of every record, default 60 s; also the SOA minimum.
	TTL time.Duration
	// Upstreams are resolvers (ip or ip:port, port 53 by default) for
	// names outside Domain, tried in order. None: such queries are REFUSED.
	Upstreams []string
	// ForwardTimeout bounds one exchange with an upstream, default 5 s.
	ForwardTimeout time.Duration
	// Source gives the state document. Required.
	Source Source
	// IPSources is the task IP source order; nil means DC/OS's host, netinfo.
	IPSources []string
	// Masters are the configured masters (host:port), for masterN records.
	Masters []string
	// EnforceRFC952 uses Mesos-DNS's RFC 952 labels (24 characters, no
	// leading digit) instead of the default RFC 1123 ones.
	EnforceRFC952 bool
	// SOAMname and SOARname, default ns1.<domain>. and root.ns1.<domain>.
	SOAMname, SOARname string
	Logger             *zap.Logger
}

// Server is a Mesos-DNS compatible DNS server.
type Server struct {
	cfg    Config
	zone   string // "mesos."
	ttl    uint32
	log    *zap.Logger
	fwdTTL time.Duration

	pc net.PacketConn
	ln net.Listener

	recs   atomic.Pointer[mesosdns.Records]
	serial atomic.Uint32

	refreshMu sync.Mutex
	ready     chan struct{}
	readyOnce sync.Once

	rngMu sync.Mutex
	rng   *rand.Rand

	startOnce sync.Once
	closeOnce sync.Once
	stop      chan struct{}
	wg        sync.WaitGroup
	srvMu     sync.Mutex // guards pc, ln, running
	running   []*running
}

// running is one dns.Server being served. Shutdown only stops a server
// that ActivateAndServe has already marked started (before that it returns
// "server not started" and does nothing), so Close waits for started (or
// for the goroutine to end) before shutting it down.
type running struct {
	srv     *dns.Server
	started chan struct{} // closed by NotifyStartedFunc
	done    chan struct{} // closed when ActivateAndServe returned
}

// shutdownWait bounds how long Close waits for in-flight TCP queries.
const shutdownWait = 5 * time.Second

// New validates cfg and returns a server that is not yet listening.
func New(cfg Config) (*Server, error) {
	if cfg.Source == nil {
		return nil, errors.New("mesos-dns server: Config.Source is required")
	}
	if cfg.Addr == "" {
		return nil, errors.New("mesos-dns server: Config.Addr is required")
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("mesos-dns server: Addr %q: %w", cfg.Addr, err)
	}
	if err := mesosdns.ValidateIPSources(cfg.IPSources); err != nil {
		return nil, fmt.Errorf("mesos-dns server: %w", err)
	}
	cfg.Domain = mesosdns.NormalizeDomain(cfg.Domain)
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.ForwardTimeout <= 0 {
		cfg.ForwardTimeout = DefaultForwardTimeout
	}
	if cfg.SOAMname == "" {
		cfg.SOAMname = "ns1." + cfg.Domain
	}
	if cfg.SOARname == "" {
		cfg.SOARname = "root.ns1." + cfg.Domain
	}
	cfg.SOAMname = dns.Fqdn(strings.ToLower(cfg.SOAMname))
	cfg.SOARname = dns.Fqdn(strings.ReplaceAll(strings.ToLower(cfg.SOARname), "@", "."))
	ups := make([]string, 0, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		if _, _, err := net.SplitHostPort(u); err != nil {
			u = net.JoinHostPort(u, "53")
		}
		ups = append(ups, u)
	}
	cfg.Upstreams = ups
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Server{
		cfg:   cfg,
		zone:  cfg.Domain + ".",
		ttl:   uint32(cfg.TTL / time.Second),
		log:   cfg.Logger.With(zap.String("component", "mesos-dns"), zap.String("domain", cfg.Domain)),
		ready: make(chan struct{}),
		rng:   rand.New(rand.NewSource(time.Now().UnixNano())),
		stop:  make(chan struct{}),
	}, nil
}

// Start binds the UDP and TCP listeners and starts reloading the state:
// the first load is retried until it succeeds, and only then are queries
// answered (until then they wait in the socket queues). The server runs
// until ctx is done or Close is called.
func (s *Server) Start(ctx context.Context) error {
	err := errors.New("mesos-dns server: already started")
	s.startOnce.Do(func() { err = s.start(ctx) })
	return err
}

func (s *Server) start(ctx context.Context) error {
	if err := s.listen(); err != nil {
		return err
	}
	s.serve() // when Refresh already loaded the state
	s.log.Info("mesos-dns listening",
		zap.String("addr", s.Addr()), zap.Duration("refresh", s.cfg.Refresh), zap.Uint32("ttl", s.ttl))
	s.wg.Add(1)
	go s.loop(ctx)
	return nil
}

func (s *Server) listen() error {
	host, port, _ := net.SplitHostPort(s.cfg.Addr)
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, port))
		if err != nil {
			return fmt.Errorf("mesos-dns server: listen udp %s: %w", s.cfg.Addr, err)
		}
		p := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
		ln, err := net.Listen("tcp", net.JoinHostPort(host, p))
		if err != nil {
			pc.Close()
			lastErr = err
			if port == "0" {
				continue // the TCP side of a random port was taken: pick another
			}
			return fmt.Errorf("mesos-dns server: listen tcp %s: %w", s.cfg.Addr, err)
		}
		s.srvMu.Lock()
		s.pc, s.ln = pc, ln
		s.srvMu.Unlock()
		return nil
	}
	return fmt.Errorf("mesos-dns server: no port free for both udp and tcp on %s: %w", host, lastErr)
}

// Addr is the address listened on (UDP and TCP), once started.
func (s *Server) Addr() string {
	s.srvMu.Lock()
	pc := s.pc
	s.srvMu.Unlock()
	if pc == nil {
		return ""
	}
	return pc.LocalAddr().String()
}

// Ready is closed after the first successful load, when queries are answered.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Records is the record set being served (nil before the first load). It
// must not be modified.
func (s *Server) Records() *mesosdns.Records { return s.recs.Load() }

func (s *Server) loop(ctx context.Context) {
	defer s.wg.Done()
	// Until the first success, retry sooner than the refresh interval.
	retry := min(s.cfg.Refresh, 2*time.Second)
	for {
		err := s.Refresh(ctx)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			go s.Close() // Close waits for this goroutine
			return
		case <-s.stop:
			return
		case <-time.After(retry):
		}
	}
	t := time.NewTicker(s.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			go s.Close() // Close waits for this goroutine
			return
		case <-s.stop:
			return
		case <-t.C:
			_ = s.Refresh(ctx) // logged; previous records kept
		}
	}
}

// Refresh loads the state now and replaces the records. On failure the
// previous records stay and the error is returned.
func (s *Server) Refresh(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, max(s.cfg.Refresh, 10*time.Second))
	defer cancel()
	body, err := s.cfg.Source(ctx)
	if err != nil {
		s.log.Warn("mesos-dns state load failed; keeping the previous records", zap.Error(err))
		return fmt.Errorf("load master state: %w", err)
	}
	st, err := mesosdns.ParseState(body)
	if err != nil {
		s.log.Warn("mesos-dns state rejected; keeping the previous records", zap.Error(err))
		return err
	}
	label := mesosdns.RFC1123
	if s.cfg.EnforceRFC952 {
		label = mesosdns.RFC952
	}
	recs := mesosdns.Generate(st, mesosdns.Options{
		Label:       label,
		Domain:      s.cfg.Domain,
		IPSources:   s.cfg.IPSources,
		Masters:     s.cfg.Masters,
		NS:          s.cfg.SOAMname,
		ListenerIPs: s.listenerIPs(),
		Resolve: func(host string) []net.IP {
			lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			ips, err := net.DefaultResolver.LookupIP(lctx, "ip", host)
			if err != nil {
				s.log.Debug("mesos-dns cannot resolve host", zap.String("host", host), zap.Error(err))
			}
			return ips
		},
	})
	s.recs.Store(recs)
	s.serial.Store(uint32(time.Now().Unix()))
	first := false
	s.readyOnce.Do(func() {
		first = true
		close(s.ready)
	})
	s.serve()
	s.log.Debug("mesos-dns records reloaded", zap.Int("names", recs.Names()), zap.String("leader", st.Leader))
	if first {
		s.log.Info("mesos-dns first state loaded; answering queries", zap.Int("names", recs.Names()), zap.String("leader", st.Leader))
	}
	return nil
}

// listenerIPs are the addresses of ns1.<domain>: the listen address, or
// every non-loopback interface address when listening on all.
func (s *Server) listenerIPs() []net.IP {
	s.srvMu.Lock()
	pc := s.pc
	s.srvMu.Unlock()
	if pc == nil {
		return nil
	}
	ip := pc.LocalAddr().(*net.UDPAddr).IP
	if !ip.IsUnspecified() {
		return []net.IP{ip}
	}
	var out []net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() {
			out = append(out, n.IP)
		}
	}
	return out
}

// serve starts answering, once: after the first load and once listening.
func (s *Server) serve() {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.pc == nil || s.running != nil || s.recs.Load() == nil {
		return
	}
	select {
	case <-s.stop:
		return
	default:
	}
	h := dns.HandlerFunc(s.handle)
	for _, srv := range []*dns.Server{{PacketConn: s.pc, Handler: h}, {Listener: s.ln, Handler: h}} {
		r := &running{srv: srv, started: make(chan struct{}), done: make(chan struct{})}
		srv.NotifyStartedFunc = func() { close(r.started) }
		s.running = append(s.running, r)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(r.done)
			if err := srv.ActivateAndServe(); err != nil {
				select {
				case <-s.stop:
				default:
					s.log.Error("mesos-dns server stopped", zap.Error(err))
				}
			}
		}()
	}
}

// Close stops the server and waits for it, whatever the start-up state:
// before listening, listening but not yet serving, serving, or with a
// serving goroutine that has not yet reached ActivateAndServe.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.srvMu.Lock()
		close(s.stop) // serve starts nothing after this
		running, pc, ln := s.running, s.pc, s.ln
		s.srvMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
		defer cancel()
		for _, r := range running {
			select {
			case <-r.started:
				_ = r.srv.ShutdownContext(ctx)
			case <-r.done: // ActivateAndServe failed before starting
			}
		}
		// Closing the sockets ends a server that Shutdown gave up waiting
		// for; without one started they are ours to close.
		if pc != nil {
			pc.Close()
			ln.Close()
		}
		s.wg.Wait()
	})
	return nil
}

// handle is the query handler: the domain is answered from the records,
// everything else is forwarded.
func (s *Server) handle(w dns.ResponseWriter, r *dns.Msg) {
	defer func() {
		if rec := recover(); rec != nil {
			s.log.Error("mesos-dns handler panic", zap.Any("panic", rec))
			m := new(dns.Msg)
			m.SetRcode(r, dns.RcodeServerFailure)
			_ = w.WriteMsg(m)
		}
	}()
	if len(r.Question) != 1 || r.Opcode != dns.OpcodeQuery {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeFormatError)
		if r.Opcode != dns.OpcodeQuery {
			m.Rcode = dns.RcodeNotImplemented
		}
		reply(w, r, m)
		return
	}
	name := strings.ToLower(strings.ReplaceAll(r.Question[0].Name, ".*", ""))
	if dns.IsSubDomain(s.zone, name) {
		reply(w, r, s.answer(r, name))
		return
	}
	reply(w, r, s.forward(w, r))
}

// answer builds the reply for a name in the domain, as Mesos-DNS's
// HandleMesos: A, AAAA, SRV (with the targets' addresses as extras), SOA and
// NS in the authority section; NXDOMAIN with the SOA for an unknown name and
// NOERROR/NODATA with the SOA for a known name of another type; an SRV, SOA
// or NS question without answers is a bare NOERROR.
func (s *Server) answer(r *dns.Msg, name string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = false
	recs := s.recs.Load()
	q := r.Question[0]
	switch q.Qtype {
	case dns.TypeSRV:
		s.addSRV(m, recs, q.Name, name)
	case dns.TypeA:
		s.addA(m, recs, name)
	case dns.TypeAAAA:
		s.addAAAA(m, recs, name)
	case dns.TypeSOA:
		m.Ns = append(m.Ns, s.soa(q.Name))
	case dns.TypeNS:
		m.Ns = append(m.Ns, s.ns(q.Name))
	case dns.TypeANY:
		s.addSRV(m, recs, q.Name, name)
		s.addA(m, recs, name)
		s.addAAAA(m, recs, name)
		m.Ns = append(m.Ns, s.soa(q.Name), s.ns(q.Name))
	}
	if len(m.Answer) > 0 {
		s.rngMu.Lock()
		s.rng.Shuffle(len(m.Answer), func(i, j int) { m.Answer[i], m.Answer[j] = m.Answer[j], m.Answer[i] })
		s.rngMu.Unlock()
		return m
	}
	switch q.Qtype {
	case dns.TypeSOA, dns.TypeNS, dns.TypeSRV:
		return m
	}
	m.Rcode = dns.RcodeNameError
	if recs.Known(name) {
		m.Rcode = dns.RcodeSuccess
	}
	m.Ns = append(m.Ns, s.soa(q.Name))
	return m
}

func (s *Server) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: s.ttl}
}

func (s *Server) addA(m *dns.Msg, recs *mesosdns.Records, name string) {
	for _, ip := range recs.A[name] {
		m.Answer = append(m.Answer, &dns.A{Hdr: s.hdr(name, dns.TypeA), A: ip})
	}
}

func (s *Server) addAAAA(m *dns.Msg, recs *mesosdns.Records, name string) {
	for _, ip := range recs.AAAA[name] {
		m.Answer = append(m.Answer, &dns.AAAA{Hdr: s.hdr(name, dns.TypeAAAA), AAAA: ip})
	}
}

func (s *Server) addSRV(m *dns.Msg, recs *mesosdns.Records, qname, name string) {
	added := map[string]bool{}
	for _, srv := range recs.SRV[name] {
		m.Answer = append(m.Answer, &dns.SRV{Hdr: s.hdr(qname, dns.TypeSRV), Priority: 0, Weight: 1, Port: srv.Port, Target: srv.Target})
		if added[srv.Target] {
			continue
		}
		added[srv.Target] = true
		if a := recs.A[srv.Target]; len(a) > 0 {
			m.Extra = append(m.Extra, &dns.A{Hdr: s.hdr(srv.Target, dns.TypeA), A: a[0]})
		}
		if a := recs.AAAA[srv.Target]; len(a) > 0 {
			m.Extra = append(m.Extra, &dns.AAAA{Hdr: s.hdr(srv.Target, dns.TypeAAAA), AAAA: a[0]})
		}
	}
}

// soa is Mesos-DNS's SOA: owner is the question name, serial the time of
// the last reload, minimum the TTL.
func (s *Server) soa(owner string) *dns.SOA {
	return &dns.SOA{
		Hdr: s.hdr(owner, dns.TypeSOA), Ns: s.cfg.SOAMname, Mbox: s.cfg.SOARname,
		Serial: s.serial.Load(), Refresh: soaRefresh, Retry: soaRetry, Expire: soaExpire, Minttl: s.ttl,
	}
}

func (s *Server) ns(owner string) *dns.NS {
	return &dns.NS{Hdr: s.hdr(owner, dns.TypeNS), Ns: s.cfg.SOAMname}
}

// forward sends a query outside the domain to the upstreams in order,
// over the client's transport; REFUSED without upstreams, SERVFAIL when
// none answers.
func (s *Server) forward(w dns.ResponseWriter, r *dns.Msg) *dns.Msg {
	if len(s.cfg.Upstreams) == 0 {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeRefused)
		return m
	}
	proto := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		proto = "tcp"
	}
	c := &dns.Client{Net: proto, Timeout: s.cfg.ForwardTimeout}
	var lastErr error
	for _, up := range s.cfg.Upstreams {
		in, _, err := c.Exchange(r, up)
		if err == nil && in != nil {
			return in
		}
		lastErr = err
	}
	s.log.Debug("mesos-dns forward failed", zap.String("name", r.Question[0].Name), zap.Strings("upstreams", s.cfg.Upstreams), zap.Error(lastErr))
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeServerFailure)
	return m
}

// reply compresses m and, over UDP, truncates it to what the client
// accepts (512 bytes, or its EDNS0 size), setting TC.
func reply(w dns.ResponseWriter, r, m *dns.Msg) {
	m.Compress = true
	if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
		size := dns.MinMsgSize
		if o := r.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// SystemResolvers returns the name servers of /etc/resolv.conf (ip:port),
// for Config.Upstreams when the server should forward like the host does.
// Loopback resolvers are left out unless they are all there is, since the
// server itself may be one of them.
func SystemResolvers() ([]string, error) {
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil, fmt.Errorf("read /etc/resolv.conf: %w", err)
	}
	var out, loop []string
	for _, s := range cc.Servers {
		addr := net.JoinHostPort(s, cc.Port)
		if ip := net.ParseIP(s); ip != nil && ip.IsLoopback() {
			loop = append(loop, addr)
			continue
		}
		out = append(out, addr)
	}
	if len(out) == 0 {
		out = loop
	}
	return out, nil
}
