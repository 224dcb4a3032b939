package dev

// Issue 12 with the defaults (ACLs and gossip encryption on): the
// scheduler's state, and with it every secret, is deleted while the
// cluster runs; the new scheduler gets the secrets back from the copy on
// the servers' volumes, and the same management token still works.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// serverCopies lists the secrets copies on the servers' volumes, failing
// for any open to group or others.
func serverCopies(t *testing.T, workDir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(filepath.Join(workDir, "mesos"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != taskspec.SecretsCopyFile {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", p, fi.Mode().Perm())
		}
		if strings.Contains(p, "/volumes/") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestAdoptLostStateWithSecrets: defaults (ACLs, gossip encryption). The
// state is deleted while the cluster runs; the scheduler adopts the
// running servers, asks them for the copy of the secrets on their volumes,
// verifies it with Consul and stores it: the management token read before
// still reads every key, the operator token is the one from before, every
// server is a voter, a new client joins with the recovered gossip key and
// agent token, and no secret shows anywhere it does not belong.
func TestAdoptLostStateWithSecrets(t *testing.T) {
	besideOthers(t)
	adoptLostStateWithSecrets(t, 29)
}

// TestAdoptLostStateWithSecretsTLS: the same with TLS on: the copy's CA
// verifies the servers' HTTPS API before the copy is accepted, and the
// servers keep their certificates.
func TestAdoptLostStateWithSecretsTLS(t *testing.T) {
	besideOthers(t)
	adoptLostStateWithSecrets(t, 31, config.EnvTLS+"=true")
}

func adoptLostStateWithSecrets(t *testing.T, n int, extraEnv ...string) {
	fc := startFaultCluster(t, n, 5, 3, extraEnv...)
	tasks, _ := fc.healthy(t, 3, 4*time.Minute)
	opBefore, _ := os.ReadFile(fc.OperatorTokenFile())
	mgmtBefore, err := readManagementToken(fc.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	writeThroughClient(t, fc.Cluster, tasks, "before-loss", 30)
	written := map[string]int{"before-loss": 30}
	ids, fwID := taskIDs(tasks), frameworkIDOf(t, tasks)
	vols, raft := volumes(t, fc.opts.WorkDir), raftIDs(t, fc.Cluster, tasks)
	eventually(t, time.Minute, "a secrets copy on every server's volume", func() error {
		if got := serverCopies(t, fc.opts.WorkDir); len(got) != 3 {
			return fmt.Errorf("copies %v, want 3", got)
		}
		return nil
	})
	// A gossip key rotation before the loss: every copy is refreshed (a
	// stale copy's key would not be the cluster's, and be refused).
	before := map[string][]byte{}
	for _, p := range serverCopies(t, fc.opts.WorkDir) {
		before[p], _ = os.ReadFile(p)
	}
	req, _ := http.NewRequest(http.MethodPost, fc.SchedulerURL+"/v1/keyring/rotate", nil)
	req.Header.Set("X-Dcos-Consul-Token", strings.TrimSpace(string(opBefore)))
	resp, err := (&http.Client{Timeout: 4 * time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("keyring rotate: %s", resp.Status)
	}
	eventually(t, 2*time.Minute, "every server's copy refreshed after the rotation", func() error {
		for p, b := range before {
			if now, _ := os.ReadFile(p); string(now) == string(b) {
				return fmt.Errorf("%s unchanged", p)
			}
		}
		return nil
	})

	start := time.Now()
	fc.loseState(t)
	fc.schedulerSubscribed(t, 2*time.Minute)
	schedLog := filepath.Join(fc.opts.WorkDir, "scheduler.log")
	eventually(t, 3*time.Minute, "the secrets recovered from a server's copy", func() error {
		if countInFile(schedLog, "the service's secrets are recovered from a server's copy") < 1 {
			return fmt.Errorf("not in the scheduler log yet")
		}
		return nil
	})
	t.Logf("RECOVERY secrets recovered from a server volume's copy after %s", time.Since(start).Round(100*time.Millisecond))
	tasks, _ = fc.healthy(t, 3, 4*time.Minute)
	t.Logf("RECOVERY lost scheduler state with ACLs and gossip encryption: healthy after %s", time.Since(start).Round(100*time.Millisecond))
	if got := frameworkIDOf(t, tasks); got != fwID {
		t.Fatalf("framework %s, was %s", got, fwID)
	}
	if got := taskIDs(tasks); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("tasks changed: %v, before %v", got, ids)
	}
	if opAfter, _ := os.ReadFile(fc.OperatorTokenFile()); string(opAfter) != string(opBefore) {
		t.Fatal("the operator token is not the one from before the state loss")
	}
	mgmtAfter, err := readManagementToken(fc.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	if mgmtAfter != mgmtBefore {
		t.Fatal("the scheduler serves another management token than before the state loss")
	}
	// Every key, read with the management token of before (cached by
	// consulClient).
	checkAllKeys(t, fc.Cluster, tasks, written)
	sameCluster(t, "after the state loss", vols, raft, volumes(t, fc.opts.WorkDir), raftIDs(t, fc.Cluster, tasks))
	eventually(t, 2*time.Minute, "every server a voter", func() error {
		peers, err := raftPeers(consulClient(t, fc.Cluster, servers(tasks)[0].AgentIP))
		if err != nil {
			return err
		}
		for n, p := range peers {
			if !p.Voter {
				return fmt.Errorf("%s is not a voter", n)
			}
		}
		if len(peers) != 3 {
			return fmt.Errorf("%d peers", len(peers))
		}
		return nil
	})
	eventually(t, 3*time.Minute, "the ACL bootstrap confirms the recovered tokens", func() error {
		if countInFile(schedLog, aclBootstrappedLine) < 2 {
			return fmt.Errorf("the new scheduler did not log %q yet", aclBootstrappedLine)
		}
		return nil
	})

	// A new client joins with the recovered gossip key and agent token.
	added := fc.addAgentWithClient(t)
	cc := consulClient(t, fc.Cluster, servers(tasks)[0].AgentIP)
	eventually(t, 3*time.Minute, "the new client alive in the LAN pool", func() error {
		members, err := cc.Agent().Members(false)
		if err != nil {
			return err
		}
		for _, m := range members {
			if m.Addr == added.AgentIP && m.Status == 1 {
				return nil
			}
		}
		return fmt.Errorf("%s is not an alive member", added.AgentIP)
	})
	eventually(t, 2*time.Minute, "health 200", func() error { return getOK(fc.SchedulerURL + "/v1/health") })
	tasks = runningTasks(t, fc.Cluster)
	collected := collectObservable(t, fc.Cluster)
	fc.stopScheduler(15 * time.Second) // its store is read next
	sec := storedSecrets(t, fc.opts.WorkDir)
	if sec.ManagementToken != mgmtBefore || strings.TrimSpace(string(opBefore)) != sec.OperatorToken {
		t.Fatal("the stored secrets are not the ones from before the state loss")
	}
	scanForSecrets(t, fc.opts.WorkDir, collected, sec, tasks, nil)
}

// TestAdoptLostStateAfterFrameworkRemovedWithSecrets: defaults. Mesos
// removed the framework (its tasks killed), then the state is lost. The
// new framework adopts each server's reservation; the relaunched servers
// find the scheduler's secrets lost (409) and present the copy on their
// own volumes; no server runs to verify it, so it is accepted on the
// adopted volume's word and the ACL bootstrap confirms its management
// token. The same management token reads every key; a new client joins.
func TestAdoptLostStateAfterFrameworkRemovedWithSecrets(t *testing.T) {
	besideOthers(t)
	fc := startFaultCluster(t, 30, 5, 3, config.EnvFailover+"=1m")
	tasks, _ := fc.healthy(t, 3, 4*time.Minute)
	mgmtBefore, err := readManagementToken(fc.Cluster)
	if err != nil {
		t.Fatal(err)
	}
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
	start := time.Now()
	fc.loseState(t)
	schedLog := filepath.Join(fc.opts.WorkDir, "scheduler.log")
	eventually(t, 5*time.Minute, "the secrets recovered from a server's copy", func() error {
		if countInFile(schedLog, "the service's secrets are recovered from a server's copy") < 1 {
			return fmt.Errorf("not in the scheduler log yet")
		}
		return nil
	})
	t.Logf("RECOVERY secrets recovered from a relaunched server's volume after %s", time.Since(start).Round(100*time.Millisecond))
	tasks, _ = fc.healthy(t, 3, 5*time.Minute)
	t.Logf("RECOVERY lost state after the framework was removed, with ACLs and gossip encryption: healthy after %s", time.Since(start).Round(100*time.Millisecond))
	if mgmtAfter, err := readManagementToken(fc.Cluster); err != nil || mgmtAfter != mgmtBefore {
		t.Fatalf("the management token after recovery: same %v, %v", mgmtAfter == mgmtBefore, err)
	}
	sameCluster(t, "after adoption", vols, raft, volumes(t, fc.opts.WorkDir), raftIDs(t, fc.Cluster, tasks))
	checkAllKeys(t, fc.Cluster, tasks, written)
	eventually(t, 3*time.Minute, "the ACL bootstrap confirms the recovered tokens", func() error {
		if countInFile(schedLog, aclBootstrappedLine) < 2 {
			return fmt.Errorf("the new scheduler did not log %q yet", aclBootstrappedLine)
		}
		return nil
	})
	added := fc.addAgentWithClient(t)
	cc := consulClient(t, fc.Cluster, servers(tasks)[0].AgentIP)
	eventually(t, 3*time.Minute, "the new client alive in the LAN pool", func() error {
		members, err := cc.Agent().Members(false)
		if err != nil {
			return err
		}
		for _, m := range members {
			if m.Addr == added.AgentIP && m.Status == 1 {
				return nil
			}
		}
		return fmt.Errorf("%s is not an alive member", added.AgentIP)
	})
}
