package scheduler

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
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

// Renewal actions: wait, ask the server's executor to reload a new
// certificate in place (a MESSAGE), or restart the server (it gets a new
// certificate at launch) when the reload failed or never came.
type renewAction int

const (
	renewWait renewAction = iota
	renewMessage
	renewRestart
)

// renewAttempt is what the scheduler knows of the in-place renewal of one
// server's certificate: sent to which task, how many times, when last,
// and the executor's report.
type renewAttempt struct {
	TaskID   string
	Messages int
	LastSent time.Time
	// Failed is the executor's reason when it could not reload.
	Failed string
	// Serial and NotAfter: the certificate the executor reported loaded.
	Serial   string
	NotAfter time.Time
}

// renewMaxMessages is how many MESSAGEs a server's executor gets for one
// renewal before the scheduler restarts the server instead: the master
// drops a MESSAGE to an agent it cannot reach, and an executor of an
// older build ignores it.
const renewMaxMessages = 3

// renewalStep is the in-place renewal decision (pure) for the server the
// renewal picked, task taskID: its attempt so far (nil: none) and how
// long to wait for the executor's report before asking again.
func renewalStep(now time.Time, taskID string, a *renewAttempt, resendAfter time.Duration) (renewAction, string) {
	switch {
	case a == nil || a.TaskID != taskID:
		return renewMessage, "asking its executor to load a new certificate in place (no restart)"
	case a.Failed != "":
		return renewRestart, "its executor could not load a new certificate in place (" + a.Failed + "): restarting it instead (it gets a new certificate at launch)"
	case now.Sub(a.LastSent) < resendAfter:
		return renewWait, fmt.Sprintf("waiting for its executor's report (asked %d time(s), last %s ago)", a.Messages, now.Sub(a.LastSent).Round(time.Second))
	case a.Messages >= renewMaxMessages:
		return renewRestart, fmt.Sprintf("asked its executor %d times to load a new certificate in place and it still presents the old one (the master drops a MESSAGE it cannot deliver; an older executor ignores it): restarting it instead", a.Messages)
	}
	return renewMessage, fmt.Sprintf("asking its executor again (no renewal %s after the last request)", now.Sub(a.LastSent).Round(time.Second))
}

// renewResendAfter is how long the renewal waits for an executor's
// report before asking again: two checks, at least 20 s.
func renewResendAfter(every time.Duration) time.Duration {
	if d := 2 * every; d > 20*time.Second {
		return d
	}
	return 20 * time.Second
}

// certRenewals holds the in-place renewals under way (by server name),
// shared by the renewal loop and the executors' reports.
type certRenewals struct {
	mu       sync.Mutex
	attempts map[string]*renewAttempt
}

// get returns a copy of name's attempt, nil when none.
func (c *certRenewals) get(name string) *renewAttempt {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.attempts[name]
	if !ok {
		return nil
	}
	cp := *a
	return &cp
}

// sent records a MESSAGE to taskID (a new attempt when the task changed).
func (c *certRenewals) sent(name, taskID string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.attempts == nil {
		c.attempts = map[string]*renewAttempt{}
	}
	a, ok := c.attempts[name]
	if !ok || a.TaskID != taskID {
		a = &renewAttempt{TaskID: taskID}
		c.attempts[name] = a
	}
	a.Messages++
	a.LastSent = now
}

// reported records an executor's report; false when no renewal of that
// task is under way.
func (c *certRenewals) reported(name, taskID string, rep taskspec.TLSRenewReport) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.attempts[name]
	if !ok || a.TaskID != taskID {
		return false
	}
	a.Failed, a.Serial, a.NotAfter = rep.Error, rep.Serial, rep.NotAfter
	return true
}

// keepOnly forgets every attempt but name's ("" : all): a server that is
// no longer due has its new certificate.
func (c *certRenewals) keepOnly(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for n := range c.attempts {
		if n != name {
			delete(c.attempts, n)
		}
	}
}

// certRenewLoop renews the servers' TLS certificates before they expire,
// one server at a time and only while the cluster is healthy: the
// server's executor is asked (a framework MESSAGE) to fetch a new
// certificate and load it into the running agent, with no restart; when
// that fails, or no renewal follows a few requests, the server is
// restarted (it gets a new certificate at launch).
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
		s.tlsRenew.keepOnly(name)
		if name == "" {
			if why != lastWhy && !strings.HasPrefix(why, "no server") {
				s.log.Info("TLS certificate renewal waits", zap.String("why", why))
			}
			lastWhy = why
			continue
		}
		taskID := s.runningTaskID(name)
		act, step := renewalStep(time.Now(), taskID, s.tlsRenew.get(name), renewResendAfter(every))
		if step != lastWhy {
			s.log.Info("TLS certificate renewal", zap.String("server", name), zap.String("task_id", taskID),
				zap.String("why", why), zap.String("step", step))
		}
		lastWhy = step
		switch act {
		case renewMessage:
			if err := s.sendTLSRenew(ctx, name, taskID); err != nil {
				s.log.Warn("TLS certificate renewal: the request to the executor was not sent; retrying later",
					zap.String("server", name), zap.Error(err))
				continue
			}
			s.tlsRenew.sent(name, taskID, time.Now())
			s.log.Info("renewing a Consul server's TLS certificate in place: its executor was asked to load a new one",
				zap.String("server", name), zap.String("task_id", taskID))
		case renewRestart:
			s.log.Warn("renewing a Consul server's TLS certificate: restarting it", zap.String("server", name), zap.String("why", step))
			if _, err := s.Restart(ctx, name); err != nil {
				s.log.Warn("TLS certificate renewal: the restart was refused; retrying later", zap.String("server", name), zap.Error(err))
				continue
			}
			s.tlsRenew.keepOnly("")
		}
	}
}

// runningTaskID is the task ID of name's record ("" when none).
func (s *Scheduler) runningTaskID(name string) string {
	for _, t := range s.Snapshot().Tasks {
		if t.Name == name {
			return t.TaskID
		}
	}
	return ""
}

// sendTLSRenew sends name's executor the renewal MESSAGE naming this
// scheduler's API, from the loop (which owns the records and the
// sender). Mesos does not say whether it was delivered: the executor's
// report or the certificate the server presents do.
func (s *Scheduler) sendTLSRenew(ctx context.Context, name, taskID string) error {
	return s.inLoop(ctx, func() error {
		t, ok := s.tasks[name]
		switch {
		case !ok || t.TaskID != taskID || !t.Running() || t.AgentID == "":
			return fmt.Errorf("%s is no longer the running task %s", name, taskID)
		case !s.subscribed || s.sender == nil:
			return errors.New("not subscribed to the master")
		}
		u, ca := s.channelFor(t)
		data, err := taskspec.EncodeTLSRenew(u, ca)
		if err != nil {
			return err
		}
		var out outbox
		out.add(calls.Message(t.AgentID, t.TaskID, data))
		if !s.enqueue(&out) {
			return errors.New("the calls to the master are backed up")
		}
		return nil
	})
}

// tlsRenewHandler serves taskspec.TLSRenewPath: a live server's
// executor reports, with its own task credential, the certificate it
// loaded or why it could not. The report is logged and kept for the
// renewal's next step.
func (s *Scheduler) tlsRenewHandler() http.HandlerFunc {
	verify := func(id, tok string) bool { return s.secrets.Get().VerifyCredential(id, tok) }
	return tlsRenewReportHandler(verify, func(id string) bool {
		live, needs := s.liveTask(id)
		return live && needs.Server != nil
	}, s.tlsRenew.reported, s.log)
}

func tlsRenewReportHandler(verify func(id, tok string) bool, liveServer func(id string) bool,
	record func(name, id string, rep taskspec.TLSRenewReport) bool, log *zap.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeRenewError(w, http.StatusMethodNotAllowed, "only POST is allowed here")
			return
		}
		id := r.URL.Query().Get("task_id")
		tok := bearerToken(r)
		switch {
		case id == "" || tok == "":
			w.Header().Set("WWW-Authenticate", `Bearer realm="dcos-consul scheduler"`)
			writeRenewError(w, http.StatusUnauthorized, "an executor reports with ?task_id= and its own task credential (Authorization: Bearer)")
			return
		case !verify(id, tok):
			writeRenewError(w, http.StatusForbidden, "the credential is not this task's")
			return
		case !liveServer(id):
			writeRenewError(w, http.StatusForbidden, "the task is not a live Consul server with TLS of this scheduler")
			return
		}
		var rep taskspec.TLSRenewReport
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&rep); err != nil {
			writeRenewError(w, http.StatusBadRequest, "the body is not a TLS renewal report: "+err.Error())
			return
		}
		if rep.Error == "" && (rep.Serial == "" || rep.NotAfter.IsZero()) {
			writeRenewError(w, http.StatusBadRequest, "a TLS renewal report names the loaded certificate (serial, not_after) or says why none was (error)")
			return
		}
		if len(rep.Error) > 1000 {
			rep.Error = rep.Error[:1000]
		}
		name := state.NameOfTaskID(id)
		known := record(name, id, rep)
		if rep.Error != "" {
			log.Warn("TLS certificate renewal in place failed on the executor", zap.String("server", name),
				zap.String("task_id", id), zap.String("why", rep.Error), zap.Bool("requested_here", known))
		} else {
			log.Info("TLS certificate renewed in place: the server presents its new certificate", zap.String("server", name),
				zap.String("task_id", id), zap.String("serial", rep.Serial), zap.Time("not_after", rep.NotAfter),
				zap.Bool("requested_here", known))
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func writeRenewError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "error": http.StatusText(code), "message": msg})
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
