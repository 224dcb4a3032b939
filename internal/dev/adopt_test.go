package dev

// Issue 12's adoption tests: the scheduler's state is deleted while the
// cluster runs (stop the scheduler, remove its state directory, start it
// again), and the same cluster comes back: same volumes, same raft node
// IDs, every key.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// volumes lists the persistent volumes of the service's role on every
// agent (agent IP/persistence ID), from the simulated agents' disks.
func volumes(t *testing.T, workDir string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(workDir, "mesos", "agents", "*", "volumes", "roles", faultRole, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range dirs {
		rel, _ := filepath.Rel(filepath.Join(workDir, "mesos", "agents"), d)
		parts := strings.Split(rel, string(filepath.Separator))
		out = append(out, parts[0]+"/"+parts[len(parts)-1])
	}
	sort.Strings(out)
	return out
}

// raftIDs is node name → raft node ID, read through the first server.
func raftIDs(t *testing.T, c *Cluster, tasks []masterTask) map[string]string {
	t.Helper()
	out := map[string]string{}
	eventually(t, time.Minute, "the raft configuration", func() error {
		peers, err := raftPeers(consulClient(t, c, servers(tasks)[0].AgentIP))
		if err != nil {
			return err
		}
		for n, p := range peers {
			out[n] = p.ID
		}
		return nil
	})
	return out
}

// adoptSteps reads the deploy plan's adopt phase: step name → message.
func (fc *faultCluster) adoptSteps(t *testing.T) map[string]string {
	t.Helper()
	resp, err := http.Get(fc.SchedulerURL + "/v1/plans/deploy")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		Phases []struct {
			Name  string `json:"name"`
			Steps []struct {
				Name    string `json:"name"`
				Message string `json:"message"`
			} `json:"steps"`
		} `json:"phases"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, ph := range p.Phases {
		if ph.Name == "adopt" {
			for _, s := range ph.Steps {
				out[s.Name] = s.Message
			}
		}
	}
	return out
}

// loseState stops the scheduler, deletes its state directory and starts
// it again.
func (fc *faultCluster) loseState(t *testing.T) {
	t.Helper()
	fc.stopScheduler(15 * time.Second)
	if err := os.RemoveAll(filepath.Join(fc.opts.WorkDir, "scheduler")); err != nil {
		t.Fatal(err)
	}
	if err := fc.startScheduler(); err != nil {
		t.Fatal(err)
	}
}

func sameCluster(t *testing.T, what string, vols []string, ids map[string]string, gotVols []string, gotIDs map[string]string) {
	t.Helper()
	if fmt.Sprint(gotVols) != fmt.Sprint(vols) {
		t.Fatalf("%s: volumes %v, before %v", what, gotVols, vols)
	}
	if fmt.Sprint(gotIDs) != fmt.Sprint(ids) {
		t.Fatalf("%s: raft node IDs %v, before %v", what, gotIDs, ids)
	}
}

// TestAdoptLostStateWhileRunning: the previous framework is still
// registered (its failover timeout is a week), its tasks run. The new
// scheduler finds it in the master's state and re-subscribes as it: no
// task restarts. A server that fails afterwards relaunches on its own
// volume, its reservation adopted from the offer.
func TestAdoptLostStateWhileRunning(t *testing.T) {
	besideOthers(t)
	// ACLs off: the ACL tokens are lost with the state, and Consul's ACL
	// reset is not automated (docs/security.md, "Lost scheduler state").
	// TLS off: the CA is lost with the state too, and the adopted servers'
	// certificates would not verify against the new one (docs/security.md,
	// "TLS after lost scheduler state").
	fc := startFaultCluster(t, 20, 5, 3, noACL, noTLS)
	tasks, _ := fc.healthy(t, 3, 3*time.Minute)
	writeThroughClient(t, fc.Cluster, tasks, "before-loss", 30)
	written := map[string]int{"before-loss": 30}
	ids, fwID := taskIDs(tasks), frameworkIDOf(t, tasks)
	vols, raft := volumes(t, fc.opts.WorkDir), raftIDs(t, fc.Cluster, tasks)
	if len(vols) != 3 || len(raft) != 3 {
		t.Fatalf("before: volumes %v raft %v", vols, raft)
	}

	start := time.Now()
	fc.loseState(t)
	fc.schedulerSubscribed(t, 2*time.Minute)
	tasks, _ = fc.healthy(t, 3, 3*time.Minute)
	t.Logf("RECOVERY lost scheduler state, cluster running: subscribed and healthy after %s", time.Since(start).Round(100*time.Millisecond))
	if got := frameworkIDOf(t, tasks); got != fwID {
		t.Fatalf("framework %s, was %s", got, fwID)
	}
	if got := taskIDs(tasks); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("tasks changed: %v, before %v", got, ids)
	}
	sameCluster(t, "after the state loss", vols, raft, volumes(t, fc.opts.WorkDir), raftIDs(t, fc.Cluster, tasks))
	checkAllKeys(t, fc.Cluster, tasks, written)
	steps := fc.adoptSteps(t)
	if len(steps) != len(ids) || !strings.Contains(steps["adopt-consul-server-0"], fwID) {
		t.Fatalf("adopt phase %v, want a step for each of %v", steps, ids)
	}
	fc.onlyEnded(t, fwID)

	// A server failing now relaunches on its own volume.
	victim := servers(tasks)[1]
	if err := fc.Sim.KillExecutor(victim.AgentID, victim.FrameworkID, victim.ID); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	fc.waitRelaunched(t, victim.Name, victim.ID)
	tasks, _ = fc.healthy(t, 3, 3*time.Minute)
	t.Logf("RECOVERY adopted server relaunched on its adopted reservation after %s", time.Since(start).Round(100*time.Millisecond))
	sameCluster(t, "after the relaunch", vols, raft, volumes(t, fc.opts.WorkDir), raftIDs(t, fc.Cluster, tasks))
	checkAllKeys(t, fc.Cluster, tasks, written)
	fc.onlyEnded(t, fwID, victim.ID)
}

// TestAdoptLostStateAfterFrameworkRemoved: the scheduler stays away longer
// than the failover timeout, so Mesos removes the framework and kills its
// tasks; then its state is lost. A new framework registers, and each
// server's reservation, offered with no record, is adopted: the servers
// relaunch on their volumes with their raft data.
func TestAdoptLostStateAfterFrameworkRemoved(t *testing.T) {
	besideOthers(t)
	// Known limit (docs/security.md): after Mesos removed the framework, the
	// new scheduler generates a new gossip key while the adopted servers keep
	// the old keyring on their volumes, so new clients cannot join. The
	// adoption itself is what this test checks: gossip encryption off.
	fc := startFaultCluster(t, 21, 5, 3, config.EnvFailover+"=1m", noGossipKey, noACL, noTLS) // as above
	tasks, _ := fc.healthy(t, 3, 3*time.Minute)
	writeThroughClient(t, fc.Cluster, tasks, "before-loss", 30)
	written := map[string]int{"before-loss": 30}
	fwID := frameworkIDOf(t, tasks)
	vols, raft := volumes(t, fc.opts.WorkDir), raftIDs(t, fc.Cluster, tasks)

	fc.stopScheduler(15 * time.Second)
	eventually(t, 4*time.Minute, "Mesos removes the framework after its failover timeout", func() error {
		st, err := readMasterState(fc.Cluster)
		if err != nil {
			return err
		}
		for _, f := range st.Frameworks {
			if f.ID == fwID {
				return fmt.Errorf("framework %s still registered with %d tasks", fwID, len(f.Tasks))
			}
		}
		return nil
	})
	if got := volumes(t, fc.opts.WorkDir); fmt.Sprint(got) != fmt.Sprint(vols) {
		t.Fatalf("volumes after the framework's removal: %v, before %v", got, vols)
	}
	start := time.Now()
	fc.loseState(t)
	tasks, _ = fc.healthy(t, 3, 5*time.Minute)
	t.Logf("RECOVERY lost scheduler state after the framework was removed: healthy after %s", time.Since(start).Round(100*time.Millisecond))
	if got := frameworkIDOf(t, tasks); got == fwID {
		t.Fatalf("the removed framework %s came back", got)
	}
	sameCluster(t, "after adoption", vols, raft, volumes(t, fc.opts.WorkDir), raftIDs(t, fc.Cluster, tasks))
	checkAllKeys(t, fc.Cluster, tasks, written)
	steps := fc.adoptSteps(t)
	for i := 0; i < 3; i++ {
		if m := steps[fmt.Sprintf("adopt-consul-server-%d", i)]; !strings.Contains(m, "found with no record") {
			t.Fatalf("adopt phase %v: consul-server-%d not adopted from its reservation", steps, i)
		}
	}
}
