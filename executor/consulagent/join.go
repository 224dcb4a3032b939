package consulagent

import (
	"context"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/serf/serf"
	"go.uber.org/zap"
)

// Why the agent joins by itself instead of using Consul's retry_join:
// memberlist resolves retry_join host names with the system resolver only
// (a TCP query to the first nameserver of /etc/resolv.conf, then
// net.LookupIP), so names served by another DNS server (the simulator's
// Mesos-DNS in dev) would never resolve; and retry_join stops after its
// first successful join, so two groups of servers that each found one peer
// first would stay apart forever. The joiner re-resolves the names on every
// round and keeps joining until every target is an alive LAN member.

// Resolver is the part of net.Resolver the joiner uses.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// NewResolver returns a resolver that sends every query to dnsServer
// (ip:port; port 53 when only an address is given), or the system
// resolver when dnsServer is empty.
func NewResolver(dnsServer string) Resolver {
	if dnsServer == "" {
		return net.DefaultResolver
	}
	if _, _, err := net.SplitHostPort(dnsServer); err != nil {
		dnsServer = net.JoinHostPort(dnsServer, "53")
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, dnsServer)
		},
	}
}

// resolveTargets returns the ip:port join addresses of t, sorted and
// without duplicates, and the names that did not resolve with why.
func resolveTargets(ctx context.Context, r Resolver, t JoinTargets) (addrs []string, failed map[string]error) {
	set := map[string]bool{}
	for _, a := range t.Addrs {
		if host, port, err := net.SplitHostPort(a); err == nil {
			set[net.JoinHostPort(host, port)] = true
		} else {
			set[net.JoinHostPort(a, strconv.Itoa(t.Port))] = true
		}
	}
	for _, name := range t.DNSNames {
		host, port := name, strconv.Itoa(t.Port)
		if h, p, err := net.SplitHostPort(name); err == nil {
			host, port = h, p
		}
		if ip := net.ParseIP(host); ip != nil {
			set[net.JoinHostPort(ip.String(), port)] = true
			continue
		}
		// Absolute name: no search-domain expansion of Mesos-DNS names.
		fqdn := host
		if !strings.HasSuffix(fqdn, ".") {
			fqdn += "."
		}
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ips, err := r.LookupIPAddr(lctx, fqdn)
		cancel()
		if err != nil {
			if failed == nil {
				failed = map[string]error{}
			}
			failed[name] = err
			continue
		}
		for _, ip := range ips {
			if ip.IP.To4() == nil && ip.IP.To16() == nil {
				continue
			}
			set[net.JoinHostPort(ip.IP.String(), port)] = true
		}
	}
	for a := range set {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	return addrs, failed
}

// missingTargets are the targets that are neither this agent nor an alive
// member of its LAN pool.
func missingTargets(targets []string, self string, alive map[string]bool) []string {
	var out []string
	for _, t := range targets {
		if t == self || alive[t] {
			continue
		}
		out = append(out, t)
	}
	return out
}

// Why the agent joins once more, reannounceAfter after its first join:
// serf (v0.10.1, as in Consul 1.16) can leave a member that left and came
// back "leaving" for ever in the view of one node (Consul issues 6882 and
// 13379). A push-pull from a peer that still lists the old instance as
// left hands a leave intent at that peer's status time + 1; the new
// instance's join intent carries its Lamport clock, which can be no newer
// (after a quiet leave it is that same time, and peers that list the
// member as left push each other's time up by one at every push-pull), so
// a node that hears the leave first (one that just started, such as a
// server restarted in place) marks the member leaving and then ignores the
// join as not newer; nothing later moves it. A second join, once every
// peer has seen the member back, broadcasts a join intent newer than any
// such leave, and every node takes the member as alive again.
// Seen in a dev TLS rollout: a server restarted 0.9 s after a client
// rejoined never listed that client alive.
const reannounceAfter = 10 * time.Second

// reannounceWait says whether the repeated join is due at now, and when it
// is not, how long until it is (0: never, it is done or the agent has not
// joined yet). joinedAt is when the agent first saw another alive member.
func reannounceWait(joinedAt, now time.Time, done bool) (bool, time.Duration) {
	if done || joinedAt.IsZero() {
		return false, 0
	}
	if left := joinedAt.Add(reannounceAfter).Sub(now); left > 0 {
		return false, left
	}
	return true, 0
}

// reannounceTarget is the address the repeated join goes to: the first
// join target that is an alive member, else the lowest alive member's
// address, never the agent itself; "" when it is alone.
func reannounceTarget(targets []string, self string, alive map[string]bool) string {
	for _, t := range targets {
		if t != self && alive[t] {
			return t
		}
	}
	var others []string
	for addr, ok := range alive {
		if ok && addr != self {
			others = append(others, addr)
		}
	}
	sort.Strings(others)
	if len(others) == 0 {
		return ""
	}
	return others[0]
}

// reannounce joins target once more in pool ("LAN" or "WAN") with join
// (see reannounceAfter) and reports whether it is done: an error leaves
// it for the next round.
func (a *Agent) reannounce(pool string, join func(addr string) error, target string) bool {
	if target == "" {
		return false
	}
	if err := join(target); err != nil {
		a.log.Info("repeated "+pool+" join failed, will retry", zap.String("address", target), zap.Error(err))
		return false
	}
	a.log.Info("joined the "+pool+" pool once more, so that no member keeps a stale leave of this agent",
		zap.String("address", target), zap.Duration("after_first_join", reannounceAfter))
	return true
}

// joinLAN and joinWAN join one address, for reannounce.
func (a *Agent) joinLAN(addr string) error {
	_, err := a.agent.JoinLAN([]string{addr}, nil)
	return err
}

func (a *Agent) joinWAN(addr string) error {
	_, err := a.agent.JoinWAN([]string{addr})
	return err
}

// joinLoop joins the LAN pool until ctx ends: quickly while the agent is
// alone, slowly while some targets are still missing, and it keeps
// re-resolving names so that Mesos-DNS's refresh delay only ever adds
// targets, never blocks on them. Once, reannounceAfter after its first
// join, it joins again (see reannounceAfter).
func (a *Agent) joinLoop(ctx context.Context, r Resolver) {
	const (
		fast = 1 * time.Second
		slow = 10 * time.Second
	)
	lastResolved := "\x00" // log the first round, even when it finds nothing
	var joinedAt time.Time
	reannounced := false
	for {
		addrs, failed := resolveTargets(ctx, r, a.joinTargets())
		if ctx.Err() != nil {
			return
		}
		if s := strings.Join(addrs, ","); s != lastResolved {
			lastResolved = s
			var unresolved []string
			for name := range failed {
				unresolved = append(unresolved, name)
			}
			sort.Strings(unresolved)
			a.log.Info("join targets", zap.Strings("addresses", addrs), zap.Strings("unresolved_names", unresolved))
		}
		for name, err := range failed {
			a.log.Debug("join target name does not resolve (yet)", zap.String("name", name), zap.Error(err))
		}
		alive, others := a.aliveMembers()
		missing := missingTargets(addrs, a.selfLAN, alive)
		if len(missing) > 0 {
			a.joinEach(missing)
			alive, others = a.aliveMembers()
			missing = missingTargets(addrs, a.selfLAN, alive)
		}
		if others > 0 && joinedAt.IsZero() {
			joinedAt = time.Now()
		}
		due, left := reannounceWait(joinedAt, time.Now(), reannounced)
		if due {
			reannounced = a.reannounce("LAN", a.joinLAN, reannounceTarget(addrs, a.selfLAN, alive))
		}
		wait := slow
		if others == 0 {
			wait = fast
		} else if len(missing) == 0 && len(failed) == 0 {
			wait = 3 * slow
		}
		if left > 0 && left < wait {
			wait = left
		}
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-time.After(wait):
		}
	}
}

// joinEach joins every address on its own, concurrently: one unreachable
// address (memberlist waits up to its TCP timeout) must not hold up the
// others.
func (a *Agent) joinEach(addrs []string) {
	var wg sync.WaitGroup
	for _, addr := range addrs {
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			if err := a.joinLAN(addr); err != nil {
				a.log.Debug("join failed, will retry", zap.String("address", addr), zap.Error(err))
			}
		}(addr)
	}
	wg.Wait()
}

// wanJoinLoop joins the WAN pool of other datacenters' servers (a server
// whose spec has WANJoin) until ctx ends: each round re-resolves the names
// and joins every target that is not an alive WAN member, every 5 s while
// some are missing, every 30 s once all are there. Like the LAN join, it
// joins once more reannounceAfter after its first join: the WAN pool is
// serf too, and a server replaced under the same name (it left the WAN
// pool, its successor joins it) can be held "leaving" by a server of the
// other datacenter that starts at that moment.
func (a *Agent) wanJoinLoop(ctx context.Context, r Resolver) {
	t := JoinTargets{DNSNames: a.spec.WANJoin, Port: a.spec.Ports.SerfWAN}
	selfWAN := net.JoinHostPort(net.ParseIP(a.env.BindIP).String(), strconv.Itoa(a.spec.Ports.SerfWAN))
	lastResolved := "\x00"
	var joinedAt time.Time
	reannounced := false
	for {
		addrs, failed := resolveTargets(ctx, r, t)
		if ctx.Err() != nil {
			return
		}
		if s := strings.Join(addrs, ","); s != lastResolved {
			lastResolved = s
			a.log.Info("WAN join targets", zap.Strings("addresses", addrs), zap.Int("unresolved_names", len(failed)))
		}
		alive := map[string]bool{}
		for _, m := range a.agent.WANMembers() {
			if m.Status == serf.StatusAlive {
				alive[net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port)))] = true
			}
		}
		missing := missingTargets(addrs, selfWAN, alive)
		for _, addr := range missing {
			if err := a.joinWAN(addr); err != nil {
				a.log.Debug("WAN join failed, will retry", zap.String("address", addr), zap.Error(err))
			} else {
				a.log.Info("joined the WAN pool", zap.String("address", addr))
			}
		}
		if joinedAt.IsZero() && a.otherWANMember(selfWAN) {
			joinedAt = time.Now()
		}
		due, left := reannounceWait(joinedAt, time.Now(), reannounced)
		if due {
			reannounced = a.reannounce("WAN", a.joinWAN, reannounceTarget(addrs, selfWAN, alive))
		}
		wait := 30 * time.Second
		if len(missing) > 0 || len(failed) > 0 || len(addrs) == 0 {
			wait = 5 * time.Second
		}
		if left > 0 && left < wait {
			wait = left
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// otherWANMember says whether the WAN pool has an alive member besides
// this server (selfWAN): from then on, others have seen it.
func (a *Agent) otherWANMember(selfWAN string) bool {
	for _, m := range a.agent.WANMembers() {
		if m.Status == serf.StatusAlive && net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port))) != selfWAN {
			return true
		}
	}
	return false
}
