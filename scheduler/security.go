package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/dcos-consul/dcos-consul/internal/ownerfile"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/api"
	"github.com/dcos-consul/dcos-consul/scheduler/backup"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/consulacl"
	"github.com/dcos-consul/dcos-consul/scheduler/consulclient"
	"github.com/dcos-consul/dcos-consul/scheduler/dcosauth"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
	"github.com/dcos-consul/dcos-consul/scheduler/secrets"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
	"github.com/dcos-consul/dcos-consul/scheduler/store"
)

// loadSecrets reads the service's secrets, generating and storing the
// missing ones before anything can use them. An uninstall creates none
// (it would only have to delete them again).
func (s *Scheduler) loadSecrets(ctx context.Context) error {
	if s.cfg.Uninstall {
		// No operator token: every mutating API call is refused while the
		// service is being removed.
		s.secrets = secrets.NewHolder(secrets.Secrets{})
		return nil
	}
	if _, err := s.store.Get(ctx, secrets.Key); errors.Is(err, store.ErrNotFound) {
		if lost, why := secretsLostAtStart(s.tasks, s.opts.adoptWait, s.cfg.ACL, s.cfg.GossipEncryption, s.cfg.TLS); lost {
			return s.startLost(why)
		}
	}
	sec, err := secrets.LoadOrCreate(ctx, s.store, s.opts.Rand, store.ErrNotFound)
	if err != nil {
		return err
	}
	userCA, ok, err := s.cfg.UserCA()
	if err != nil {
		return err
	}
	if ok {
		sec.UserCA = userCA // in memory only: the files stay the user's
	}
	if sec, err = s.federationSecrets(ctx, sec); err != nil {
		return err
	}
	if err := s.useSecrets(sec); err != nil {
		return err
	}
	s.secrets = secrets.NewHolder(sec)
	// Always: Consul without ACLs ignores a token, and a service whose
	// ACL option change was refused keeps ACLs as installed.
	if hc, ok := s.consul.(httpConsul); ok {
		hc.token = sec.SchedulerToken
		s.consul = hc
	}
	return nil
}

// useSecrets puts loaded (or recovered) secrets in use outside the
// holder: the CA the scheduler verifies Consul with, and the operator
// token file.
func (s *Scheduler) useSecrets(sec secrets.Secrets) error {
	// Trusted whether or not TLS is on (the installed target, not this
	// configuration, decides; a refused change keeps it): only https
	// addresses use it.
	ca := sec.ActiveCA()
	if _, err := ca.Parse(time.Now()); err != nil {
		if s.cfg.TLS {
			return fmt.Errorf("the service's TLS CA: %w", err)
		}
		s.log.Warn("the service's TLS CA is not usable (TLS is off)", zap.Error(err))
	} else if err := consulclient.SetCA(ca.CertPEM); err != nil {
		return fmt.Errorf("the service's TLS CA: %w", err)
	}
	if s.cfg.TLS {
		s.log.Info("TLS on: Consul servers get certificates from the service's CA; the scheduler reaches Consul over HTTPS",
			zap.String("ca", pki.Fingerprint(ca.CertPEM)), zap.Bool("user_ca", !sec.UserCA.Empty()), zap.String("ca_cert_at", secrets.CAPath))
	}
	if f := s.cfg.OperatorTokenFile; f != "" {
		if err := writeSecretFile(f, sec.OperatorToken); err != nil {
			return fmt.Errorf("write the operator token file (%s): %w", config.EnvOperatorTokenFile, err)
		}
		s.log.Info("operator token written for the operator commands", zap.String("file", f))
	}
	return nil
}

// writeSecretFile writes v to path readable by its owner only, through a
// new file renamed over the old one (never a moment with a wider mode or
// a partial token).
func writeSecretFile(path, v string) error {
	return ownerfile.Write(path, v+"\n")
}

// secretsAccess is what launches hand to executors.
func (s *Scheduler) secretsAccess() *state.SecretsAccess {
	h := s.secrets
	a := &state.SecretsAccess{URL: s.opts.executorURL, Credential: func(id string) string { return h.Get().Credential(id) }}
	if a.URL == "" { // tests that build a scheduler without its listeners
		a.URL = advertisedURL(s.cfg, nil, nil)
		return a
	}
	a.CACert = func() string { return h.Get().ActiveCA().CertPEM }
	return a
}

// liveTask: id is the current incarnation of a record and may be alive.
// It reads the published view (the API's goroutines must not touch the
// loop's state); the record is written before its LAUNCH, and the
// executor retries until the view shows it.
func (s *Scheduler) liveTask(id string) (bool, secrets.Needs) {
	name := state.NameOfTaskID(id)
	if name == "" {
		return false, secrets.Needs{}
	}
	v := s.Snapshot()
	for _, t := range v.Tasks {
		if t.Name == name {
			n := secrets.Needs{Gossip: v.Target.GossipEncryption, ACL: v.Target.ACL, TLS: v.Target.TLS,
				Replication: v.Target.Secondary && t.Role == taskspec.RoleServer}
			if t.Role == taskspec.RoleServer {
				n.CopyFor = s.cfg.ServiceName // kept on its volume (lostsecrets.go)
			}
			if n.TLS && t.Role == taskspec.RoleServer {
				n.Server = &pki.ServerRequest{Datacenter: v.Target.Datacenter, Domain: v.Target.Domain, NodeName: t.Name,
					Hosts: []string{t.IP, t.Hostname}, Lifetime: s.cfg.TLSServerCertLifetime}
			}
			return t.TaskID == id && t.Active(), n
		}
	}
	return false, secrets.Needs{}
}

// httpHandler is the whole API: the executors' secrets route, the SDK
// routes, and the operator token in front of every mutating request but
// the Consul UI's when Consul's ACLs check those (consulACLGate).
func (s *Scheduler) httpHandler(reg prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(taskspec.SecretsPath, secrets.ExecutorHandler(s.secrets, s.liveTask))
	mux.Handle(ManagementTokenPath, secrets.ManagementTokenHandler(s.secrets))
	mux.Handle(secrets.CAPath, secrets.CAHandler(s.secrets, func() bool { return s.Snapshot().Target.TLS }))
	mux.HandleFunc(KeyringRotatePath, s.keyringHandler)
	mux.HandleFunc(ManagementRotatePath, s.managementRotateHandler)
	// The executors' snapshot copies (snapshot_volumes.go): their task
	// credential, not the operator token.
	mux.Handle(backup.ExecutorPath, s.snapshotExecutorHandler())
	mux.Handle(backup.ExecutorPath+"/", s.snapshotExecutorHandler())
	// The executors' TLS renewal reports (certrenew.go): task credential.
	mux.Handle(taskspec.TLSRenewPath, s.tlsRenewHandler())
	// A server's copy of the secrets after lost state (lostsecrets.go):
	// task credential or operator token, checked by the handler.
	mux.Handle(taskspec.SecretsCopyPath, s.secretsCopyHandler())
	mux.Handle("/", api.Handler(s, reg))
	h := secrets.RequireOperator(s.secrets, mux, backup.ExecutorPath, taskspec.TLSRenewPath, taskspec.SecretsCopyPath)
	if u := s.cfg.DCOSJWKSURL; u != "" {
		// A valid DC/OS token is as good as the operator token on the
		// mutating routes (the management token route is GET: operator
		// token only).
		h = dcosauth.Middleware(dcosauth.NewKeySet(u, s.log.Named("dcos-auth")), mux, h)
	}
	return consulACLGate(mux, h, func() bool { return api.ConsulACLsDecide(s.Snapshot()) })
}

// consulACLGate sends the UI proxy's Consul API requests (/consul/...)
// straight to mux when aclsOn: they carry the caller's own Consul token
// (or none) to a Consul agent whose ACLs decide, and the proxy forwards
// only the UI's own routes and methods. Everything else, and those too
// with ACLs off, goes through authenticated (the operator token, or a
// DC/OS token), and so does a path that only starts like /consul/
// (/consul/../v1/pod/...: not clean).
func consulACLGate(mux, authenticated http.Handler, aclsOn func() bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, api.ConsulAPIPrefix+"/") && path.Clean(p) == strings.TrimSuffix(p, "/") && aclsOn() {
			mux.ServeHTTP(w, r)
			return
		}
		authenticated.ServeHTTP(w, r)
	})
}

// apiListen opens the API listener: on cfg.APIHost when set (dev: a
// loopback address), else on every address.
func apiListen(cfg config.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.APIHost, strconv.Itoa(cfg.APIPort)))
	if err != nil {
		return nil, fmt.Errorf("listen for the API on %s port %d: %w", orAll(cfg.APIHost), cfg.APIPort, err)
	}
	return ln, nil
}

func orAll(h string) string {
	if h == "" {
		return "every address"
	}
	return h
}

// advertisedURL is the URL executors reach the API at: the listener's own
// address when it is bound to one, else cfg.APIHost, else Marathon's
// $HOST, else this machine's host name, with the listener's port.
func advertisedURL(cfg config.Config, ln net.Listener, log *zap.Logger) string {
	return "http://" + advertisedAddr(cfg, ln, cfg.APIPort, log)
}

// advertisedAddr is advertisedURL's host:port, for a listener ln (nil:
// port). log nil: no warning.
func advertisedAddr(cfg config.Config, ln net.Listener, defPort int, log *zap.Logger) string {
	host, port := "", strconv.Itoa(defPort)
	if ln != nil {
		if a, ok := ln.Addr().(*net.TCPAddr); ok {
			port = strconv.Itoa(a.Port)
			if !a.IP.IsUnspecified() {
				host = a.IP.String()
			}
		}
	}
	for _, h := range []string{cfg.APIHost, os.Getenv("HOST")} {
		if host == "" {
			host = h
		}
	}
	if host == "" {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
		if log != nil {
			log.Warn("neither API_HOST nor HOST is set: executors reach the scheduler API at this machine's host name",
				zap.String("host", host))
		}
	}
	return net.JoinHostPort(host, port)
}

// ManagementTokenPath serves the Consul ACL management token to a caller
// with the operator token.
const ManagementTokenPath = "/v1/acl/management-token"

// securityLoop runs the background security work: the ACL bootstrap, then
// a gossip key rotation a previous scheduler left unfinished.
func (s *Scheduler) securityLoop(ctx context.Context) {
	// Nothing below can work with interim secrets: it waits until the
	// lost ones are recovered (lostsecrets.go).
	if !s.awaitSecrets(ctx, 5*time.Second) {
		return
	}
	go s.certRenewLoop(ctx)
	go s.refreshCopiesOnStart(ctx)
	s.aclLoop(ctx)
	s.resumeManagementRotation(ctx)
	s.resumeRotation(ctx)
}

// aclLoop bootstraps Consul's ACL system once servers run (when the
// service uses ACLs): every step is idempotent, so it simply runs again
// after a scheduler restart. It ends when the bootstrap succeeded or ctx
// ends.
func (s *Scheduler) aclLoop(ctx context.Context) {
	if !s.Snapshot().Target.ACL {
		return
	}
	sec := s.secrets.Get()
	if sec.ManagementToken == "" { // uninstalling: no secrets loaded
		return
	}
	tokens := consulacl.Tokens{Management: sec.ManagementToken, Scheduler: sec.SchedulerToken, Agent: sec.AgentToken}
	what := "Consul ACLs bootstrapped: default deny; scheduler, agent and anonymous DNS tokens in place"
	if s.Snapshot().Target.ACLPhaseNumber() > 0 {
		what = "Consul ACLs bootstrapped while turning ACLs on (default allow until the rollout's phase 3): scheduler, agent and anonymous DNS tokens in place"
	}
	if tg := s.Snapshot().Target; tg.Secondary {
		// A secondary datacenter replicates the primary's ACL system: its
		// tokens are made with the operator's replication token.
		tokens.SecondaryDC, tokens.Replication = tg.Datacenter, sec.ReplicationToken
		what = "Consul ACLs set up in secondary datacenter " + tg.Datacenter + " (replicated from " + tg.PrimaryDatacenter + "): this datacenter's management, scheduler and agent tokens in place"
	}
	if !s.awaitACLServers(ctx) {
		return
	}
	var lastLog time.Time
	for {
		v := s.Snapshot()
		var lastErr error = errors.New("no Consul server is running yet")
		for _, t := range v.Tasks {
			addr, ok := consulclient.Addr(t.IP, v.Target.Ports)
			if t.Role != taskspec.RoleServer || !t.Running() || !ok {
				continue
			}
			done, err := consulacl.Bootstrap(ctx, addr, tokens)
			if err == nil {
				s.log.Info(what, zap.String("via", addr), zap.Strings("done", done))
				s.aclBootstrapped.Store(true)
				// Wake the loop: the ACL rollout's first phase waits for this.
				_ = s.inLoop(ctx, func() error { return nil })
				return
			}
			lastErr = err
		}
		if time.Since(lastLog) > 30*time.Second {
			s.log.Warn("Consul ACL bootstrap not done yet; retrying", zap.Error(lastErr))
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(3 * time.Second):
		}
	}
}

// awaitACLServers waits, while ACLs are being turned on, until every
// server runs them (state.ACLBootstrapWaits): a bootstrap must not reach
// a leader without ACLs. It logs what it waits for when that changes, and
// returns false when ctx ends.
func (s *Scheduler) awaitACLServers(ctx context.Context) bool {
	last := ""
	for {
		v := s.Snapshot()
		ts := make(state.Tasks, len(v.Tasks))
		for _, t := range v.Tasks {
			ts[t.Name] = t
		}
		why := state.ACLBootstrapWaits(v.Target, ts)
		if why == "" {
			if last != "" {
				s.log.Info("turning ACLs on: every server runs ACLs (default allow); bootstrapping ACLs")
			}
			return true
		}
		if why != last {
			s.log.Info("ACL bootstrap waits", zap.String("why", why))
			last = why
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(2 * time.Second):
		}
	}
}

// aclTokensWithheld: the scheduler calls Consul without its ACL tokens
// for now (state.ACLTokensWithheld: ACLs being turned on, not
// bootstrapped yet). Safe from any goroutine.
func (s *Scheduler) aclTokensWithheld() bool {
	return state.ACLTokensWithheld(s.Snapshot().Target, s.aclBootstrapped.Load())
}

// keyringOf reads the LAN keyring of the cluster cl reaches, primary key
// first.
func keyringOf(ctx context.Context, cl *consulapi.Client) ([]string, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rings, err := cl.Operator().KeyringList((&consulapi.QueryOptions{}).WithContext(rctx))
	if err != nil {
		return nil, err
	}
	for _, r := range rings {
		if r.WAN || r.Segment != "" || r.Partition != "" {
			continue
		}
		var keys []string
		for k := range r.PrimaryKeys {
			keys = append(keys, k)
		}
		if len(keys) != 1 {
			return nil, fmt.Errorf("the LAN keyring has %d primary keys", len(keys))
		}
		for k := range r.Keys {
			if k != keys[0] {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			if err := taskspec.ValidGossipKey(k); err != nil {
				return nil, err
			}
		}
		return keys, nil
	}
	return nil, errors.New("no LAN keyring (is gossip encryption on?)")
}

// federationSecrets adds what a federated install reads from files: the
// replication token of a secondary datacenter (in memory only) and the
// shared gossip key. A key in the file that the service does not use yet
// becomes its only key when no server was launched, and is rotated to
// otherwise (rotateGossipKey's steps, resumed by resumeRotation), the
// change stored before anything uses it.
func (s *Scheduler) federationSecrets(ctx context.Context, sec secrets.Secrets) (secrets.Secrets, error) {
	tok, err := s.cfg.ReplicationToken()
	if err != nil {
		return sec, err
	}
	sec.ReplicationToken = tok
	key, ok, err := s.cfg.GossipKeyFromFile()
	if err != nil || !ok {
		return sec, err
	}
	fresh := true
	for _, t := range s.tasks.Sorted() {
		if t.Role == taskspec.RoleServer {
			fresh = false
		}
	}
	next, changed := secrets.UseGossipKey(sec, key, fresh)
	if !changed {
		return sec, nil
	}
	b, err := json.Marshal(next)
	if err != nil {
		return sec, err
	}
	if err := s.store.Put(ctx, secrets.Key, b); err != nil {
		return sec, fmt.Errorf("write the secrets: %w", err)
	}
	if fresh {
		s.log.Info("gossip key: the shared key of security.gossip_encryption.key_secret", zap.String("key", config.Fingerprint(key)))
	} else {
		s.log.Warn("gossip key: security.gossip_encryption.key_secret holds a key the running agents do not use yet: rotating to it",
			zap.String("new", config.Fingerprint(key)), zap.String("primary", config.Fingerprint(sec.GossipKey())))
	}
	return next, nil
}
