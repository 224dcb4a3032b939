package scheduler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// After a snapshot restore, the client agents are restarted in place (a
// rolling restart in batches, as a configuration change restarts them)
// when the restore replaced Consul's Connect CA roots. The Connect CA
// signs the client agents' auto_encrypt certificates, and a Consul 1.16.1
// client agent keeps presenting its certificate of the replaced CA until
// it restarts (it learns of new roots only when their raft index rises,
// and a restored state's roots can sit at the index the replaced ones
// had), so an HTTPS caller that trusts the roots Consul lists now gets
// "x509: certificate signed by unknown authority" from it. A restarted
// client gets a certificate of the restored CA at its start.
//
// The roots are compared before and after the restore rather than the
// clients restarted after every restore: restoring a snapshot of the same
// cluster (the common case, undoing a mistake) keeps its CA, and its
// clients' certificates stay valid; restarting every client agent of a
// large cluster for nothing costs their services' registrations a gap.
// When the roots cannot be read, on either side, the clients are
// restarted: a restart in batches costs little, a client presenting an
// untrusted certificate breaks its HTTPS callers.

// caRoots is what GET /v1/connect/ca/roots gave: the IDs of the roots
// Consul lists, or why they could not be read.
type caRoots struct {
	IDs []string
	Err string
}

// clientRollAfterRestore is the decision (pure): whether the client
// agents must restart after a restore that found before and left after,
// and why. clientsTLS: the client agents run with TLS (auto_encrypt);
// without it they hold no certificate of Consul's CA. A client's
// certificate was signed by one of the roots listed before; it stays
// trusted when every one of them is still listed.
func clientRollAfterRestore(clientsTLS bool, before, after caRoots) (bool, string) {
	switch {
	case !clientsTLS:
		return false, "the client agents run without TLS: they hold no certificate of Consul's CA"
	case before.Err != "":
		return true, "Consul's CA roots could not be read before the restore (" + before.Err +
			"): restarting the client agents in case the restore replaced the CA that signed their auto_encrypt certificates"
	case after.Err != "":
		return true, "Consul's CA roots could not be read after the restore (" + after.Err +
			"): restarting the client agents in case the restore replaced the CA that signed their auto_encrypt certificates"
	}
	var gone []string
	for _, id := range before.IDs {
		if !slices.Contains(after.IDs, id) {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		return true, fmt.Sprintf("the snapshot restore replaced Consul's CA roots (%s no longer listed; now %s): "+
			"client agents present auto_encrypt certificates of the replaced CA until they restart",
			strings.Join(gone, ", "), listOrNone(after.IDs))
	}
	return false, fmt.Sprintf("the snapshot restore kept Consul's CA roots (%s): the client agents' certificates stay valid", listOrNone(before.IDs))
}

func listOrNone(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

// restoreRestarts (pure) is the client records to queue for a restart in
// place, each saying why: every client that may be alive and is meant to
// run, unless a restart of it is queued or under way already. A client
// still launching is queued too: it may have fetched its certificate
// before the restore; the rolling restart takes it once it runs.
func restoreRestarts(ts []state.Task, why string) []state.Task {
	var out []state.Task
	for _, t := range ts {
		if t.Role != taskspec.RoleClient || t.Goal != state.GoalRunning || !t.Active() || t.RestartQueued {
			continue
		}
		t.RestartQueued, t.RestartWhy = true, why
		out = append(out, t)
	}
	return out
}

// rollClientsAfterRestore reads Consul's CA roots after the restore,
// decides, and queues the clients' restarts in place (written to the
// state store with the reason, so a restarted scheduler carries on; the
// rolling restart takes them in batches, the update and deploy plans show
// each waiting with the reason).
func (s *snapshots) rollClientsAfterRestore(ctx context.Context, name string, before caRoots) {
	if s.clientsTLS == nil || s.queueRestarts == nil {
		return
	}
	tlsOn := s.clientsTLS()
	var after caRoots
	if tlsOn {
		// Right after a restore the servers may not answer for a moment.
		for i := 0; i < 5; i++ {
			if after = s.caRoots(ctx); after.Err == "" || ctx.Err() != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}
	roll, why := clientRollAfterRestore(tlsOn, before, after)
	msg := fmt.Sprintf("restored %s at %s; %s", name, s.now().UTC().Format(time.RFC3339), why)
	if !roll {
		s.log.Info("after the snapshot restore the client agents keep running", zap.String("name", name), zap.String("why", why))
		s.setRestored(msg)
		return
	}
	names, err := s.queueRestarts(ctx, why)
	if err != nil {
		// The restore is done; only the clients' restart is missing. The
		// operator can restart them (pod restart) or restore again.
		s.log.Error("after the snapshot restore: the client agents' restarts could not be queued; restart them (pod restart)",
			zap.String("name", name), zap.String("why", why), zap.Error(err))
		s.setRestored(msg + "; queueing the client agents' restarts failed: " + err.Error())
		return
	}
	s.log.Warn("after the snapshot restore the client agents are restarted in place, in batches", zap.String("name", name),
		zap.String("why", why), zap.Strings("clients", names))
	s.setRestored(fmt.Sprintf("%s; %d client agent(s) queued for a restart in place, in batches (update plan)", msg, len(names)))
}

// caRoots reads the IDs of Consul's CA roots from the first running
// server that answers.
func (s *snapshots) caRoots(ctx context.Context) caRoots {
	last := errNoServer.Error()
	for _, addr := range s.servers() {
		if ctx.Err() != nil {
			return caRoots{Err: ctx.Err().Error()}
		}
		cl, err := s.consulWithin(addr, 15*time.Second)
		if err != nil {
			last = err.Error()
			continue
		}
		roots, _, err := cl.Connect().CARoots(nil)
		if err != nil {
			last = fmt.Sprintf("GET %s/v1/connect/ca/roots: %v", addr, err)
			continue
		}
		var r caRoots
		for _, x := range roots.Roots {
			r.IDs = append(r.IDs, x.ID)
		}
		slices.Sort(r.IDs)
		return r
	}
	return caRoots{Err: last}
}

func (s *snapshots) setRestored(msg string) {
	s.mu.Lock()
	s.restored = msg
	s.mu.Unlock()
}

// queueRestoreRestarts queues, on the loop, the client agents' restarts
// in place for why (restoreRestarts) and writes them. It returns the
// names queued.
func (s *Scheduler) queueRestoreRestarts(ctx context.Context, why string) ([]string, error) {
	var names []string
	err := s.inLoop(ctx, func() error {
		for _, t := range restoreRestarts(s.tasks.Sorted(), why) {
			s.setTask(t)
			names = append(names, t.Name)
		}
		if err := s.flush(ctx); err != nil {
			return err
		}
		s.last = s.reconcile(s.now())
		return nil
	})
	return names, err
}

// clientsTLS: the client agents run with TLS (auto_encrypt) under the
// current target.
func (s *Scheduler) clientsTLS() bool {
	on, _ := s.Snapshot().Target.TLSFor(taskspec.RoleClient)
	return on
}
