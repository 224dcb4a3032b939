package scheduler

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/api"
	"github.com/dcos-consul/dcos-consul/scheduler/recovery"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// Recover implements api.Recoverer: each surviving server is restarted in
// place with peers written to its raft/peers.json (outage recovery after
// a lost quorum; the operator confirmed it), and every other configured
// server is marked to be replaced by a new server (new volume) once the
// survivors have a leader, one at a time through the normal replacement
// path (reconcile). With no survivors and no peers given, the scheduler's
// own verdict names them. The records are written before it answers.
func (s *Scheduler) Recover(ctx context.Context, survivors []string, peers []taskspec.RaftPeer) (api.RecoverResponse, error) {
	var res api.RecoverResponse
	err := s.inLoop(ctx, func() error {
		var err error
		res, err = s.recoverOnLoop(ctx, survivors, peers)
		return err
	})
	return res, err
}

func (s *Scheduler) recoverOnLoop(ctx context.Context, survivors []string, peers []taskspec.RaftPeer) (api.RecoverResponse, error) {
	var none api.RecoverResponse
	v := s.quorum.verdict
	if !v.ObservedAt.IsZero() && v.Leader != "" {
		return none, fmt.Errorf("%w: the scheduler's last look at the servers found a leader (%s): %s", api.ErrConflict, v.Leader, v.Summary)
	}
	if len(survivors) == 0 && len(peers) == 0 {
		var err error
		if survivors, peers, err = survivorsOf(v); err != nil {
			return none, err
		}
	}
	if len(survivors) == 0 || len(peers) == 0 {
		return none, fmt.Errorf("%w: name the surviving servers and their raft peers", api.ErrBadRequest)
	}
	surviving := map[string]bool{}
	for _, n := range survivors {
		t, ok := s.tasks[n]
		if !ok || t.Role != taskspec.RoleServer || !t.Active() || t.Reservation == nil {
			return none, fmt.Errorf("%w: %q is not a running server on its own volume", api.ErrBadRequest, n)
		}
		surviving[n] = true
	}
	for _, n := range survivors {
		t := s.tasks[n]
		t.RecoverPeers = append([]taskspec.RaftPeer(nil), peers...)
		t.Goal = state.GoalRestart
		s.setTask(t)
	}
	var replaced []string
	for i := 0; i < s.target.Servers; i++ {
		t, ok := s.tasks[state.ServerName(i)]
		// A server already moved to a new volume is a new server: it
		// joins the survivors once they lead.
		if !ok || surviving[t.Name] || t.AgentID == "" || t.Replacement {
			continue
		}
		t.RecoverReplace = true
		s.setTask(t)
		replaced = append(replaced, t.Name)
	}
	if err := s.flush(ctx); err != nil {
		return none, err
	}
	s.log.Warn("outage recovery confirmed: restarting the surviving servers with peers.json; the lost servers are replaced by new ones once they lead",
		zap.Strings("survivors", survivors), zap.Any("peers", peers), zap.Strings("replaced", replaced))
	return api.RecoverResponse{RecoverRequest: api.RecoverRequest{Survivors: survivors, Peers: peers}, Replaced: replaced}, nil
}

// survivorsOf are the survivors and their raft peers from the scheduler's
// own verdict, which must say quorum is lost.
func survivorsOf(v recovery.Quorum) ([]string, []taskspec.RaftPeer, error) {
	if v.ObservedAt.IsZero() {
		return nil, nil, fmt.Errorf("%w: the scheduler has not looked at the servers yet; name the survivors and peers", api.ErrConflict)
	}
	if !v.Lost {
		return nil, nil, fmt.Errorf("%w: the scheduler does not see a lost quorum: %s", api.ErrConflict, v.Summary)
	}
	var names []string
	var peers []taskspec.RaftPeer
	for _, sv := range v.Survivors {
		if sv.NodeID == "" || sv.RaftAddr == "" {
			return nil, nil, fmt.Errorf("%w: survivor %s did not tell its node ID or raft address: %s", api.ErrConflict, sv.Name, sv.Err)
		}
		names = append(names, sv.Name)
		peers = append(peers, taskspec.RaftPeer{ID: sv.NodeID, Address: sv.RaftAddr})
	}
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("%w: no server survives: %s", api.ErrConflict, v.Summary)
	}
	return names, peers, nil
}

// RecoverStatus implements api.Recoverer: the scheduler's latest verdict
// on Consul's quorum (nil before the first look).
func (s *Scheduler) RecoverStatus() *recovery.Quorum {
	return s.Snapshot().Quorum
}
