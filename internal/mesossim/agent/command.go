package agent

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
)

// The built-in command executor: what a real agent runs for a task with
// `command` and no `executor` (Mesos' src/launcher/executor.cpp, as seen in
// 05-invalid-accepts.txt 5c, 06-reconcile-kill.txt and 07-state-running-task.txt).
// Here it lives inside the agent: the only process is the task's command
// (its own process group, in the sandbox, with the executor's environment),
// and executor_pid in container_status is the pid of the process the agent
// runs in.
//
//   - The executor registers as soon as its sandbox is ready (fetch and
//     volumes done); the task is then TASK_STARTING, its command starts,
//     and TASK_RUNNING follows (held back by the agent until STARTING is
//     acknowledged, as every second update of a task).
//   - The command ends: TASK_FINISHED (exit 0) or TASK_FAILED, message
//     "Command exited with status N"; after a kill TASK_KILLED, "Command
//     terminated with signal Terminated". The executor exits 1 s later
//     (MESOS_HTTP_COMMAND_EXECUTOR=0), and the scheduler gets no FAILURE
//     event for it (the agent sends none for command executors).
//   - KILL: TASK_KILLING if the framework has TASK_KILLING_STATE, SIGTERM to
//     the command's process group, SIGKILL after the kill policy's grace
//     period (the task's, or the KILL's; 3 s by default).
//   - SHUTDOWN: the same kill with the shutdown grace period minus 2 s.

const (
	// Slave::getExecutorInfo's allowance for the command executor
	// (DEFAULT_EXECUTOR_CPUS, DEFAULT_EXECUTOR_MEM).
	commandExecutorCPUs = 0.1
	commandExecutorMem  = 32.0
	// commandKillGrace is executor.cpp's default kill grace period.
	commandKillGrace = 3 * time.Second
	// commandExitDelay: the command executor exits this long after its
	// terminal update (executor.cpp selfTerminate).
	commandExitDelay = time.Second
	// launcherDir stands for the agent's --launcher_dir in the generated
	// ExecutorInfo (a Mesos installed under /usr).
	launcherDir = "/usr/libexec/mesos"
)

// commandRun is the state of a built-in command executor.
type commandRun struct {
	task         mesos.TaskID
	killingState bool // the framework has TASK_KILLING_STATE
	launched     bool // the command was started
	killed       bool // SIGTERM sent by a kill or shutdown
	executorDied bool // the executor itself "crashed" (KillExecutorProcess)
}

// isCommandTask: a LAUNCH the agent must give its command executor.
func isCommandTask(l Launch) bool {
	return l.Executor.ExecutorID.Value == "" && !l.Group && len(l.Tasks) == 1 && l.Tasks[0].Command != nil
}

// CommandExecutorInfo is the ExecutorInfo a real agent generates for a
// command task (Slave::getExecutorInfo): executor ID = task ID, the name
// "Command Executor (Task: ID) (Command: sh -c '...')", source = task ID,
// the task's URIs and environment, the mesos-executor launcher command and
// the executor's allowance of cpus 0.1 and mem 32 in the task's role.
func CommandExecutorInfo(fw mesos.FrameworkID, t mesos.TaskInfo) mesos.ExecutorInfo {
	tc := t.Command
	if tc == nil {
		tc = &mesos.CommandInfo{}
	}
	name := "(Task: " + t.TaskID.Value + ") "
	if tc.Shell == nil || *tc.Shell {
		v := tc.GetValue()
		if len(v) > 15 {
			v = v[:12] + "..."
		}
		name += "(Command: sh -c '" + v + "')"
	} else {
		args := tc.GetValue() + ", " + strings.Join(tc.Arguments, ", ")
		if len(args) > 15 {
			name += "(Command: [" + args[:12] + "...])"
		} else {
			name += "(Command: [" + args + "])"
		}
	}
	shell := false
	value := filepath.Join(launcherDir, "mesos-executor")
	cmd := &mesos.CommandInfo{
		URIs:        tc.URIs,
		Environment: tc.Environment,
		Shell:       &shell,
		Value:       &value,
		Arguments:   []string{"mesos-executor", "--launcher_dir=" + launcherDir},
		User:        tc.User,
	}
	fid := fw
	src := t.TaskID.Value
	full := "Command Executor " + name
	ex := mesos.ExecutorInfo{
		Type:        mesos.ExecutorInfo_CUSTOM,
		ExecutorID:  mesos.ExecutorID{Value: t.TaskID.Value},
		FrameworkID: &fid,
		Command:     cmd,
		Name:        &full,
		Source:      &src,
		Labels:      t.Labels,
		Discovery:   t.Discovery,
	}
	if kp := t.KillPolicy; kp != nil && kp.GracePeriod != nil {
		// grace + MAX_REAP_INTERVAL (1 s) + 1 s
		ex.ShutdownGracePeriod = &mesos.DurationInfo{Nanoseconds: kp.GracePeriod.Nanoseconds + int64(2*time.Second)}
	}
	var alloc *mesos.Resource_AllocationInfo
	for _, r := range t.Resources {
		if r.AllocationInfo != nil {
			a := *r.AllocationInfo
			alloc = &a
			break
		}
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"cpus", commandExecutorCPUs}, {"mem", commandExecutorMem}} {
		ex.Resources = append(ex.Resources, mesos.Resource{
			Name: s.name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: s.v}, AllocationInfo: alloc,
		})
	}
	return ex
}

// startCommandExecutor prepares the sandbox (fetch, volumes) and starts the
// task's command in the background. The task stays queued until then, so a
// KILL in the meantime is a kill during launch. Caller holds mu.
func (a *Agent) startCommandExecutor(e *executor, f *framework) {
	runs := filepath.Join(a.slaveDir(), "frameworks", e.fwID.Value, "executors", e.info.ExecutorID.Value, "runs")
	e.dir = filepath.Join(runs, e.containerID)
	timeout := a.cfg.ExecutorRegisterTimout
	e.regTimer = time.AfterFunc(timeout, func() { a.registrationTimeout(e, timeout) })
	ti := e.queue[0].tasks[0]
	env := append(a.executorEnv(e, f.info), "MESOS_ALLOCATION_ROLE="+roleOf(ti.Resources))
	a.event("launching command executor", append(execFields(e), zap.String("sandbox", e.dir),
		zap.String("command", ti.Command.GetValue()))...)
	// prepare runs the task's own CommandInfo (its URIs are the executor's).
	taskCmd := mesos.ExecutorInfo{Command: ti.Command}
	res := append(append([]mesos.Resource(nil), e.info.Resources...), ti.Resources...)
	a.procs.Add(1)
	go func() {
		defer a.procs.Done()
		cmd, err := a.prepare(taskCmd, e.containerID, runs, e.dir, res, env)
		a.mu.Lock()
		defer a.mu.Unlock()
		if e.destroyRequested || a.stopped || e.state != execRegistering {
			closeOutputs(cmd)
			if !a.stopped && e.state != execTerminated {
				a.executorGone(e, 0)
			}
			return
		}
		switch {
		case errors.Is(err, errCommandNotFound):
			a.event("command not found", append(execFields(e), zap.Error(err))...)
			a.runCommand(e, nil)
		case err != nil:
			a.launchFailed(e, err)
		default:
			a.runCommand(e, cmd)
		}
	}()
}

func closeOutputs(cmd *exec.Cmd) {
	if cmd == nil {
		return
	}
	for _, w := range []interface{}{cmd.Stdout, cmd.Stderr} {
		if c, ok := w.(interface{ Close() error }); ok {
			c.Close()
		}
	}
}

// runCommand: the executor registers, the task goes TASK_STARTING and its
// command starts, then TASK_RUNNING. cmd is nil when its program was not
// found. Caller holds mu.
func (a *Agent) runCommand(e *executor, cmd *exec.Cmd) {
	if e.regTimer != nil {
		e.regTimer.Stop()
		e.regTimer = nil
	}
	e.state, e.subscribed, e.reregistered = execRunning, true, true
	e.queue = nil
	t := e.tasks[e.command.task.Value]
	if t == nil {
		return
	}
	t.queued = false
	err := errCommandNotFound
	if cmd != nil {
		err = cmd.Start()
		closeOutputs(cmd)
	}
	if err != nil {
		// The Mesos launcher exits 1 when it cannot exec the command, after
		// STARTING and RUNNING (checked on a real 1.12 agent).
		a.event("command failed to start", append(execFields(e), zap.Error(err))...)
		a.commandStatus(e, mesos.TASK_STARTING, "")
		a.commandStatus(e, mesos.TASK_RUNNING, "")
		a.commandStatus(e, mesos.TASK_FAILED, "Command exited with status 1")
		a.commandExitLater(e)
		return
	}
	e.pid = cmd.Process.Pid
	e.command.launched = true
	a.event("command started", append(execFields(e), zap.Int("pid", e.pid))...)
	a.commandStatus(e, mesos.TASK_STARTING, "")
	a.commandStatus(e, mesos.TASK_RUNNING, "")
	a.procs.Add(1)
	go func() {
		defer a.procs.Done()
		_ = cmd.Wait()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the rest of its group
		ws := syscall.WaitStatus(0)
		if s, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			ws = s
		}
		a.commandReaped(e, ws)
	}()
}

// commandStatus is an update from the command executor. Caller holds mu.
func (a *Agent) commandStatus(e *executor, state mesos.TaskState, msg string) {
	exID := e.info.ExecutorID
	st := mesos.TaskStatus{
		TaskID:     e.command.task,
		State:      state.Enum(),
		ExecutorID: &exID,
		Timestamp:  nowSeconds(),
		UUID:       newUUID(),
	}
	if msg != "" {
		st.Message = &msg
	}
	a.executorUpdate(e, st)
}

// commandReaped: the task's command ended.
func (a *Agent) commandReaped(e *executor, ws syscall.WaitStatus) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e.exited = true
	if a.stopped || e.state == execTerminated {
		return
	}
	if e.termReason != nil || e.command.executorDied {
		// The container was destroyed by the agent, or the executor died:
		// the agent fails the task (executorGone), not the executor.
		status := int32(0)
		if e.command.executorDied {
			status = int32(syscall.SIGKILL)
		}
		a.executorGone(e, status)
		return
	}
	state := mesos.TASK_FAILED
	switch {
	case e.command.killed:
		state = mesos.TASK_KILLED
	case ws.Exited() && ws.ExitStatus() == 0:
		state = mesos.TASK_FINISHED
	}
	a.event("command ended", append(execFields(e), zap.String("state", state.String()), zap.String("status", wstringify(ws)))...)
	a.commandStatus(e, state, "Command "+wstringify(ws))
	a.commandExitLater(e)
}

// commandExitLater: the command executor exits after its terminal update.
// Caller holds mu.
func (a *Agent) commandExitLater(e *executor) {
	e.cmdTimer = time.AfterFunc(commandExitDelay, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if !a.stopped && e.state != execTerminated {
			a.executorGone(e, 0)
		}
	})
}

// commandKill kills the task's command: TASK_KILLING (if the framework
// takes it), SIGTERM to its process group, SIGKILL after grace.
// Caller holds mu.
func (a *Agent) commandKill(e *executor, grace time.Duration) {
	c := e.command
	if c.killed || !c.launched || e.exited {
		return
	}
	if c.killingState {
		a.commandStatus(e, mesos.TASK_KILLING, "")
	}
	c.killed = true
	pid := e.pid
	a.event("killing command", append(execFields(e), zap.Int("pid", pid), zap.Duration("grace", grace))...)
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	e.cmdTimer = time.AfterFunc(grace, func() {
		a.mu.Lock()
		exited := e.exited
		a.mu.Unlock()
		if !exited {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
}

// commandKillGraceOf is the grace period of a KILL: the KILL's kill policy,
// else the task's, else 3 s.
func commandKillGraceOf(t *task, policy *mesos.KillPolicy) time.Duration {
	if policy != nil && policy.GracePeriod != nil {
		return time.Duration(policy.GracePeriod.Nanoseconds)
	}
	if kp := t.info.KillPolicy; kp != nil && kp.GracePeriod != nil {
		return time.Duration(kp.GracePeriod.Nanoseconds)
	}
	return commandKillGrace
}

// commandShutdown: SHUTDOWN of a command executor kills its task with the
// shutdown grace period less 2 s, or ends an executor that has not started
// its command yet. Caller holds mu.
func (a *Agent) commandShutdown(e *executor) {
	if !e.command.launched {
		if e.pid == 0 && e.state == execTerminating {
			e.destroyRequested = true // still preparing: the spawner ends it
		}
		return
	}
	grace := e.graceperiod(a.cfg.ExecutorShutdownGrace) - 2*time.Second
	if grace < 0 {
		grace = 0
	}
	a.commandKill(e, grace)
}

// wstringify is stout's WSTRINGIFY: "exited with status N" or
// "terminated with signal <strsignal>".
func wstringify(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exited with status %d", ws.ExitStatus())
	case ws.Signaled():
		return "terminated with signal " + signalName(ws.Signal())
	}
	return fmt.Sprintf("wait status %d", int(ws))
}

// signalName is strsignal(3) for the signals a task may die of.
func signalName(s syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGTERM: "Terminated", syscall.SIGKILL: "Killed", syscall.SIGINT: "Interrupt",
		syscall.SIGHUP: "Hangup", syscall.SIGQUIT: "Quit", syscall.SIGABRT: "Aborted",
		syscall.SIGSEGV: "Segmentation fault", syscall.SIGPIPE: "Broken pipe", syscall.SIGUSR1: "User defined signal 1",
		syscall.SIGUSR2: "User defined signal 2", syscall.SIGALRM: "Alarm clock", syscall.SIGBUS: "Bus error",
		syscall.SIGFPE: "Floating point exception", syscall.SIGILL: "Illegal instruction", syscall.SIGTRAP: "Trace/breakpoint trap",
	}
	if n, ok := names[s]; ok {
		return n
	}
	return fmt.Sprintf("Unknown signal %d", int(s))
}

func hasCapability(info mesos.FrameworkInfo, c mesos.FrameworkInfo_Capability_Type) bool {
	for _, x := range info.Capabilities {
		if x.Type == c {
			return true
		}
	}
	return false
}
