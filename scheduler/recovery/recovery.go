// Package recovery decides, from the scheduler's observations of its
// Consul servers, whether the cluster has lost its raft quorum (pure: the
// observations and the time are passed in). Quorum is lost when no server
// has known a leader for longer than a threshold while fewer than a
// majority of the configured servers answer. It clears by itself as soon
// as a leader is known again or a majority answers. Nothing here acts:
// outage recovery (`recover --confirm`) is always the operator's call.
package recovery

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// DefaultThreshold is how long the servers may have no leader, with fewer
// than a majority answering, before quorum counts as lost.
const DefaultThreshold = 30 * time.Second

// Server is what one configured server said of itself when asked (or why
// it did not answer).
type Server struct {
	Name      string `json:"name"`
	Address   string `json:"address,omitempty"`      // HTTP ip:port, "" when not placed
	RaftAddr  string `json:"raft_address,omitempty"` // ip:server port
	Reachable bool   `json:"reachable"`
	Err       string `json:"error,omitempty"`
	NodeID    string `json:"node_id,omitempty"`
	RaftState string `json:"raft_state,omitempty"`
	LastIndex uint64 `json:"last_index,omitempty"`
	Leader    string `json:"leader,omitempty"` // the leader it knows, "" if none
}

// Observation is one round of asking every configured server.
type Observation struct {
	At         time.Time
	Configured int
	Servers    []Server
}

// Quorum is the verdict on the latest observation. LeaderlessSince and
// SeenLeader carry over from one verdict to the next.
type Quorum struct {
	ObservedAt time.Time `json:"observed_at"`
	Configured int       `json:"configured"`
	Reachable  int       `json:"reachable"`
	Majority   int       `json:"majority"`
	Leader     string    `json:"leader,omitempty"`
	// LeaderlessSince is when the servers were first seen without a
	// leader (zero while one is known).
	LeaderlessSince time.Time `json:"leaderless_since,omitempty"`
	// SeenLeader: a leader was seen at least once (a cluster that never
	// bootstrapped has no quorum to lose).
	SeenLeader bool   `json:"seen_leader"`
	Lost       bool   `json:"quorum_lost"`
	Threshold  string `json:"threshold"`
	// Survivors are the servers that answer, freshest raft log first.
	Survivors   []Server `json:"survivors,omitempty"`
	Freshest    string   `json:"freshest,omitempty"`
	LostServers []string `json:"lost_servers,omitempty"`
	Summary     string   `json:"summary"`
	Servers     []Server `json:"servers"`
}

// Assess reads one observation, given the previous verdict (zero value at
// start) and the threshold.
func Assess(prev Quorum, obs Observation, threshold time.Duration) Quorum {
	q := Quorum{ObservedAt: obs.At, Configured: obs.Configured, Majority: obs.Configured/2 + 1, SeenLeader: prev.SeenLeader,
		Threshold: threshold.String(), Servers: obs.Servers}
	indexed := false
	for _, s := range obs.Servers {
		if !s.Reachable {
			q.LostServers = append(q.LostServers, s.Name)
			continue
		}
		q.Reachable++
		q.Survivors = append(q.Survivors, s)
		if q.Leader == "" && s.Leader != "" {
			q.Leader = s.Leader
		}
		if s.LastIndex > 0 {
			indexed = true
		}
	}
	sort.SliceStable(q.Survivors, func(i, j int) bool {
		if q.Survivors[i].LastIndex != q.Survivors[j].LastIndex {
			return q.Survivors[i].LastIndex > q.Survivors[j].LastIndex
		}
		return q.Survivors[i].Name < q.Survivors[j].Name
	})
	if len(q.Survivors) > 0 {
		q.Freshest = q.Survivors[0].Name
	}
	if q.Leader != "" {
		q.SeenLeader = true
		q.Summary = fmt.Sprintf("quorum: yes, leader %s; %d of %d servers answer", q.Leader, q.Reachable, q.Configured)
		return q
	}
	q.LeaderlessSince = prev.LeaderlessSince
	if q.LeaderlessSince.IsZero() || q.LeaderlessSince.After(obs.At) {
		q.LeaderlessSince = obs.At
	}
	dur := obs.At.Sub(q.LeaderlessSince).Round(time.Second)
	switch {
	case obs.Configured == 0:
		q.Summary = "no server is configured"
	case !q.SeenLeader && !indexed:
		q.Summary = fmt.Sprintf("no leader yet and no raft log on any server that answers (%d of %d): the cluster has not bootstrapped", q.Reachable, q.Configured)
	case q.Reachable >= q.Majority:
		q.Summary = fmt.Sprintf("no leader for %s, but %d of %d servers answer (a majority is %d): an election should end this",
			dur, q.Reachable, q.Configured, q.Majority)
	case obs.At.Sub(q.LeaderlessSince) < threshold:
		q.Summary = fmt.Sprintf("no leader for %s and only %d of %d servers answer (a majority is %d): quorum counts as lost after %s",
			dur, q.Reachable, q.Configured, q.Majority, threshold)
	default:
		q.Lost = true
		q.Summary = lostSummary(q, dur)
	}
	return q
}

func lostSummary(q Quorum, dur time.Duration) string {
	var surv []string
	for _, s := range q.Survivors {
		surv = append(surv, fmt.Sprintf("%s (raft index %d)", s.Name, s.LastIndex))
	}
	if len(surv) == 0 {
		surv = []string{"none"}
	}
	msg := fmt.Sprintf("QUORUM LOST: no leader for %s and only %d of %d servers answer (a majority is %d); survivors: %s; lost: %s",
		dur, q.Reachable, q.Configured, q.Majority, strings.Join(surv, ", "), strings.Join(orNone(q.LostServers), ", "))
	if len(q.Survivors) == 0 {
		return msg + ". No server survives: restore a snapshot into a new install (docs/operations.md)"
	}
	return msg + ". Nothing happens by itself: an operator runs `dcos-consul consul recover --confirm` to restart the survivors with a raft peers.json naming only them and replace the lost servers with new ones"
}

func orNone(s []string) []string {
	if len(s) == 0 {
		return []string{"none"}
	}
	return s
}

// Work is the outage recovery the operator confirmed that is not done
// yet, as the task records show it.
type Work struct {
	// Restarting: survivors whose next incarnation starts with peers.json.
	Restarting []string
	// Replacing: lost servers still to be replaced by new ones (new
	// volumes), one at a time once the survivors have a leader.
	Replacing []string
}

// None reports whether no confirmed recovery is under way.
func (w Work) None() bool { return len(w.Restarting) == 0 && len(w.Replacing) == 0 }

// PhaseName and StepName name the recovery plan's outage phase and step.
const (
	PhaseName = "outage"
	StepName  = "quorum"
)

// The plan statuses Step answers: plan.InProgress and plan.Error, written
// out so that this package (which the operator CLI imports for Quorum)
// does not pull in plan, state and config, and with config Consul's agent
// configuration code (TestStatusesArePlans checks they agree).
const (
	statusInProgress = "IN_PROGRESS"
	statusError      = "ERROR"
)

// Step is the recovery plan's outage step: quorum lost (ERROR, with the
// survivors, their raft indices and what the operator runs), a confirmed
// recovery under way (IN_PROGRESS), or nothing (ok false) when quorum is
// fine and nothing is under way.
func Step(q Quorum, w Work) (status, message string, ok bool) {
	switch {
	case !w.None():
		msg := "outage recovery confirmed by the operator"
		if len(w.Restarting) > 0 {
			msg += "; restarting " + strings.Join(w.Restarting, ", ") + " with a raft peers.json naming only the survivors"
		}
		if len(w.Replacing) > 0 {
			msg += "; then replacing the lost " + strings.Join(w.Replacing, ", ") +
				" by new servers on new volumes, one at a time, once the survivors have a leader"
		}
		if q.Summary != "" {
			msg += "; now: " + q.Summary
		}
		return statusInProgress, msg, true
	case q.Lost:
		return statusError, q.Summary, true
	}
	return "", "", false
}
