package realmesos

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/operator"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// leaveNet is the loopback network of the leave cluster.
const leaveNet = "127.6.13"

// TestRealMesosLeaveMessage: on a real master and agents, a server that
// goes away for good (here the operator's pod replace of the only server)
// is asked to leave with a MESSAGE before anything kills it: the real
// master and agent deliver it to the running executor, which leaves the
// Consul cluster and ends its task with TASK_KILLED labelled
// consul_left=true (the master keeps the label in the task's statuses),
// and the scheduler records the graceful departure, not a fallback kill.
// Two agents, one server, no clients: small.
func TestRealMesosLeaveMessage(t *testing.T) {
	requireMesos(t)
	ctx := context.Background()
	dir, err := os.MkdirTemp(runRoot, "leave-")
	if err != nil {
		t.Fatal(err)
	}
	su := &suite{zkRoot: fmt.Sprintf("/dcos-consul-realmesos-leave-%d-%d", os.Getpid(), time.Now().UnixNano()), written: map[string]int{}}
	start := time.Now()
	su.c, err = Start(ctx, Options{Dir: dir, Net: leaveNet, Agents: 2, ZK: zkAddr, ZKRoot: su.zkRoot})
	t.Cleanup(func() { su.cleanup(t) })
	if err != nil {
		t.Fatal(err)
	}
	su.s, err = su.c.NewScheduler(SchedulerOptions{
		Binary: binary, StateZK: zkAddr + su.zkRoot + "/state",
		ExtraEnv: []string{config.EnvServerCount + "=1", config.EnvClientsEnabled + "=false"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := su.s.Start(); err != nil {
		t.Fatal(err)
	}
	su.subscribed(t, 2*time.Minute)
	first := runningServer(t, su, "")
	t.Logf("TIMING server healthy %s after the cluster start (task %s)", time.Since(start).Round(100*time.Millisecond), first.ID)

	var out strings.Builder
	ops := &operator.Commands{Client: su.operatorClient(t), Out: &out}
	asked := time.Now()
	eventually(t, 2*time.Minute, "pod replace consul-server-0 accepted", func() error { return ops.PodReplace(ctx, "consul-server-0") })

	// The old task ends by its own graceful leave, labelled by its executor.
	var ended Task
	eventually(t, 2*time.Minute, "the old server task ended with its leave's label", func() error {
		st, err := su.c.State(ctx)
		if err != nil {
			return err
		}
		var all []Task
		for _, f := range st.FrameworksNamed(serviceName) {
			all = append(append(all, f.Tasks...), f.CompletedTasks...)
		}
		for _, tk := range all {
			if tk.ID != first.ID || tk.State == "TASK_RUNNING" || tk.State == "TASK_KILLING" {
				continue
			}
			ended = tk
			return nil
		}
		return fmt.Errorf("%s not ended yet", first.ID)
	})
	t.Logf("TIMING old server %s ended %s after the replace (%s)", first.ID, time.Since(asked).Round(100*time.Millisecond), ended.State)
	left := ""
	for _, s := range ended.Statuses {
		for _, l := range s.Labels {
			if l.Key == taskspec.LabelLeft {
				left = l.Value
			}
		}
	}
	if ended.State != "TASK_KILLED" || left != "true" {
		t.Errorf("old server task %s ended %s with %s=%q, want TASK_KILLED with \"true\" (statuses %+v)", first.ID, ended.State, taskspec.LabelLeft, left, ended.Statuses)
	}
	b, _ := os.ReadFile(su.s.LogPath())
	log := string(b)
	if !strings.Contains(log, "asking a server that goes away for good to leave the Consul cluster gracefully") {
		t.Error("the scheduler log does not show the leave MESSAGE sent")
	}
	if !strings.Contains(log, `"left_gracefully":true`) {
		t.Errorf("the scheduler did not record a graceful leave; log tail:\n%s", tail(su.s.LogPath(), 20))
	}
	if strings.Contains(log, "no report of its graceful leave") {
		t.Error("the scheduler fell back to the kill")
	}
	next := runningServer(t, su, first.ID)
	t.Logf("TIMING replacement %s healthy %s after the replace", next.ID, time.Since(asked).Round(100*time.Millisecond))
}

// runningServer waits for consul-server-0 running and healthy as a task
// other than not.
func runningServer(t *testing.T, su *suite, not string) task {
	t.Helper()
	var found task
	eventually(t, 4*time.Minute, "consul-server-0 RUNNING and healthy", func() error {
		st, err := su.c.State(context.Background())
		if err != nil {
			return err
		}
		for _, f := range st.FrameworksNamed(serviceName) {
			for _, tk := range f.Tasks {
				if tk.Name == "consul-server-0" && tk.State == "TASK_RUNNING" && tk.ID != not {
					if h := tk.Healthy(); h != nil && *h {
						found = task{Name: tk.Name, ID: tk.ID}
						return nil
					}
				}
			}
		}
		return fmt.Errorf("not yet")
	})
	return found
}
