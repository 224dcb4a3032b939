package scheduler

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/api"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// Recover implements api.Recoverer: each surviving server is restarted in
// place with peers written to its raft/peers.json (outage recovery after
// a lost quorum; the operator confirmed it). The records are written
// before it answers.
func (s *Scheduler) Recover(ctx context.Context, survivors []string, peers []taskspec.RaftPeer) error {
	if len(survivors) == 0 || len(peers) == 0 {
		return fmt.Errorf("%w: name the surviving servers and their raft peers", api.ErrBadRequest)
	}
	done := make(chan error, 1)
	f := func() {
		for _, n := range survivors {
			t, ok := s.tasks[n]
			if !ok || t.Role != taskspec.RoleServer || !t.Active() || t.Reservation == nil {
				done <- fmt.Errorf("%w: %q is not a running server on its own volume", api.ErrBadRequest, n)
				return
			}
		}
		for _, n := range survivors {
			t := s.tasks[n]
			t.RecoverPeers = append([]taskspec.RaftPeer(nil), peers...)
			t.Goal = state.GoalRestart
			s.setTask(t)
		}
		if err := s.flush(ctx); err != nil {
			done <- err
			return
		}
		s.log.Warn("outage recovery confirmed: restarting the surviving servers with peers.json",
			zap.Strings("survivors", survivors), zap.Any("peers", peers))
		done <- nil
	}
	select {
	case s.cmds <- f:
	case <-s.done:
		return errStopping
	case <-ctx.Done():
		return fmt.Errorf("the scheduler is busy: %w", ctx.Err())
	}
	select {
	case err := <-done:
		return err
	case <-s.done:
		return errStopping
	case <-ctx.Done():
		return ctx.Err()
	}
}
