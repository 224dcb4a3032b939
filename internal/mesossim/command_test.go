package mesossim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/dcos-consul/dcos-consul/internal/mesossim/agent"
)

func commandTask(id, agentID string, ci *mesos.CommandInfo) mesos.TaskInfo {
	t := taskInfo(id, agentID, nil, res("cpus", 0.1, role), res("mem", 32, role))
	t.Command = ci
	return t
}

func shellCmd(s string) *mesos.CommandInfo {
	return &mesos.CommandInfo{Value: proto.String(s), Shell: proto.Bool(true)}
}

// assertExecutorStatus: an update from the command executor, as in
// 05-invalid-accepts.txt (5c) and 06-reconcile-kill.txt: SOURCE_EXECUTOR,
// executor_id = task ID, uuid, no reason, container_status with executor_pid.
func assertExecutorStatus(t *testing.T, st mesos.TaskStatus, state mesos.TaskState, msg string) {
	t.Helper()
	if st.GetState() != state || st.GetSource() != mesos.SOURCE_EXECUTOR || st.Reason != nil ||
		st.GetMessage() != msg || len(st.UUID) != 16 || st.GetExecutorID().GetValue() != st.TaskID.Value ||
		st.GetContainerStatus().GetExecutorPID() == 0 {
		t.Errorf("task %s: got %s/%s reason=%v %q executor=%v uuid=%x container_status=%+v; want %s/SOURCE_EXECUTOR %q",
			st.TaskID.Value, st.GetState(), st.GetSource(), st.Reason, st.GetMessage(), st.ExecutorID, st.UUID,
			st.ContainerStatus, state, msg)
	}
}

// The built-in command executor: shell and argv commands, their exit
// statuses, RUNNING held until STARTING is acknowledged, kill, and no
// FAILURE event for the command executor.
func TestCommandExecutor(t *testing.T) {
	o := testOptions(t, 1, false)
	c := startCluster(t, o)
	s := subscribe(t, c.MasterURL(), paInfo("command"))
	agentID := c.Agents()[0].ID

	// shell true: /bin/sh -c, in the sandbox, with the executor environment.
	s.accept(s.offers(waitLong), 0, launch(commandTask("c-ok", agentID,
		shellCmd(`echo "$MESOS_EXECUTOR_ID $MESOS_ALLOCATION_ROLE $PWD" > out.txt; exit 0`))))
	st := s.update("c-ok", waitLong)
	assertExecutorStatus(t, st, mesos.TASK_STARTING, "")
	// RUNNING is held back until STARTING is acknowledged.
	if ev := s.nextOr(scheduler.Event_UPDATE, 2*time.Second); ev != nil {
		t.Fatalf("an update before STARTING was acknowledged: %s", ev.Update.Status.GetState())
	}
	s.ack(st)
	st = s.update("c-ok", waitLong)
	assertExecutorStatus(t, st, mesos.TASK_RUNNING, "")
	s.ack(st)
	st = s.update("c-ok", waitLong)
	assertExecutorStatus(t, st, mesos.TASK_FINISHED, "Command exited with status 0")
	s.ack(st)
	var sandbox string
	filepath.Walk(o.WorkDir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Name() == "out.txt" && strings.Contains(p, "/executors/c-ok/runs/") {
			sandbox = filepath.Dir(p)
		}
		return nil
	})
	out, err := os.ReadFile(filepath.Join(sandbox, "out.txt"))
	if err != nil || string(out) != "c-ok "+role+" "+sandbox+"\n" {
		t.Errorf("sandbox out.txt %q %v (sandbox %s)", out, err, sandbox)
	}

	// shell false: value is the program, arguments its argv.
	s.accept(s.offers(waitLong), 0, launch(commandTask("c-fail", agentID,
		&mesos.CommandInfo{Value: proto.String("/bin/sh"), Shell: proto.Bool(false), Arguments: []string{"sh", "-c", "exit 3"}})))
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
		st = s.update("c-fail", waitLong)
		assertExecutorStatus(t, st, want, "")
		s.ack(st)
	}
	st = s.update("c-fail", waitLong)
	assertExecutorStatus(t, st, mesos.TASK_FAILED, "Command exited with status 3")
	s.ack(st)

	// Programs that cannot run (checked on a real 1.12 agent): the shell
	// says 127; a missing executable makes the launcher exit 1, after
	// STARTING and RUNNING all the same.
	for id, tc := range map[string]struct {
		ci  *mesos.CommandInfo
		msg string
	}{
		"c-127":    {shellCmd("/no/such/program"), "Command exited with status 127"},
		"c-noexec": {&mesos.CommandInfo{Value: proto.String("/no/such/program"), Shell: proto.Bool(false)}, "Command exited with status 1"},
		"c-nopath": {&mesos.CommandInfo{Value: proto.String("no-such-program-in-path"), Shell: proto.Bool(false)}, "Command exited with status 1"},
	} {
		s.accept(s.offers(waitLong), 0, launch(commandTask(id, agentID, tc.ci)))
		for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
			st = s.update(id, waitLong)
			assertExecutorStatus(t, st, want, "")
			s.ack(st)
		}
		st = s.update(id, waitLong)
		assertExecutorStatus(t, st, mesos.TASK_FAILED, tc.msg)
		s.ack(st)
	}

	// KILL: TASK_KILLING, then TASK_KILLED "Command terminated with signal Terminated".
	s.accept(s.offers(waitLong), 0, launch(commandTask("c-kill", agentID, shellCmd("sleep 600"))))
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
		st = s.update("c-kill", waitLong)
		assertExecutorStatus(t, st, want, "")
		s.ack(st)
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{
		TaskID: mesos.TaskID{Value: "c-kill"}, AgentID: &mesos.AgentID{Value: agentID}}})
	st = s.update("c-kill", waitLong)
	assertExecutorStatus(t, st, mesos.TASK_KILLING, "")
	s.ack(st)
	st = s.update("c-kill", waitLong)
	assertExecutorStatus(t, st, mesos.TASK_KILLED, "Command terminated with signal Terminated")
	s.ack(st)

	// SHUTDOWN of the command executor kills its task the same way
	// (checked on a real 1.12 agent).
	s.accept(s.offers(waitLong), 0, launch(commandTask("c-shut", agentID, shellCmd("sleep 600"))))
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
		st = s.update("c-shut", waitLong)
		assertExecutorStatus(t, st, want, "")
		s.ack(st)
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_SHUTDOWN, Shutdown: &scheduler.Call_Shutdown{
		ExecutorID: mesos.ExecutorID{Value: "c-shut"}, AgentID: mesos.AgentID{Value: agentID}}})
	st = s.update("c-shut", waitLong)
	assertExecutorStatus(t, st, mesos.TASK_KILLING, "")
	s.ack(st)
	st = s.update("c-shut", waitLong)
	assertExecutorStatus(t, st, mesos.TASK_KILLED, "Command terminated with signal Terminated")
	s.ack(st)

	// No FAILURE event for command executors, even after they exit.
	if ev := s.nextOr(scheduler.Event_FAILURE, 3*time.Second); ev != nil {
		t.Errorf("FAILURE for a command executor: %+v", ev.Failure)
	}
	eventually(t, waitLong, "command executors gone", func() bool { exs, _ := c.Executors(agentID); return len(exs) == 0 })
}

// A kill policy's grace period: a command that ignores SIGTERM is
// SIGKILLed after it, and the task is still TASK_KILLED.
func TestCommandExecutorKillEscalation(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, false))
	info := frameworkInfo("command-nokilling", role) // no TASK_KILLING_STATE
	s := subscribe(t, c.MasterURL(), info)
	agentID := c.Agents()[0].ID
	task := commandTask("c-stubborn", agentID, shellCmd(`trap "" TERM; while :; do sleep 0.1; done`))
	task.KillPolicy = &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(500 * time.Millisecond)}}
	s.accept(s.offers(waitLong), 0, launch(task))
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
		st := s.update("c-stubborn", waitLong)
		assertExecutorStatus(t, st, want, "")
		s.ack(st)
	}
	time.Sleep(300 * time.Millisecond) // let the shell install its trap
	s.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: task.TaskID}})
	st := s.update("c-stubborn", waitLong)
	// No TASK_KILLING without the capability. The shell's group gets
	// SIGTERM (ignored) then SIGKILL.
	assertExecutorStatus(t, st, mesos.TASK_KILLED, "Command terminated with signal Killed")
}

// The master counts only the task's resources for a command task (not the
// executor's allowance) and lists it with an empty executor_id
// (07-master-state.json); the generated ExecutorInfo is the real agent's.
func TestCommandTaskInMasterState(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, false))
	s := subscribe(t, c.MasterURL(), paInfo("command-state"))
	agentID := c.Agents()[0].ID
	s.accept(s.offers(waitLong), 0, launch(commandTask("c-state", agentID, shellCmd("sleep 600"))))
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
		st := s.update("c-state", waitLong)
		assertExecutorStatus(t, st, want, "")
		s.ack(st)
	}
	st := getState(t, c.MasterURL())
	fw := st["frameworks"].([]interface{})[0].(map[string]interface{})
	used := fw["used_resources"].(map[string]interface{})
	if used["cpus"] != 0.1 || used["mem"] != 32.0 {
		t.Errorf("framework used_resources %v, want the task's cpus 0.1 mem 32 only", used)
	}
	task := fw["tasks"].([]interface{})[0].(map[string]interface{})
	if id, ok := task["executor_id"]; !ok || id != "" {
		t.Errorf("command task executor_id %v (present %v), want \"\"", id, ok)
	}
	if exs := fw["executors"]; exs != nil && len(exs.([]interface{})) != 0 {
		t.Errorf("master lists executors for a command task: %v", exs)
	}

	// The agent's own /state counts the executor's allowance (07: executor
	// resources = task + cpus 0.1, mem 32).
	ag := c.Agents()[0]
	resp, err := http.Get(fmt.Sprintf("http://%s:%d/state", ag.IP, ag.Port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var as struct {
		Version    string
		PID        string
		Frameworks []struct {
			Executors []struct {
				ID, Name, Source string
				Resources        map[string]interface{}
				Tasks            []struct {
					ID         string
					ExecutorID *string `json:"executor_id"`
					State      string
					Statuses   []struct{ State string }
				}
			}
		}
	}
	if err := json.Unmarshal(body, &as); err != nil || len(as.Frameworks) != 1 || len(as.Frameworks[0].Executors) != 1 {
		t.Fatalf("agent state %s: %v", body, err)
	}
	ex := as.Frameworks[0].Executors[0]
	if ex.ID != "c-state" || ex.Source != "c-state" || ex.Name != "Command Executor (Task: c-state) (Command: sh -c 'sleep 600')" ||
		ex.Resources["cpus"] != 0.2 || ex.Resources["mem"] != 64.0 || as.Version != "1.12.0" || as.PID != ag.PID() {
		t.Errorf("agent state executor %+v (version %s pid %s)", ex, as.Version, as.PID)
	}
	if len(ex.Tasks) != 1 || ex.Tasks[0].ExecutorID == nil || *ex.Tasks[0].ExecutorID != "" || ex.Tasks[0].State != "TASK_RUNNING" ||
		len(ex.Tasks[0].Statuses) != 2 || ex.Tasks[0].Statuses[0].State != "TASK_STARTING" {
		t.Errorf("agent state task %s", body)
	}
	if !strings.Contains(string(body), `"container_status":{"container_id":{"value":"`) || strings.Contains(string(body), "executor_pid") {
		t.Errorf("agent state statuses: %s", body)
	}
}

func TestCommandExecutorInfoAsRealAgent(t *testing.T) {
	cases := map[string]*mesos.CommandInfo{
		"Command Executor (Task: t) (Command: sh -c 'sleep 600')":       shellCmd("sleep 600"),
		"Command Executor (Task: t) (Command: sh -c 'env > env.tx...')": shellCmd("env > env.txt; sleep 30"),
		"Command Executor (Task: t) (Command: [/bin/true, ])":           {Value: proto.String("/bin/true"), Shell: proto.Bool(false)},
		"Command Executor (Task: t) (Command: [/bin/sh, sh,...])":       {Value: proto.String("/bin/sh"), Shell: proto.Bool(false), Arguments: []string{"sh", "-c", "x"}},
	}
	for want, ci := range cases {
		ex := agent.CommandExecutorInfo(mesos.FrameworkID{Value: "f"}, commandTask("t", "a", ci))
		if ex.GetName() != want || ex.ExecutorID.Value != "t" || ex.GetSource() != "t" {
			t.Errorf("name %q id %s source %s, want %q", ex.GetName(), ex.ExecutorID.Value, ex.GetSource(), want)
		}
		if !strings.HasSuffix(ex.Command.GetValue(), "/mesos-executor") || ex.Command.GetShell() {
			t.Errorf("command %+v", ex.Command)
		}
		if rs := rlist(ex.Resources); rs.scalar("cpus") != 0.1 || rs.scalar("mem") != 32 || ex.Resources[0].AllocationInfo.GetRole() != role {
			t.Errorf("executor resources %v", ex.Resources)
		}
	}
}
