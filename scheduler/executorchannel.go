package scheduler

// The executor channel (docs/security.md "The path from scheduler to
// executor"): every /v1/executor/ route (secrets, secrets copy, TLS
// renewal reports, snapshot copies) is served on a TLS listener of its
// own, with a certificate the scheduler issues in memory from the
// service's CA for the address executors dial. Task specs and MESSAGEs
// carry that https URL and the CA certificate; the executor trusts that
// CA only. The plain API answers executor routes only for incarnations
// launched before this channel existed (state.Task.ExecutorTLS false),
// so tasks running across an upgrade keep working, and refuses every
// other request there: secrets never cross plain HTTP for a new task.

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
	"github.com/dcos-consul/dcos-consul/scheduler/secrets"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// ExecutorRoutes is the prefix of every route the executor channel serves.
const ExecutorRoutes = "/v1/executor/"

// executorListen opens the executor channel's listener on cfg.ExecutorPort
// (0: any free port), where the API listens: the API listener's own
// address when it is bound to one (dev, tests), else cfg.APIHost, else
// every address.
func executorListen(cfg config.Config, api net.Listener) (net.Listener, error) {
	host := cfg.APIHost
	if a, ok := api.Addr().(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		host = a.IP.String()
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(cfg.ExecutorPort)))
	if err != nil {
		return nil, fmt.Errorf("listen for the executor channel on %s port %d (%s): %w", orAll(host), cfg.ExecutorPort, config.EnvExecutorPort, err)
	}
	return ln, nil
}

// isExecutorRoute: p is a clean path under ExecutorRoutes (a path that
// only starts like one, /v1/executor/../v1/pod/..., is not).
func isExecutorRoute(p string) bool {
	return strings.HasPrefix(p, ExecutorRoutes) && path.Clean(p) == strings.TrimSuffix(p, "/")
}

// executorOnly serves the executor routes of h and nothing else: the TLS
// listener is the executor channel, not a second API.
func executorOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isExecutorRoute(r.URL.Path) {
			writeChannelError(w, http.StatusNotFound, "this listener serves the executor routes ("+ExecutorRoutes+") only; the scheduler API is on its plain port")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// plainExecutorVerdict decides (pure) whether the plain API answers a
// request for path p with the task ID taskID: anything outside the
// executor routes, yes; an executor route, only for a live record's
// incarnation launched before the TLS channel (its spec names the plain
// API), or for the operator presenting a secrets copy by hand. why says
// what to do instead.
func plainExecutorVerdict(p, taskID string, operator bool, tasks []state.Task, httpsURL string) (bool, string) {
	if !strings.HasPrefix(p, strings.TrimSuffix(ExecutorRoutes, "/")) {
		return true, ""
	}
	if operator && p == taskspec.SecretsCopyPath {
		return true, ""
	}
	for _, t := range tasks {
		if taskID != "" && t.TaskID == taskID && !onTLSChannel(t) {
			return true, ""
		}
	}
	return false, fmt.Sprintf("the executor routes are served over TLS at %s (the task spec names it, with the CA to verify it); "+
		"plain HTTP answers them only for tasks launched by a scheduler from before that channel", httpsURL)
}

// plainGate puts plainExecutorVerdict in front of the plain API.
func (s *Scheduler) plainGate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if !strings.HasPrefix(p, strings.TrimSuffix(ExecutorRoutes, "/")) {
			h.ServeHTTP(w, r)
			return
		}
		op := s.secrets.Get().VerifyOperator(operatorToken(r))
		ok, why := plainExecutorVerdict(p, r.URL.Query().Get("task_id"), op, s.Snapshot().Tasks, s.opts.executorURL)
		if !ok {
			writeChannelError(w, http.StatusForbidden, why)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// operatorToken is the operator token a request carries, if any.
func operatorToken(r *http.Request) string {
	if t := strings.TrimSpace(r.Header.Get(secrets.OperatorHeader)); t != "" {
		return t
	}
	return bearerToken(r)
}

func writeChannelError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg})
}

// onTLSChannel decides (pure) whether t's executor uses the TLS channel:
// its incarnation was launched with it, or it was adopted after lost
// state (which scheduler launched it is unknown; the whole secrets copy
// it presents then must not cross plain HTTP, so an adopted executor from
// before the channel, which knows no CA, cannot present it and the
// operator posts a copy by hand: docs/operations.md).
func onTLSChannel(t state.Task) bool {
	return t.ExecutorTLS || t.Adopted != ""
}

// messageChannel decides (pure) where a MESSAGE sends a task's executor:
// the TLS channel with its CA (tls), else the plain API (an executor from
// before the channel knows no CA field).
func messageChannel(tls bool, httpsURL, caPEM, plainURL string) (u, ca string) {
	if tls && httpsURL != "" && caPEM != "" {
		return httpsURL, caPEM
	}
	return plainURL, ""
}

// channelFor is messageChannel for the record t.
func (s *Scheduler) channelFor(t state.Task) (u, ca string) {
	plain := s.opts.apiURL
	if plain == "" {
		plain = advertisedURL(s.cfg, nil, nil)
	}
	return messageChannel(onTLSChannel(t), s.opts.executorURL, s.secrets.Get().ActiveCA().CertPEM, plain)
}

// channelCertDue decides (pure) whether the channel's certificate must be
// (re)issued: there is none, it was issued by another CA than the active
// one (a CA brought or recovered), or pki.RenewalDue says so.
func channelCertDue(have bool, issuedBy, activeCA string, notBefore, notAfter, now time.Time) (bool, string) {
	switch {
	case !have:
		return true, "no certificate yet"
	case issuedBy != activeCA:
		return true, "the service's CA changed"
	case pki.RenewalDue(notBefore, notAfter, now):
		return true, "renewal due"
	}
	return false, ""
}

// channelCert is the executor channel's certificate, issued in memory
// (never stored) from the active CA for hosts.
type channelCert struct {
	hosts []string
	ca    func() pki.CA
	now   func() time.Time
	life  time.Duration // 0: pki.APILifetime
	log   *zap.Logger

	mu                  sync.Mutex
	cur                 *tls.Certificate
	issuedBy            string // fingerprint of the CA certificate
	notBefore, notAfter time.Time
}

// get is tls.Config.GetCertificate.
func (c *channelCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ca, now := c.ca(), c.now()
	fp := pki.Fingerprint(ca.CertPEM)
	due, why := channelCertDue(c.cur != nil, c.issuedBy, fp, c.notBefore, c.notAfter, now)
	if !due {
		return c.cur, nil
	}
	p, err := ca.Parse(now)
	if err != nil {
		c.log.Error("the executor channel has no certificate: the service's CA is not usable", zap.Error(err))
		return nil, fmt.Errorf("executor channel: the service's CA: %w", err)
	}
	iss, err := pki.IssueAPI(p, c.hosts, c.life, nil, now)
	if err != nil {
		c.log.Error("the executor channel's certificate could not be issued", zap.Error(err))
		return nil, fmt.Errorf("executor channel: %w", err)
	}
	kp, err := tls.X509KeyPair([]byte(iss.CertPEM), []byte(iss.KeyPEM))
	if err != nil {
		return nil, fmt.Errorf("executor channel: the issued certificate: %w", err)
	}
	c.cur, c.issuedBy = &kp, fp
	c.notBefore, c.notAfter = kp.Leaf.NotBefore, kp.Leaf.NotAfter
	c.log.Info("executor channel certificate issued", zap.String("why", why), zap.Strings("hosts", c.hosts),
		zap.String("ca", fp), zap.Time("not_after", c.notAfter))
	return c.cur, nil
}

// channelHosts is the host executors dial in the channel's URL u: what
// its certificate names.
func channelHosts(u string) []string {
	h := strings.TrimPrefix(u, "https://")
	if host, _, err := net.SplitHostPort(h); err == nil {
		return []string{host}
	}
	return []string{h}
}
