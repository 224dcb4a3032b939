package reconcile

import (
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// TestRecoverReplacesLostServersOneAtATime: after an outage recovery is
// confirmed, the servers lost then wait for the survivors' leader, are
// never relaunched on their old data, and are replaced one at a time
// through the normal replacement path (old peer removed first, new
// volume); one that comes back with its old data is killed first.
func TestRecoverReplacesLostServersOneAtATime(t *testing.T) {
	tg := target()
	lost := func(i int, st string) state.Task {
		s := srv(i, st)
		s.RecoverReplace = true
		s.FailingSince = now.Add(-time.Minute)
		return s
	}
	survivor := srv(2, "TASK_RUNNING")
	noLeader := &RaftHealth{At: now, Err: "No cluster leader"}
	ledBySurvivor := raftOf(now, nil, survivor)

	t.Run("no leader yet: nothing moves, nothing relaunches", func(t *testing.T) {
		ts := tasks(lost(0, "TASK_UNREACHABLE"), lost(1, "TASK_LOST"), survivor)
		r := Reconcile(Input{Target: tg, Tasks: ts, Now: now, Raft: noLeader})
		if len(r.Replace) != 0 || len(r.Launch) != 0 || len(r.Kill) != 0 {
			t.Fatalf("replace %v launch %v kill %s", r.Replace, keys(r.Launch), kills(r))
		}
	})
	t.Run("the survivors lead: the first lost server is replaced, the other waits", func(t *testing.T) {
		ts := tasks(lost(0, "TASK_UNREACHABLE"), lost(1, "TASK_LOST"), survivor)
		r := Reconcile(Input{Target: tg, Tasks: ts, Now: now, Raft: ledBySurvivor})
		if len(r.Replace) != 1 || r.Replace[0] != "consul-server-0" {
			t.Fatalf("replace %v, want consul-server-0 only", r.Replace)
		}
		n := r.Tasks["consul-server-0"]
		if n.RecoverReplace || !n.Replacement || n.Reservation != nil || n.OldPeer != "10.0.0.0:8300" {
			t.Fatalf("moved record %+v: want a replacement on a new volume, its old peer to remove", n)
		}
		if _, ok := r.Launch["consul-server-1"]; ok {
			t.Fatalf("consul-server-1 relaunched on its old data: %v", r.Launch)
		}
		if !r.Tasks["consul-server-1"].RecoverReplace {
			t.Fatal("consul-server-1 forgot it is to be replaced")
		}
		// The next round, with the first replacement placed but not a
		// voter yet: the second still waits.
		ts = r.Tasks
		first := ts["consul-server-0"]
		first.OldPeer, first.TaskID, first.State, first.AgentID, first.IP = "", "consul-server-0__9", "TASK_RUNNING", "S9", "10.0.0.9"
		first.RunningSince = now
		ts["consul-server-0"] = first
		r = Reconcile(Input{Target: tg, Tasks: ts, Now: now, Raft: ledBySurvivor})
		if len(r.Replace) != 0 {
			t.Fatalf("replace %v while consul-server-0's replacement is not a voter yet", r.Replace)
		}
		// Once it is a healthy voter, the second is replaced.
		r = Reconcile(Input{Target: tg, Tasks: r.Tasks, Now: now, Raft: raftOf(now.Add(HealthLag), nil, first, survivor)})
		if len(r.Replace) != 1 || r.Replace[0] != "consul-server-1" {
			t.Fatalf("replace %v, want consul-server-1; settling %v; %+v", r.Replace, r.Settling, r.Tasks["consul-server-0"])
		}
	})
	t.Run("a lost server that came back with its old data is killed, then replaced", func(t *testing.T) {
		ts := tasks(lost(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), survivor)
		r := Reconcile(Input{Target: tg, Tasks: ts, Now: now, Raft: ledBySurvivor})
		if kills(r) != "[consul-server-0]" || len(r.Replace) != 0 {
			t.Fatalf("kill %s replace %v", kills(r), r.Replace)
		}
		ts["consul-server-0"] = lost(0, "TASK_KILLED")
		r = Reconcile(Input{Target: tg, Tasks: ts, Now: now, Raft: ledBySurvivor})
		if len(r.Replace) != 1 || len(r.Launch) != 1 || r.Launch["consul-server-0"] == "" || r.Tasks["consul-server-0"].AgentID != "" {
			t.Fatalf("replace %v launch %v: want consul-server-0 placed anew", r.Replace, r.Launch)
		}
	})
}
