package agent

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
)

// Restart simulates the agent process dying and being started again after
// down with the same work dir and --recover=reconnect
// (11-agent-restart-checkpoint.txt, 11b-agent-restart-unacked-update.txt).
// It is an addition to the master contract, for fault tests.
//
// At once: the executor API stops listening and every executor stream ends
// with a plain EOF; nothing reaches the master; executor processes keep
// running. After down: executors of non-checkpointing frameworks are
// destroyed (their tasks become TASK_LOST, TASK_GONE if partition-aware,
// REASON_AGENT_RESTARTED); the API listens again and, for
// SubscriptionBackoffMax (the executor re-registration timeout, 2 s by
// default), accepts only SUBSCRIBE (other calls get 503 "Agent has not
// finished recovery"). Executors that did not re-subscribe by then are
// destroyed and their tasks become TASK_LOST/TASK_GONE with
// REASON_EXECUTOR_REREGISTRATION_TIMEOUT. Then the agent re-registers:
// held notifications go out and every stream head is resent.
// An in-process agent is just unreachable for down.
func (a *Agent) Restart(down time.Duration) error {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return errors.New("agent: Restart after Stop")
	}
	if a.restarting {
		a.mu.Unlock()
		return fmt.Errorf("agent %s: already restarting", a.cfg.ID.Value)
	}
	a.restarting = true
	srv := a.srv
	a.srv, a.ln = nil, nil
	for _, f := range a.frameworks {
		for _, e := range f.executors {
			e.reregistered = false
			if e.sub != nil {
				e.sub.close()
				e.sub = nil
			}
		}
	}
	a.restartTimer = time.AfterFunc(down, a.recover)
	a.event("agent restarting", zap.Duration("down", down))
	a.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	return nil
}

func (a *Agent) recover() {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return
	}
	if a.cfg.InProcess {
		a.restarting = false
		if !a.partitioned {
			a.resendAll()
		}
		a.mu.Unlock()
		return
	}
	for _, f := range a.frameworks {
		if f.info.GetCheckpoint() {
			continue
		}
		for _, e := range f.executors {
			a.destroyForRecovery(f, e, mesos.REASON_AGENT_RESTARTED, "Agent restarted")
		}
	}
	// A command executor re-registers at once (it is part of the agent here;
	// a real one reconnects within its subscription backoff).
	for _, f := range a.frameworks {
		for _, e := range f.executors {
			if e.command != nil && e.state != execTerminated {
				e.reregistered = true
			}
		}
	}
	a.recovering = true
	a.mu.Unlock()

	var err error
	for i := 0; i < 50; i++ { // the old sockets may take a moment to go
		if err = a.listen(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil || a.stopped {
		return
	}
	wait := a.cfg.SubscriptionBackoffMax
	a.restartTimer = time.AfterFunc(wait, func() { a.finishRecovery(wait) })
}

func (a *Agent) finishRecovery(wait time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	for _, f := range a.frameworks {
		for _, e := range f.executors {
			if !e.reregistered {
				a.destroyForRecovery(f, e, mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT,
					"Executor did not reregister within "+stoutDuration(wait))
			}
		}
	}
	a.recovering = false
	a.restarting = false
	if !a.partitioned {
		a.resendAll()
	}
}

// destroyForRecovery kills an executor the restarted agent does not keep;
// its unfinished tasks become TASK_LOST (TASK_GONE if partition-aware).
// Caller holds mu.
func (a *Agent) destroyForRecovery(f *framework, e *executor, reason mesos.TaskStatus_Reason, msg string) {
	if e.state == execTerminated {
		return
	}
	state := mesos.TASK_LOST
	if partitionAware(f.info) {
		state = mesos.TASK_GONE
	}
	e.termState, e.termReason, e.termMessage = &state, &reason, msg
	e.state = execTerminating
	e.stopTimers()
	a.log.Warn("destroying executor after agent restart", append(execFields(e), zap.String("reason", msg))...)
	if e.pid > 0 {
		_ = syscall.Kill(-e.pid, syscall.SIGKILL)
	} else {
		e.destroyRequested = true
	}
}
