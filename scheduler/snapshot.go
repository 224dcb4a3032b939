package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/scheduler/api"
	"github.com/dcos-consul/dcos-consul/scheduler/backup"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/consulacl"
	"github.com/dcos-consul/dcos-consul/scheduler/consulclient"
	"github.com/dcos-consul/dcos-consul/scheduler/plan"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// snapshots takes Consul snapshots (GET /v1/snapshot, answered by the
// leader) into the backup target on a schedule (the backup plan) and on
// request, and restores them (PUT /v1/snapshot). It runs beside the
// scheduler's loop and reads the published view only.
type snapshots struct {
	target backup.Target // nil: no target
	every  time.Duration
	keep   int
	name   func(time.Time) string
	view   func() api.View
	now    func() time.Time
	log    *zap.Logger
	client *http.Client
	// acl says whether the service runs with ACLs and gives its tokens.
	// Snapshots are taken and restored with the management token: Consul
	// 1.16 allows GET and PUT /v1/snapshot only with acl = "write"
	// (acl.Authorizer.Snapshot), a right that can mint any token, so a
	// narrower token for them would protect nothing. Without ACLs Consul
	// ignores it.
	acl func() (bool, consulacl.Tokens)
	// clientsTLS says whether the client agents run with TLS;
	// queueRestarts queues their restarts in place after a restore that
	// replaced Consul's CA (restoreroll.go). Either nil: no such restarts.
	clientsTLS    func() bool
	queueRestarts func(ctx context.Context, why string) ([]string, error)

	mu      sync.Mutex // one snapshot or restore at a time; guards the fields below
	busy    sync.Mutex
	last    backup.Entry
	lastErr string
	next    time.Time
	listed  bool
	running string
	// restored: what the last restore did, for the backup plan.
	restored string

	// Copies on the servers' volumes (snapshot_volumes.go): staging holds
	// the newest snapshot on the scheduler's disk for the executors to
	// fetch (and copies uploaded for a restore); volumes is what each
	// server's executor last reported; upload names the copy a restore
	// waits for.
	staging backup.Target
	latest  *backup.Entry
	volumes map[string]volumeReport
	upload  string
}

// backupPlan is the name of the backup plan.
const backupPlan = "backup"

// errNoServer: no Consul server runs to take or restore a snapshot.
var errNoServer = fmt.Errorf("%w: no Consul server is running", api.ErrUnavailable)

func newSnapshots(cfg config.Config, view func() api.View, now func() time.Time, log *zap.Logger) (*snapshots, error) {
	s := &snapshots{every: cfg.BackupInterval, keep: cfg.BackupKeep, view: view, now: now, log: log,
		client: &http.Client{Timeout: 10 * time.Minute},
		name:   func(t time.Time) string { return backup.Name(cfg.ServiceName, cfg.Datacenter, t) }}
	staging, err := stagingTarget(cfg)
	if err != nil {
		return nil, err
	}
	s.staging, s.volumes = staging, map[string]volumeReport{}
	// The newest staged snapshot (a restarted scheduler on the same disk)
	// is offered to the executors again.
	if es, err := staging.List(context.Background()); err == nil && len(es) > 0 {
		sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
		newest := es[len(es)-1]
		s.latest = &newest
	}
	uri := cfg.BackupTarget
	if uri == "" && cfg.ZK == "" && cfg.StateDir != "" {
		dir, err := filepath.Abs(filepath.Join(cfg.StateDir, "snapshots"))
		if err != nil {
			return nil, err
		}
		uri = "file://" + dir // beside the file store (dev)
	}
	if uri != "" {
		t, err := backup.Open(uri)
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", config.EnvBackupTarget, err)
		}
		s.target = t
	}
	return s, nil
}

// loop takes a scheduled snapshot whenever one is due, until ctx ends.
func (s *snapshots) loop(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !s.due(ctx) {
			continue
		}
		if _, err := s.Save(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("scheduled Consul snapshot failed; retrying", zap.Error(err))
		}
	}
}

// due reads the target once to learn when the newest snapshot was taken,
// then follows the schedule.
func (s *snapshots) due(ctx context.Context) bool {
	s.mu.Lock()
	listed := s.listed
	s.mu.Unlock()
	if !listed && s.target == nil {
		// No target: the volumes only; the first snapshot is due now.
		s.mu.Lock()
		s.listed = true
		s.mu.Unlock()
	}
	if !listed && s.target != nil {
		es, err := s.target.List(ctx)
		if err != nil {
			s.fail(fmt.Errorf("list %s: %w", s.target, err), time.Minute)
			return false
		}
		s.mu.Lock()
		s.listed = true
		s.next = backup.Due(backup.Newest(es), s.every)
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.now().Before(s.next)
}

func (s *snapshots) fail(err error, retry time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr = err.Error()
	if retry > s.every {
		retry = s.every
	}
	s.next = s.now().Add(retry)
}

// servers are the HTTP addresses of the running Consul servers.
func (s *snapshots) servers() []string {
	v := s.view()
	ts := state.Tasks{}
	for _, t := range v.Tasks {
		ts[t.Name] = t
	}
	return consulHTTPAddrs(ts, v.Target, "")
}

func (s *snapshots) consul(addr string) (*consulapi.Client, error) {
	return s.consulWithin(addr, s.client.Timeout)
}

func (s *snapshots) consulWithin(addr string, timeout time.Duration) (*consulapi.Client, error) {
	token := ""
	if s.acl != nil {
		_, t := s.acl()
		token = t.Management // GET and PUT /v1/snapshot need acl = "write"
	}
	return consulclient.New(addr, token, timeout)
}

// Save takes a snapshot now, stores it and prunes the oldest.
func (s *snapshots) Save(ctx context.Context) (backup.Entry, error) {
	s.busy.Lock()
	defer s.busy.Unlock()
	name := s.name(s.now())
	s.setRunning("taking snapshot " + name)
	defer s.setRunning("")
	var last error = errNoServer
	for _, addr := range s.servers() {
		cl, err := s.consul(addr)
		if err != nil {
			last = err
			continue
		}
		r, _, err := cl.Snapshot().Save(nil) // the leader answers (not stale)
		if err != nil {
			last = fmt.Errorf("GET %s/v1/snapshot: %w", addr, err)
			continue
		}
		if err := s.putACL(ctx, name); err != nil {
			r.Close()
			s.fail(err, time.Minute)
			return backup.Entry{}, err
		}
		e, err := s.store(ctx, name, r)
		r.Close()
		if err != nil {
			s.fail(err, time.Minute)
			return backup.Entry{}, err
		}
		s.mu.Lock()
		s.last, s.lastErr, s.next = e, "", s.now().Add(s.every)
		s.mu.Unlock()
		s.log.Info("Consul snapshot stored", zap.String("name", e.Name), zap.Int64("bytes", e.Size), zap.String("sha256", e.SHA256),
			zap.String("target", s.where()), zap.String("via", addr))
		if s.target != nil {
			s.prune(ctx)
		}
		return e, nil
	}
	s.fail(last, time.Minute)
	return backup.Entry{}, last
}

func (s *snapshots) prune(ctx context.Context) {
	es, err := s.target.List(ctx)
	if err != nil {
		s.log.Warn("cannot list snapshots to prune them", zap.Error(err))
		return
	}
	for _, n := range backup.Prune(es, s.keep) {
		if err := s.target.Delete(ctx, n); err != nil {
			s.log.Warn("cannot delete an old snapshot", zap.String("name", n), zap.Error(err))
			continue
		}
		s.log.Info("old Consul snapshot deleted", zap.String("name", n), zap.Int("keep", s.keep))
	}
}

// List lists the stored snapshots, oldest first.
// List lists the stored snapshots, oldest first, each with where its
// copies are: the backup target, the servers' volumes.
func (s *snapshots) List(ctx context.Context) ([]backup.Entry, error) {
	var es []backup.Entry
	where := ""
	if s.target != nil {
		var err error
		if es, err = s.target.List(ctx); err != nil {
			return nil, err
		}
		where = s.target.String()
	}
	return backup.Merge(es, where, s.volumeCopies()), nil
}

// Restore restores a stored snapshot into the running cluster, through
// one running server (Consul applies it on the leader). The snapshot is
// checked against its checksum as it is read; Consul refuses a truncated
// or corrupt one.
func (s *snapshots) Restore(ctx context.Context, name string) error {
	if !backup.ValidName(name) {
		return fmt.Errorf("%w: %q is not a snapshot name (GET /v1/snapshots lists them)", api.ErrBadRequest, name)
	}
	s.busy.Lock()
	defer s.busy.Unlock()
	s.setRunning("restoring snapshot " + name)
	defer s.setRunning("")
	from, err := s.restoreSource(ctx, name)
	if err != nil {
		return err
	}
	previous, err := s.getACL(ctx, name)
	if err != nil {
		return err
	}
	var before caRoots
	if s.clientsTLS != nil && s.clientsTLS() {
		before = s.caRoots(ctx) // to tell whether the restore replaces them
	}
	var last error = errNoServer
	for _, addr := range s.servers() {
		r, err := from.Open(ctx, name)
		if err != nil {
			return err
		}
		cl, err := s.consul(addr)
		if err == nil {
			err = cl.Snapshot().Restore(nil, r)
		}
		r.Close()
		if err == nil {
			s.log.Warn("Consul snapshot restored", zap.String("name", name), zap.String("via", addr), zap.String("from", from.String()))
			err := s.afterRestore(ctx, addr, previous)
			// The CA is replaced whether or not the ACL tokens work again;
			// the restore is done even if its caller stops waiting now.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			s.rollClientsAfterRestore(rctx, name, before)
			cancel()
			return err
		}
		last = fmt.Errorf("PUT %s/v1/snapshot: %w", addr, err)
	}
	return last
}

// aclCompanion is what a snapshot's ACL companion holds: the management
// token of the install that took it, which a restore into another install
// needs (the snapshot replaces that install's ACL state).
type aclCompanion struct {
	ManagementToken string `json:"management_token"`
}

// putACL stores the ACL companion of snapshot name, before the snapshot.
func (s *snapshots) putACL(ctx context.Context, name string) error {
	if s.acl == nil {
		return nil
	}
	on, t := s.acl()
	if !on || t.Management == "" || s.target == nil {
		return nil // copies on the servers' volumes only: restored into this install, whose tokens they hold
	}
	b, err := json.Marshal(aclCompanion{ManagementToken: t.Management})
	if err != nil {
		return err
	}
	if err := s.target.PutACL(ctx, name, b); err != nil {
		return fmt.Errorf("store the ACL token beside snapshot %s: %w", name, err)
	}
	return nil
}

// getACL reads the management token stored beside snapshot name ("" when
// none is).
func (s *snapshots) getACL(ctx context.Context, name string) (string, error) {
	if s.acl == nil {
		return "", nil
	}
	if on, _ := s.acl(); !on || s.target == nil {
		return "", nil
	}
	b, err := s.target.GetACL(ctx, name)
	if err != nil || b == nil {
		return "", err
	}
	var c aclCompanion
	if err := json.Unmarshal(b, &c); err != nil {
		return "", fmt.Errorf("the ACL companion of snapshot %s is not JSON", name)
	}
	return c.ManagementToken, nil
}

// afterRestore makes the service's own ACL tokens work in the restored
// ACL state (consulacl.AfterRestore), retrying while the cluster settles.
func (s *snapshots) afterRestore(ctx context.Context, addr, previous string) error {
	if s.acl == nil {
		return nil
	}
	on, t := s.acl()
	if !on {
		return nil
	}
	var err error
	for i := 0; i < 20; i++ {
		var done []string
		if done, err = consulacl.AfterRestore(ctx, addr, previous, t); err == nil {
			s.log.Warn("Consul ACLs after the restore: the service's tokens work", zap.Strings("done", done), zap.String("via", addr))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(3 * time.Second):
		}
	}
	return fmt.Errorf("the snapshot is restored, but the service's ACL tokens do not work in its ACL state: %w (docs/operations.md, backup and restore)", err)
}

func (s *snapshots) setRunning(what string) {
	s.mu.Lock()
	s.running = what
	s.mu.Unlock()
}

// plan is the backup plan: one step, the schedule's state.
func (s *snapshots) plan() plan.Plan {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := plan.Step{ID: "backup-snapshot", Name: "snapshot", Status: plan.Pending}
	where := s.whereLocked()
	switch {
	case s.running != "":
		st.Status, st.Message = plan.InProgress, s.running+" into "+where
	case s.lastErr != "":
		st.Status = plan.Error
		st.Message = fmt.Sprintf("the last snapshot failed: %s; next attempt at %s", s.lastErr, s.next.UTC().Format(time.RFC3339))
	case s.last.Name != "":
		st.Status = plan.Complete
		st.Message = fmt.Sprintf("last snapshot %s (%d bytes, sha256 %s) in %s (%s); next at %s; keeping %d",
			s.last.Name, s.last.Size, s.last.SHA256, where, s.copiesLocked(s.last), s.next.UTC().Format(time.RFC3339), s.keep)
	default:
		st.Message = fmt.Sprintf("every %s into %s, keeping %d; next at %s", s.every, where, s.keep, s.next.UTC().Format(time.RFC3339))
		if !s.listed {
			st.Message = fmt.Sprintf("every %s into %s, keeping %d; reading the target", s.every, where, s.keep)
		}
	}
	if s.restored != "" {
		st.Message += "; last restore: " + s.restored
	}
	ph := plan.Phase{ID: "backup", Name: "backup", Strategy: "serial", Status: st.Status, Steps: []plan.Step{st}}
	p := plan.Plan{Name: backupPlan, Strategy: "serial", Status: st.Status, Phases: []plan.Phase{ph}, Errors: []string{}}
	if st.Status == plan.Error {
		p.Errors = append(p.Errors, st.Message)
	}
	return p
}

// SnapshotList implements api.Snapshots.
func (s *Scheduler) SnapshotList(ctx context.Context) ([]backup.Entry, error) {
	return s.snap.List(ctx)
}

// SnapshotSave implements api.Snapshots.
func (s *Scheduler) SnapshotSave(ctx context.Context) (backup.Entry, error) { return s.snap.Save(ctx) }

// SnapshotRestore implements api.Snapshots.
func (s *Scheduler) SnapshotRestore(ctx context.Context, name string) error {
	return s.snap.Restore(ctx, name)
}
