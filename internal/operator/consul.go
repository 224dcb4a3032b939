package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// ConsulAPI is what the operator commands ask of a Consul agent's HTTP API
// at addr (host:port, or a URL).
type ConsulAPI interface {
	Members(ctx context.Context, addr string) ([]Member, error)
	// RaftPeers returns the raft configuration; stale: as the agent at
	// addr knows it, without going through the leader.
	RaftPeers(ctx context.Context, addr string, stale bool) ([]Peer, error)
}

// HTTPConsul is ConsulAPI over the Consul HTTP API (consul/api). The
// client honours CONSUL_HTTP_TOKEN and the other CONSUL_HTTP_* TLS
// settings of the environment.
type HTTPConsul struct {
	Timeout time.Duration
	// WAN: Members lists the WAN pool (the servers of every federated
	// datacenter) instead of the LAN pool.
	WAN bool
	// CAPEM, when set, is the CA (PEM) HTTPS addresses are verified
	// against: the service's, read from the scheduler's /v1/tls/ca when
	// its servers serve HTTPS only and CONSUL_CACERT is not set.
	CAPEM string
}

func (h HTTPConsul) client(addr string) (*consulapi.Client, error) {
	cfg := consulapi.DefaultNonPooledConfig() // scheme, token and TLS from CONSUL_HTTP_*
	cfg.Address = addr
	if u, err := url.Parse(addr); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		cfg.Address, cfg.Scheme = u.Host, u.Scheme
	}
	if h.CAPEM != "" && cfg.TLSConfig.CAFile == "" && cfg.TLSConfig.CAPath == "" && len(cfg.TLSConfig.CAPem) == 0 {
		cfg.TLSConfig.CAPem = []byte(h.CAPEM)
	}
	hc, err := consulapi.NewHttpClient(cfg.Transport, cfg.TLSConfig)
	if err != nil {
		return nil, fmt.Errorf("consul client for %s: %w", addr, err)
	}
	hc.Timeout = h.Timeout
	if hc.Timeout == 0 {
		hc.Timeout = 10 * time.Second
	}
	cfg.HttpClient = hc
	return consulapi.NewClient(cfg)
}

// Serf member status codes (serf.MemberStatus, as consul/api documents).
var memberStatus = map[int]string{0: "none", 1: "alive", 2: "leaving", 3: "left", 4: "failed"}

// Members implements ConsulAPI.
func (h HTTPConsul) Members(ctx context.Context, addr string) ([]Member, error) {
	c, err := h.client(addr)
	if err != nil {
		return nil, err
	}
	// consul/api's Members takes no context: wait for it or for ctx (the
	// client's timeout bounds the request left behind).
	type result struct {
		ms  []*consulapi.AgentMember
		err error
	}
	done := make(chan result, 1)
	go func() {
		ms, err := c.Agent().Members(h.WAN)
		done <- result{ms, err}
	}()
	var ms []*consulapi.AgentMember
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-done:
		if r.err != nil {
			return nil, r.err
		}
		ms = r.ms
	}
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		st, ok := memberStatus[m.Status]
		if !ok {
			st = "status-" + strconv.Itoa(m.Status)
		}
		role := m.Tags[consulapi.MemberTagKeyRole]
		switch role {
		case consulapi.MemberTagValueRoleServer:
			role = "server"
		case consulapi.MemberTagValueRoleClient:
			role = "client"
		}
		build, _, _ := strings.Cut(m.Tags["build"], ":")
		out = append(out, Member{Name: m.Name, Address: net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port))), Status: st,
			Role: role, Datacenter: m.Tags[consulapi.MemberTagKeyDatacenter], Build: build})
	}
	return out, nil
}

// RaftPeers implements ConsulAPI.
func (h HTTPConsul) RaftPeers(ctx context.Context, addr string, stale bool) ([]Peer, error) {
	c, err := h.client(addr)
	if err != nil {
		return nil, err
	}
	q := (&consulapi.QueryOptions{AllowStale: stale}).WithContext(ctx)
	conf, err := c.Operator().RaftGetConfiguration(q)
	if err != nil {
		return nil, err
	}
	out := make([]Peer, 0, len(conf.Servers))
	for _, s := range conf.Servers {
		out = append(out, Peer{Node: s.Node, ID: s.ID, Address: s.Address, Leader: s.Leader, Voter: s.Voter})
	}
	return out, nil
}

// consulAddrs are the Consul HTTP addresses to ask: --consul if given, else
// the running servers' HTTP endpoint as the scheduler lists it.
func (c *Commands) consulAddrs(ctx context.Context) ([]string, error) {
	if c.ConsulAddr != "" {
		return []string{c.ConsulAddr}, nil
	}
	_, ep, err := c.endpoint(ctx, "http")
	scheme := ""
	if IsNotFound(err) {
		// With TLS the servers serve HTTPS only.
		_, ep, err = c.endpoint(ctx, "https")
		scheme = "https://"
		if err == nil {
			c.trustServiceCA(ctx)
		}
	}
	if err != nil {
		if IsNotFound(err) {
			return nil, fmt.Errorf("the scheduler lists no Consul HTTP or HTTPS endpoint: pass --consul <host:port>: %w", err)
		}
		return nil, fmt.Errorf("finding a Consul server through the scheduler: %w", err)
	}
	if len(ep.Servers) == 0 {
		return nil, errors.New("no Consul server is running yet (see `plan show deploy` and `pod status`)")
	}
	out := make([]string, 0, len(ep.Servers))
	for _, a := range ep.Servers {
		out = append(out, scheme+a)
	}
	return out, nil
}

// trustServiceCA has HTTPS addresses verified against the service's CA,
// read from the scheduler (GET /v1/tls/ca), unless Consul's own
// CONSUL_CACERT/CONSUL_CAPATH say which CA to trust.
func (c *Commands) trustServiceCA(ctx context.Context) {
	h, ok := c.Consul.(HTTPConsul)
	if !ok || h.CAPEM != "" {
		return
	}
	ca, err := c.Client.GetPEM(ctx, "/v1/tls/ca")
	if err != nil || !strings.Contains(string(ca), "-----BEGIN CERTIFICATE-----") {
		return // the HTTPS calls then fail verification and say so
	}
	h.CAPEM = string(ca)
	c.Consul = h
}

func (c *Commands) noConsul(errs []string) error {
	for _, e := range errs {
		if refused(e) {
			return fmt.Errorf("Consul refused the request (ACLs are on, default deny):\n  %s\n%s", strings.Join(errs, "\n  "), tokenHint)
		}
	}
	return fmt.Errorf("no Consul server answered:\n  %s\nThe servers' HTTP API must be reachable from where this command runs (on DC/OS: from inside the cluster, e.g. on a master); or pass --consul <host:port> of an agent you can reach",
		strings.Join(errs, "\n  "))
}

// Members shows Consul's LAN members, asked of a Consul server: servers
// first, then clients, by name.
func (c *Commands) Members(ctx context.Context) error {
	addrs, err := c.consulAddrs(ctx)
	if err != nil {
		return err
	}
	var errs []string
	for _, a := range addrs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ms, err := c.Consul.Members(ctx, a)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", a, err))
			continue
		}
		sort.SliceStable(ms, func(i, j int) bool {
			if (ms[i].Role == "server") != (ms[j].Role == "server") {
				return ms[i].Role == "server"
			}
			return ms[i].Name < ms[j].Name
		})
		if c.JSON {
			return c.writeJSON(ms)
		}
		RenderMembers(c.Out, ms)
		return nil
	}
	return c.noConsul(errs)
}

// RaftPeers shows the raft configuration through the leader; when no
// server can reach a leader, it shows a server's own (stale) view and says
// so.
func (c *Commands) RaftPeers(ctx context.Context) error {
	addrs, err := c.consulAddrs(ctx)
	if err != nil {
		return err
	}
	var errs []string
	for _, stale := range []bool{false, true} {
		for _, a := range addrs {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			ps, err := c.Consul.RaftPeers(ctx, a, stale)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", a, err))
				continue
			}
			if stale {
				fmt.Fprintf(c.warn(), "warning: no server answered through a raft leader; this is %s's own view, which may be stale:\n  %s\n", a, strings.Join(errs, "\n  "))
			}
			sort.SliceStable(ps, func(i, j int) bool { return ps[i].Node < ps[j].Node })
			if c.JSON {
				return c.writeJSON(ps)
			}
			RenderPeers(c.Out, ps)
			return nil
		}
	}
	return c.noConsul(errs)
}

func (c *Commands) warn() io.Writer {
	if c.Err != nil {
		return c.Err
	}
	return c.Out
}
