package scheduler

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// advanceTLSRollout moves the rollouts of TLS and gossip encryption to
// their next phase once the current one is rolled out (state.Rollouts
// decides): the new target is
// stored first, so a scheduler killed at any moment resumes the phase it
// stored, then used. A failed write keeps the current phase (retried at
// the next change).
func (s *Scheduler) advanceTLSRollout(ctx context.Context) {
	next, advanced, why := state.Rollouts(s.target, s.tasks)
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
	from, gfrom := s.target.TLSPhaseNumber(), s.target.GossipPhaseNumber()
	s.target = next
	if err := recordConfiguration(wctx, s.store, next); err != nil {
		s.log.Warn("the configuration of the TLS rollout's phase is not in /v1/configurations", zap.Error(err))
	}
	if from > 0 {
		if n := next.TLSPhaseNumber(); n == 0 {
			s.log.Info("TLS rollout complete: every agent runs TLS as installed with it", zap.Int("phases", state.TLSPhases))
		} else {
			s.log.Info("TLS rollout: next phase", zap.Int("from", from), zap.Int("phase", n), zap.Int("phases", state.TLSPhases),
				zap.String("what", state.TLSPhaseWhat(n)), zap.String("server_config_id", next.ServerConfigID),
				zap.String("client_config_id", next.ClientConfigID))
		}
	}
	if gfrom > 0 {
		if n := next.GossipPhaseNumber(); n == 0 {
			s.log.Info("gossip encryption rollout complete: every agent encrypts and verifies gossip", zap.Int("phases", state.GossipPhases))
		} else {
			s.log.Info("gossip encryption rollout: next phase", zap.Int("from", gfrom), zap.Int("phase", n), zap.Int("phases", state.GossipPhases),
				zap.String("what", state.GossipPhaseWhat(n)), zap.String("server_config_id", next.ServerConfigID),
				zap.String("client_config_id", next.ClientConfigID))
		}
	}
}
