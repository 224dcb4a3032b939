package reconcile

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// RaftServer is one server in Consul's raft configuration, with
// autopilot's verdict on its health.
type RaftServer struct {
	Name    string // Consul node name (the task name)
	Address string // raft address ip:port
	Voter   bool
	Healthy bool
}

// RaftHealth is Consul's view of its servers as the scheduler last read
// it (autopilot server health through a running server's HTTP API). A nil
// *RaftHealth means no Consul server answered at all (the cluster is
// down, or tasks run without Consul as in the simulator's in-process
// mode): then a running, healthy task is all that can be checked.
type RaftHealth struct {
	// At is when the scheduler started reading it (its own clock).
	At time.Time
	// Err: Consul answered but gave no usable view (e.g. no leader during
	// an election); nothing counts as a healthy voter then.
	Err     string
	Servers []RaftServer
}

// VoterWait says why a running server is not a healthy raft voter yet,
// or "" when it is (or when nothing more than running and healthy can be
// known). Replacements and rolling restarts wait on it.
func (h *RaftHealth) VoterWait(t state.Task, tg state.Target) string {
	if !t.Running() {
		return "not running"
	}
	if t.Healthy != nil && !*t.Healthy {
		return "running, not healthy yet"
	}
	if h == nil {
		return ""
	}
	if h.Err != "" {
		return "waiting for Consul's raft configuration: " + h.Err
	}
	if h.At.Before(t.RunningSince) {
		return "running; waiting for Consul's raft configuration read after it started"
	}
	port := t.Ports.Server
	if port <= 0 {
		port = tg.Ports.Server
	}
	addr := ""
	if t.IP != "" {
		addr = net.JoinHostPort(t.IP, strconv.Itoa(port))
	}
	for _, s := range h.Servers {
		if (addr != "" && s.Address != addr) || (addr == "" && s.Name != t.Name) {
			continue
		}
		switch {
		case !s.Voter:
			return fmt.Sprintf("running; a raft non-voter at %s until autopilot promotes it (stable and caught up)", s.Address)
		case !s.Healthy:
			return fmt.Sprintf("running; raft voter at %s not healthy yet (autopilot: not stable, behind the leader or out of contact)", s.Address)
		}
		return ""
	}
	if addr == "" {
		addr = t.Name
	}
	return fmt.Sprintf("running; not in Consul's raft configuration yet (%s)", addr)
}
