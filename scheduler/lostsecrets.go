package scheduler

// Secrets lost with the scheduler's state (issue 12, docs/security.md
// "Lost scheduler state"). A scheduler that starts with no stored secrets
// but with adopted server records (or reservations no record explains)
// would break the running cluster with new secrets: a gossip key its
// agents reject, a management token Consul never heard of (ACL bootstrap
// is done once), a CA its servers do not trust. It holds interim secrets
// in memory only, hands none out (the secrets route answers 409), asks
// every running server for the copy on its volume (MESSAGE) and stores
// the first copy secrets.Judge accepts; then the normal start goes on.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/consulclient"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
	"github.com/dcos-consul/dcos-consul/scheduler/secrets"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// secretsLostAtStart decides (pure) whether missing secrets were lost
// with the state rather than never made: some server record was adopted
// after the state loss, or agents hold reservations of the role that no
// record explains (servers' volumes only an offer can show), and the
// service uses a secret the running cluster holds. why says which.
func secretsLostAtStart(records state.Tasks, unexplained map[string]string, acl, gossip, tls bool) (bool, string) {
	if !acl && !gossip && !tls {
		return false, ""
	}
	var adopted []string
	for _, t := range records.Sorted() {
		if t.Role == taskspec.RoleServer && t.Adopted != "" {
			adopted = append(adopted, t.Name)
		}
	}
	switch {
	case len(adopted) > 0:
		return true, fmt.Sprintf("no secrets are stored but servers %s were adopted after the scheduler's state was lost", strings.Join(adopted, ", "))
	case len(unexplained) > 0:
		return true, fmt.Sprintf("no secrets are stored but %d agents hold reservations of the service's role that no record explains (servers' volumes after lost state)", len(unexplained))
	}
	return false, ""
}

// lostSecretsWhy is the line the plan, /v1/health and the log carry while
// the secrets are being recovered.
func lostSecretsWhy(why string) string {
	return "the service's secrets were lost with the scheduler's state (" + why + "): waiting for a server to present the copy on its volume; " +
		"nothing new is generated or handed out meanwhile (docs/operations.md, \"Lost scheduler state\")"
}

// startLost sets up the lost-secrets state: interim secrets in memory
// only (never stored, never handed to a task), the operator token file
// written with the interim operator token (the manual way presents a
// copy with it).
func (s *Scheduler) startLost(why string) error {
	interim, _, err := secrets.Fill(secrets.Secrets{}, s.opts.Rand)
	if err != nil {
		return err
	}
	if interim.CA, err = pki.NewCA(s.opts.Rand, "consul", time.Now()); err != nil {
		return err
	}
	if ca, ok, err := s.cfg.UserCA(); err != nil {
		return err
	} else if ok {
		interim.UserCA = ca
	}
	if interim.ReplicationToken, err = s.cfg.ReplicationToken(); err != nil {
		return err
	}
	s.secrets = secrets.NewHolder(interim)
	s.secrets.SetLost(why)
	s.log.Error(lostSecretsWhy(why))
	if f := s.cfg.OperatorTokenFile; f != "" {
		if err := writeSecretFile(f, interim.OperatorToken); err != nil {
			return fmt.Errorf("write the operator token file (%s): %w", config.EnvOperatorTokenFile, err)
		}
		s.log.Warn("interim operator token written (the recovered one replaces it)", zap.String("file", f))
	}
	return nil
}

// awaitSecrets blocks the security work while the secrets are lost,
// asking every running server's executor for its copy every interval.
func (s *Scheduler) awaitSecrets(ctx context.Context, every time.Duration) bool {
	var lastLog time.Time
	for s.secrets.Lost() != "" {
		asked := s.askForCopies(ctx)
		if time.Since(lastLog) > time.Minute {
			s.log.Error(lostSecretsWhy(s.secrets.Lost()), zap.Strings("asked", asked))
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(every):
		}
	}
	return true
}

// askForCopies sends the secrets copy MESSAGE to every running server.
func (s *Scheduler) askForCopies(ctx context.Context) []string {
	return s.copyMessage(ctx, false)
}

// refreshCopies asks every running server to rewrite its copy (the
// secrets changed). Mesos does not say whether a MESSAGE arrived: a
// server that missed it rewrites its copy at its next launch or TLS
// renewal.
func (s *Scheduler) refreshCopies(ctx context.Context) {
	if asked := s.copyMessage(ctx, true); len(asked) > 0 {
		s.log.Info("the servers are asked to refresh the secrets copy on their volumes", zap.Strings("servers", asked))
	}
}

func (s *Scheduler) copyMessage(ctx context.Context, refresh bool) []string {
	var asked []string
	_ = s.inLoop(ctx, func() error {
		if !s.subscribed || s.sender == nil {
			return nil
		}
		var out outbox
		for _, t := range s.tasks.Sorted() {
			if t.Role == taskspec.RoleServer && t.Running() && t.AgentID != "" {
				u, ca := s.channelFor(t)
				data, err := taskspec.EncodeSecretsCopyRequest(u, ca, refresh)
				if err != nil {
					s.log.Error("cannot send a server the secrets copy MESSAGE", zap.String("server", t.Name), zap.Error(err))
					continue
				}
				out.add(calls.Message(t.AgentID, t.TaskID, data))
				asked = append(asked, t.Name)
			}
		}
		if len(out.calls) > 0 && !s.enqueue(&out) {
			asked = nil
		}
		return nil
	})
	return asked
}

// secretsCopyHandler serves taskspec.SecretsCopyPath: a copy presented
// by a server's executor (its task credential) or by the operator (the
// operator token; the manual way), judged by secrets.Judge against what
// the running cluster says, stored when accepted.
func (s *Scheduler) secretsCopyHandler() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeCopyAnswer(w, http.StatusMethodNotAllowed, "only POST is allowed here")
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeCopyAnswer(w, http.StatusBadRequest, "the copy could not be read")
			return
		}
		c, err := secrets.ParseCopy(body)
		if err != nil {
			writeCopyAnswer(w, http.StatusBadRequest, err.Error())
			return
		}
		p, ok := s.presenter(r, c)
		if !ok {
			writeCopyAnswer(w, http.StatusUnauthorized, "a copy is presented with the operator token or a server task's credential (?task_id=)")
			return
		}
		code, msg := s.judgeCopy(r.Context(), p, c)
		writeCopyAnswer(w, code, msg)
	}
}

func writeCopyAnswer(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg})
}

// presenter authenticates the caller: the (interim or recovered)
// operator token, or a credential of task_id under the interim executor
// key (a task this scheduler launched) or under the copy's own key (an
// adopted task the lost scheduler launched).
func (s *Scheduler) presenter(r *http.Request, c secrets.Copy) (secrets.Presenter, bool) {
	tok := strings.TrimSpace(r.Header.Get(secrets.OperatorHeader))
	if tok == "" {
		tok = bearerToken(r)
	}
	cur := s.secrets.Get()
	if cur.VerifyOperator(tok) {
		return secrets.Presenter{Operator: true}, true
	}
	id := r.URL.Query().Get("task_id")
	if id == "" || !(cur.VerifyCredential(id, tok) || c.Secrets.VerifyCredential(id, tok)) {
		return secrets.Presenter{}, false
	}
	p := secrets.Presenter{Task: id}
	for _, t := range s.Snapshot().Tasks {
		if t.TaskID == id && t.Role == taskspec.RoleServer && t.Active() && t.Adopted != "" {
			p.AdoptedServer = true
		}
	}
	return p, true
}

// judgeCopy asks the running cluster about c, decides, and stores and
// applies an accepted copy (one at a time: the first accepted wins).
func (s *Scheduler) judgeCopy(ctx context.Context, p secrets.Presenter, c secrets.Copy) (int, string) {
	s.rotateMu.Lock()
	defer s.rotateMu.Unlock()
	lost := s.secrets.Lost() != ""
	if !lost && s.secrets.Get().ManagementToken == c.Secrets.ManagementToken && s.secrets.Get().GossipKey() == c.Secrets.GossipKey() {
		return http.StatusOK, "the secrets are already recovered (this copy matches them)"
	}
	tg := s.Snapshot().Target
	u := secrets.Uses{ACL: tg.ACL, Gossip: tg.GossipEncryption, TLS: tg.TLS, Service: s.cfg.ServiceName}
	var cl secrets.Cluster
	if lost {
		cl = s.askCluster(ctx, c, u)
	}
	if lost && p.AdoptedServer {
		if s.presented == nil {
			s.presented = map[string]string{}
		}
		s.presented[state.NameOfTaskID(p.Task)] = secrets.SameCopy(c)
		p.Need = tg.Servers/2 + 1
		for _, d := range s.presented {
			if d == secrets.SameCopy(c) {
				p.Agree++
			}
		}
	}
	v := secrets.Judge(lost, p, c, u, cl)
	if !v.Accept {
		s.log.Warn("secrets copy refused", zap.String("why", v.Why))
		return http.StatusConflict, v.Why
	}
	if err := s.recoverFrom(ctx, c); err != nil {
		s.log.Error("secrets copy accepted but not stored; the scheduler stays in the lost-secrets state", zap.Error(err))
		return http.StatusInternalServerError, "the accepted copy could not be stored: " + err.Error()
	}
	s.log.Warn("the service's secrets are recovered from a server's copy: the running cluster's gossip keyring, ACL tokens and CA are in use again",
		zap.String("why", v.Why), zap.Bool("verified", v.Verified), zap.String("gossip_primary", config.Fingerprint(c.Secrets.GossipKey())),
		zap.String("ca", pki.Fingerprint(c.Secrets.CA.CertPEM)))
	return http.StatusOK, v.Why
}

// recoverFrom stores the copy's secrets (before anything uses them), then
// puts them in use: the trusted CA, the scheduler's Consul token, the
// operator token file, and ends the lost state.
func (s *Scheduler) recoverFrom(ctx context.Context, c secrets.Copy) error {
	rec := secrets.Recovered(c, s.secrets.Get())
	var err error
	if err := s.writeSecrets(ctx, rec); err != nil {
		return fmt.Errorf("write the recovered secrets: %w", err)
	}
	if rec, err = s.federationSecrets(ctx, rec); err != nil {
		return err
	}
	if err := s.useSecrets(rec); err != nil {
		return err
	}
	tok := rec.SchedulerToken
	_ = s.inLoop(ctx, func() error {
		if hc, ok := s.consul.(httpConsul); ok {
			hc.token = tok
			s.consul = hc
		}
		return nil
	})
	s.secrets.Recover(rec)
	go s.refreshCopies(context.WithoutCancel(ctx))
	return nil
}

// askCluster reads what the running cluster says about c, with c's own
// management token, over HTTPS verified against c's CA when TLS is on.
func (s *Scheduler) askCluster(ctx context.Context, c secrets.Copy, u secrets.Uses) secrets.Cluster {
	v := s.Snapshot()
	var errs []string
	for _, t := range v.Tasks {
		addr, ok := consulclient.Addr(t.IP, v.Target.Ports)
		if t.Role != taskspec.RoleServer || !t.Running() || !ok {
			continue
		}
		cl, err := copyClient(addr, c, s.secrets.Get().UserCA)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := clusterFacts(rctx, cl, u)
		cancel()
		if err != nil {
			errs = append(errs, t.Name+": "+err.Error())
			continue
		}
		return out
	}
	if len(errs) == 0 {
		errs = append(errs, "no server is running")
	}
	return secrets.Cluster{Err: strings.Join(errs, "; ")}
}

// clusterFacts: Reached once the server answers at all.
func clusterFacts(ctx context.Context, cl *consulapi.Client, u secrets.Uses) (secrets.Cluster, error) {
	q := (&consulapi.QueryOptions{}).WithContext(ctx)
	if _, err := cl.Status().Leader(); err != nil {
		return secrets.Cluster{}, err
	}
	out := secrets.Cluster{Reached: true}
	if u.ACL {
		if tok, _, err := cl.ACL().TokenReadSelf(q); err == nil && tok != nil {
			for _, p := range tok.Policies {
				out.ManagementOK = out.ManagementOK || p.ID == globalManagementPolicy
			}
		}
	}
	if u.Gossip {
		if keys, err := keyringOf(ctx, cl); err == nil {
			out.Keys = keys
		} else {
			out.KeysErr = err.Error()
		}
	}
	return out, nil
}

// globalManagementPolicy is Consul's built-in global-management policy.
const globalManagementPolicy = "00000000-0000-0000-0000-000000000001"

// copyClient is a Consul client for addr with the copy's management
// token, trusting only the copy's CA for HTTPS (or the user's CA, which
// is never in a copy).
func copyClient(addr string, c secrets.Copy, userCA pki.CA) (*consulapi.Client, error) {
	scheme, host := consulclient.Split(addr)
	cfg := consulapi.DefaultNonPooledConfig()
	cfg.Address, cfg.Scheme, cfg.Token = host, scheme, c.Secrets.ManagementToken
	hc := consulclient.HTTPClient(15 * time.Second)
	if scheme == "https" {
		ca := c.Secrets.CA
		if !userCA.Empty() {
			ca = userCA
		}
		pool, err := pki.Pool(ca.CertPEM)
		if err != nil {
			return nil, fmt.Errorf("the copy's CA: %w", err)
		}
		hc.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	cfg.HttpClient = hc
	return consulapi.NewClient(cfg)
}

// lostBlocked holds back every launch but a server's while the secrets
// are lost: a client would wait for secrets nobody can give it, while a
// server relaunched onto its adopted volume presents that volume's copy.
func lostBlocked(why string, launch map[string]string, tasks state.Tasks) map[string]string {
	if why == "" {
		return nil
	}
	out := map[string]string{}
	for n := range launch {
		if t, ok := tasks[n]; ok && t.Role == taskspec.RoleServer {
			continue
		}
		out[n] = "waiting for the service's secrets, lost with the scheduler's state, to be recovered from a server's volume"
	}
	return out
}

// secretsLostView is the lost-secrets line for the API ("" when the
// secrets are the service's).
func (s *Scheduler) secretsLostView() string {
	if s.secrets == nil || s.secrets.Lost() == "" {
		return ""
	}
	return lostSecretsWhy(s.secrets.Lost())
}

// planErrors are the deploy plan's errors: refused configuration changes
// and lost secrets.
func (s *Scheduler) planErrors() []string {
	if l := s.secretsLostView(); l != "" {
		return append(append([]string(nil), s.refused...), l)
	}
	return s.refused
}

// refreshCopiesOnStart asks the running servers once, when subscribed, to
// rewrite their copies: a refresh MESSAGE a previous scheduler sent after
// a rotation may never have arrived (Mesos does not say).
func (s *Scheduler) refreshCopiesOnStart(ctx context.Context) {
	for i := 0; i < 120 && !s.Snapshot().Subscribed; i++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	s.refreshCopies(ctx)
}
