package scheduler

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/consulclient"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
	"github.com/dcos-consul/dcos-consul/scheduler/reconcile"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// serverCert is what a running server presents, as the renewal decides on.
type serverCert struct {
	Name                string
	NotBefore, NotAfter time.Time
}

// renewalPick is the certificate renewal decision (pure): the server whose
// certificate is due (pki.RenewalDue) and expires first, restarted only
// when every one of the want servers runs, answered with its certificate,
// and autopilot calls the raft cluster healthy; one at a time, since the
// restarted server must be back and healthy before the next check passes.
// "" with why when nothing is to be done now.
func renewalPick(now time.Time, want int, running int, certs []serverCert, health *reconcile.RaftHealth) (name, why string) {
	var due []serverCert
	for _, c := range certs {
		if pki.RenewalDue(c.NotBefore, c.NotAfter, now) {
			due = append(due, c)
		}
	}
	if len(due) == 0 {
		return "", "no server certificate is due"
	}
	sort.Slice(due, func(i, j int) bool { return due[i].NotAfter.Before(due[j].NotAfter) })
	switch {
	case running < want || len(certs) < want:
		return "", fmt.Sprintf("%s's certificate is due, waiting for all %d servers to run and answer (%d do)", due[0].Name, want, len(certs))
	case health == nil || !health.Healthy:
		return "", fmt.Sprintf("%s's certificate is due, waiting for a healthy raft cluster", due[0].Name)
	}
	return due[0].Name, fmt.Sprintf("its certificate expires at %s (less than a third of its lifetime left)", due[0].NotAfter.UTC().Format(time.RFC3339))
}

// renewCheckEvery is how often the renewal looks: a twentieth of the
// lifetime, between 10 s and an hour.
func renewCheckEvery(lifetime time.Duration) time.Duration {
	if lifetime <= 0 {
		lifetime = pki.ServerLifetime
	}
	d := lifetime / 20
	if d < 10*time.Second {
		d = 10 * time.Second
	}
	if d > time.Hour {
		d = time.Hour
	}
	return d
}

// certRenewLoop renews the servers' TLS certificates before they expire:
// a server gets a new certificate at each launch, so a server whose
// certificate is due is restarted (pod restart), one at a time, only while
// the cluster is healthy.
func (s *Scheduler) certRenewLoop(ctx context.Context) {
	if !s.Snapshot().Target.TLS || s.cfg.Uninstall {
		return
	}
	every := renewCheckEvery(s.cfg.TLSServerCertLifetime)
	var lastWhy string
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		name, why := s.renewalCheck(ctx)
		if name == "" {
			if why != lastWhy && !strings.HasPrefix(why, "no server") {
				s.log.Info("TLS certificate renewal waits", zap.String("why", why))
			}
			lastWhy = why
			continue
		}
		lastWhy = ""
		s.log.Info("renewing a Consul server's TLS certificate: restarting it (it gets a new certificate at launch)",
			zap.String("server", name), zap.String("why", why))
		if _, err := s.Restart(ctx, name); err != nil {
			s.log.Warn("TLS certificate renewal: the restart was refused; retrying later", zap.String("server", name), zap.Error(err))
		}
	}
}

// renewalCheck reads the running servers' certificates and health and
// decides.
func (s *Scheduler) renewalCheck(ctx context.Context) (string, string) {
	v := s.Snapshot()
	var certs []serverCert
	var addrs []string
	running := 0
	for i := 0; i < v.Target.Servers; i++ {
		name := state.ServerName(i)
		var t *state.Task
		for j := range v.Tasks {
			if v.Tasks[j].Name == name {
				t = &v.Tasks[j]
			}
		}
		if t == nil || !t.Running() || t.Role != taskspec.RoleServer || (t.Healthy != nil && !*t.Healthy) {
			continue
		}
		running++
		addr, ok := consulclient.Addr(t.IP, t.Ports)
		if !ok || !strings.HasPrefix(addr, "https://") {
			continue
		}
		addrs = append(addrs, addr)
		c, err := presentedCert(ctx, strings.TrimPrefix(addr, "https://"))
		if err != nil {
			continue
		}
		c.Name = name
		certs = append(certs, c)
	}
	var health *reconcile.RaftHealth
	if len(addrs) > 0 {
		hctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		h, err := s.consul.RaftHealth(hctx, addrs)
		cancel()
		if err == nil {
			health = h
		}
	}
	return renewalPick(time.Now(), v.Target.Servers, running, certs, health)
}

// presentedCert is the validity of the certificate the server at hostPort
// presents, verified against the service's CA.
func presentedCert(ctx context.Context, hostPort string) (serverCert, error) {
	cfg := consulclient.TLSConfig()
	if cfg == nil {
		return serverCert{}, consulclient.ErrNoCA
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", hostPort)
	if err != nil {
		return serverCert{}, err
	}
	defer conn.Close()
	peers := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(peers) == 0 {
		return serverCert{}, errors.New("no certificate presented")
	}
	return serverCert{NotBefore: peers[0].NotBefore, NotAfter: peers[0].NotAfter}, nil
}
