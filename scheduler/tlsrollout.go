package scheduler

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// advanceTLSRollout moves the rollouts of TLS, gossip encryption and
// ACLs to their next phase once the current one is rolled out
// (state.Rollouts decides; the ACL rollout's first phase also waits for
// this scheduler's ACL bootstrap): the new target is stored first, so a
// scheduler killed at any moment resumes the phase it stored, then used.
// A failed write keeps the current phase (retried at the next change).
func (s *Scheduler) advanceTLSRollout(ctx context.Context) {
	next, advanced, why := state.Rollouts(s.target, s.tasks, s.aclBootstrapped.Load())
	if why != s.tlsWhy {
		s.tlsWhy = why
		if why != "" {
			s.log.Info("rollout waits", zap.String("why", why))
		}
	}
	if !advanced {
		return
	}
	next.Secrets = s.target.Secrets
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := putJSON(wctx, s.store, keyTarget, next); err != nil {
		s.log.Error("cannot store the next phase of the rollout; staying in this one", zap.Error(err))
		return
	}
	prev := s.target
	s.target = next
	if err := recordConfiguration(wctx, s.store, next); err != nil {
		s.log.Warn("the configuration of the rollout's phase is not in /v1/configurations", zap.Error(err))
	}
	s.logRolloutPhase("TLS", prev.TLSPhaseNumber(), next.TLSPhaseNumber(), state.TLSPhases, state.TLSPhaseWhat,
		"every agent runs TLS as installed with it", next)
	s.logRolloutPhase("gossip encryption", prev.GossipPhaseNumber(), next.GossipPhaseNumber(), state.GossipPhases, state.GossipPhaseWhat,
		"every agent encrypts and verifies gossip", next)
	s.logRolloutPhase("ACL", prev.ACLPhaseNumber(), next.ACLPhaseNumber(), state.ACLPhases, state.ACLPhaseWhat,
		"every agent enforces ACLs with default policy deny, as installed with them", next)
}

// logRolloutPhase logs one rollout's move from phase from to phase n (0:
// complete); nothing when it was not under way.
func (s *Scheduler) logRolloutPhase(kind string, from, n, phases int, what func(int) string, complete string, next state.Target) {
	switch {
	case from == 0:
	case n == 0:
		s.log.Info(kind+" rollout complete: "+complete, zap.Int("phases", phases))
	default:
		s.log.Info(kind+" rollout: next phase", zap.Int("from", from), zap.Int("phase", n), zap.Int("phases", phases),
			zap.String("what", what(n)), zap.String("server_config_id", next.ServerConfigID),
			zap.String("client_config_id", next.ClientConfigID))
	}
}
