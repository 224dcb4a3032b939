package scheduler

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// advanceTLSRollout moves the rollout of TLS to its next phase once the
// current one is rolled out (state.TLSRollout decides): the new target is
// stored first, so a scheduler killed at any moment resumes the phase it
// stored, then used. A failed write keeps the current phase (retried at
// the next change).
func (s *Scheduler) advanceTLSRollout(ctx context.Context) {
	next, advanced, why := state.TLSRollout(s.target, s.tasks)
	if why != s.tlsWhy {
		s.tlsWhy = why
		if why != "" {
			s.log.Info("TLS rollout waits", zap.String("why", why))
		}
	}
	if !advanced {
		return
	}
	next.Secrets = s.target.Secrets
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := putJSON(wctx, s.store, keyTarget, next); err != nil {
		s.log.Error("cannot store the next phase of the TLS rollout; staying in this one", zap.Error(err))
		return
	}
	from := s.target.TLSPhaseNumber()
	s.target = next
	if err := recordConfiguration(wctx, s.store, next); err != nil {
		s.log.Warn("the configuration of the TLS rollout's phase is not in /v1/configurations", zap.Error(err))
	}
	n := next.TLSPhaseNumber()
	if n == 0 {
		s.log.Info("TLS rollout complete: every agent runs TLS as installed with it", zap.Int("phases", state.TLSPhases))
		return
	}
	s.log.Info("TLS rollout: next phase", zap.Int("from", from), zap.Int("phase", n), zap.Int("phases", state.TLSPhases),
		zap.String("what", state.TLSPhaseWhat(n)), zap.String("server_config_id", next.ServerConfigID),
		zap.String("client_config_id", next.ClientConfigID))
}
