package agent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
)

type execState int

const (
	execRegistering execState = iota // launched, not subscribed yet
	execRunning                      // subscribed at least once
	execTerminating                  // shutdown or kill in progress
	execTerminated
)

// killEscalation is how long a SIGTERMed process group gets before SIGKILL
// once the shutdown grace period has run out.
const killEscalation = 2 * time.Second

type task struct {
	info     mesos.TaskInfo
	state    mesos.TaskState
	statuses []mesos.TaskStatus // what the agent accepted, for /state
	queued   bool               // not yet delivered to the executor
	group    int                // >0: member of LAUNCH_GROUP number group
}

type pendingLaunch struct {
	tasks []mesos.TaskInfo
	group int // 0 for LAUNCH
}

// executor is one executor run (one container).
type executor struct {
	fwID        mesos.FrameworkID
	info        mesos.ExecutorInfo
	containerID string
	// authToken is the executor's MESOS_EXECUTOR_AUTHENTICATION_TOKEN
	// (used only with Config.ExecutorAuthentication).
	authToken  string
	dir        string
	state      execState
	subscribed bool // ever subscribed
	inProcess  bool
	pid        int
	exited     bool
	sub        *subscription
	tasks      map[string]*task
	queue      []pendingLaunch
	nextGroup  int
	// killedBeforeUse: every queued task was killed before the executor
	// subscribed; its SUBSCRIBE gets SHUTDOWN.
	killedBeforeUse bool
	// destroyRequested: the container was to be destroyed before its
	// process existed (still fetching); the spawner kills it at once.
	destroyRequested bool
	termReason       *mesos.TaskStatus_Reason
	termMessage      string
	termState        *mesos.TaskState // TASK_FAILED unless set
	// reregistered: subscribed since the last agent restart.
	reregistered bool

	// command: a built-in command executor (command.go); nil for the
	// framework's own executors and for in-process agents.
	command *commandRun

	regTimer, graceTimer, killTimer, cmdTimer *time.Timer
}

func (e *executor) stopTimers() {
	for _, t := range []*time.Timer{e.regTimer, e.graceTimer, e.killTimer, e.cmdTimer} {
		if t != nil {
			t.Stop()
		}
	}
	e.regTimer, e.graceTimer, e.killTimer, e.cmdTimer = nil, nil, nil, nil
}

func (e *executor) graceperiod(def time.Duration) time.Duration {
	if g := e.info.ShutdownGracePeriod; g != nil && g.Nanoseconds >= 0 {
		return time.Duration(g.Nanoseconds)
	}
	return def
}

// Launch starts (or reuses) the executor and delivers the tasks: queued
// until the executor subscribes, at once to a subscribed one.
func (a *Agent) Launch(l Launch) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped || len(l.Tasks) == 0 {
		return
	}
	fwID := l.Framework.GetID()
	if fwID == nil || fwID.Value == "" {
		fwID = l.Executor.FrameworkID
	}
	if fwID == nil {
		return
	}
	fid := *fwID
	if a.frameworks == nil {
		a.frameworks = make(map[string]*framework)
	}
	f := a.frameworks[fid.Value]
	if f == nil {
		f = &framework{executors: make(map[string]*executor)}
		a.frameworks[fid.Value] = f
	}
	if f.terminating {
		return // a real agent ignores tasks of a framework it is shutting down
	}
	f.info = l.Framework
	f.info.ID = &fid
	commandTask := isCommandTask(l)
	if commandTask {
		l.Executor = CommandExecutorInfo(fid, l.Tasks[0])
	}

	e := f.executors[l.Executor.ExecutorID.Value]
	if e != nil && (e.state == execTerminating || e.state == execTerminated) {
		for _, t := range l.Tasks {
			a.agentUpdate(fid, e, t.TaskID, lostOrDropped(f.info), mesos.REASON_EXECUTOR_TERMINATED, "Executor terminating")
		}
		return
	}

	// A task may only use persistent volumes this agent knows.
	if !a.cfg.InProcess {
		var res []mesos.Resource
		if e == nil {
			res = append(res, l.Executor.Resources...)
		}
		for _, t := range l.Tasks {
			res = append(res, t.Resources...)
		}
		if missing := a.unknownVolumes(res); len(missing) > 0 {
			msg := "Task uses unknown persistent volumes: " + strings.Join(missing, ", ")
			for _, t := range l.Tasks {
				a.agentUpdate(fid, e, t.TaskID, lostOrDropped(f.info), mesos.REASON_RESOURCES_UNKNOWN, msg)
			}
			a.maybeForgetFramework(fid.Value)
			return
		}
	}

	isNew := e == nil
	if isNew {
		e = &executor{
			fwID:        fid,
			info:        l.Executor,
			containerID: uuid.NewString(),
			authToken:   uuid.NewString() + uuid.NewString(),
			tasks:       make(map[string]*task),
			inProcess:   a.cfg.InProcess,
		}
		e.info.FrameworkID = &fid
		if commandTask && !e.inProcess {
			e.command = &commandRun{task: l.Tasks[0].TaskID,
				killingState: hasCapability(f.info, mesos.FrameworkInfo_Capability_TASK_KILLING_STATE)}
		}
		f.executors[e.info.ExecutorID.Value] = e
	}
	group := 0
	if l.Group {
		e.nextGroup++
		group = e.nextGroup
	}
	for _, ti := range l.Tasks {
		e.tasks[ti.TaskID.Value] = &task{info: ti, state: mesos.TASK_STAGING, queued: true, group: group}
	}
	e.queue = append(e.queue, pendingLaunch{tasks: l.Tasks, group: group})

	switch {
	case e.inProcess:
		e.state = execRunning
		e.subscribed = true
		a.deliverQueued(e)
	case isNew && e.command != nil:
		a.startCommandExecutor(e, f)
	case isNew:
		a.startExecutor(e)
	case e.state == execRunning:
		a.deliverQueued(e)
	}
	// registering: stays queued until SUBSCRIBE.
}

// deliverQueued hands every queued launch to the executor (LAUNCH per task,
// LAUNCH_GROUP per group); the in-process stand-in answers at once.
// Caller holds mu.
func (a *Agent) deliverQueued(e *executor) {
	q := e.queue
	e.queue = nil
	for _, pl := range q {
		for _, ti := range pl.tasks {
			if t := e.tasks[ti.TaskID.Value]; t != nil {
				t.queued = false
			}
		}
		if e.inProcess {
			for _, ti := range pl.tasks {
				a.standIn(e, ti.TaskID, mesos.TASK_STARTING, "")
				a.standIn(e, ti.TaskID, mesos.TASK_RUNNING, "")
			}
			continue
		}
		// Volumes of tasks that join after the container started appear in
		// its sandbox before the executor hears of the task.
		var res []mesos.Resource
		for _, ti := range pl.tasks {
			res = append(res, ti.Resources...)
		}
		if err := a.linkVolumes(e.dir, res); err != nil {
			for _, ti := range pl.tasks {
				a.agentUpdate(e.fwID, e, ti.TaskID, mesos.TASK_FAILED, mesos.REASON_CONTAINER_UPDATE_FAILED, err.Error())
			}
			continue
		}
		if pl.group > 0 {
			e.sub.push(eventLaunchGroup(pl.tasks))
		} else {
			for _, ti := range pl.tasks {
				e.sub.push(eventLaunch(ti))
			}
		}
	}
}

// standIn is the in-process executor reporting a task state, through the
// same path as an executor's UPDATE call. Caller holds mu.
func (a *Agent) standIn(e *executor, id mesos.TaskID, state mesos.TaskState, msg string) {
	exID := e.info.ExecutorID
	st := mesos.TaskStatus{
		TaskID:     id,
		State:      state.Enum(),
		Source:     mesos.SOURCE_EXECUTOR.Enum(),
		ExecutorID: &exID,
		Timestamp:  nowSeconds(),
		UUID:       newUUID(),
	}
	if msg != "" {
		st.Message = &msg
	}
	a.executorUpdate(e, st)
}

// executorUpdate is an executor's status update arriving at the agent
// (mesos-api.md 5.5). Caller holds mu.
func (a *Agent) executorUpdate(e *executor, st mesos.TaskStatus) {
	// The agent adds agent_id, a timestamp if missing and container_status;
	// executor_id stays as the executor sent it (checked on a live 1.12
	// agent: absent if the executor left it out).
	st.Source = mesos.SOURCE_EXECUTOR.Enum()
	st.AgentID = &mesos.AgentID{Value: a.cfg.ID.Value}
	if st.Timestamp == nil {
		st.Timestamp = nowSeconds()
	}
	st.ContainerStatus = a.containerStatus(e)
	ack := func() { e.sub.push(eventAcknowledged(st.TaskID, st.UUID)) }

	if a.isDuplicate(e.fwID.Value, st.TaskID.Value, st.UUID) {
		ack()
		return
	}
	t := e.tasks[st.TaskID.Value]
	if t == nil {
		// Unknown here (e.g. its terminal update was already acknowledged):
		// a real agent still forwards it, and sends the executor no ack.
		a.enqueueUpdate(e.fwID, st, st.GetState())
		return
	}
	if isTerminal(t.state) || (t.queued && !isTerminal(st.GetState())) {
		ack() // acknowledged but otherwise dropped
		return
	}
	t.state = st.GetState()
	t.statuses = append(t.statuses, st)
	a.enqueueUpdate(e.fwID, st, t.state)
	ack()
}

func (a *Agent) containerStatus(e *executor) *mesos.ContainerStatus {
	cs := &mesos.ContainerStatus{
		ContainerID: &mesos.ContainerID{Value: e.containerID},
		NetworkInfos: []mesos.NetworkInfo{{IPAddresses: []mesos.NetworkInfo_IPAddress{{
			Protocol:  mesos.IPv4.Enum(),
			IPAddress: &a.cfg.IP,
		}}}},
	}
	if e.pid > 0 {
		pid := uint32(e.pid)
		cs.ExecutorPID = &pid
	}
	if e.command != nil {
		// The built-in command executor runs inside this process.
		pid := uint32(os.Getpid())
		cs.ExecutorPID = &pid
	}
	return cs
}

// startExecutor creates the sandbox, then fetches, links volumes and spawns
// the process in the background; the registration timer starts now, as in
// Mesos (fetching counts against it). Caller holds mu.
func (a *Agent) startExecutor(e *executor) {
	runs := filepath.Join(a.slaveDir(), "frameworks", e.fwID.Value, "executors", e.info.ExecutorID.Value, "runs")
	e.dir = filepath.Join(runs, e.containerID)
	timeout := a.cfg.ExecutorRegisterTimout
	e.regTimer = time.AfterFunc(timeout, func() { a.registrationTimeout(e, timeout) })

	var res []mesos.Resource
	res = append(res, e.info.Resources...)
	for _, pl := range e.queue {
		for _, t := range pl.tasks {
			res = append(res, t.Resources...)
		}
	}
	f := a.framework(e.fwID.Value)
	env := a.executorEnv(e, f.info)
	a.event("launching executor", append(execFields(e), zap.String("sandbox", e.dir),
		zap.Int("uris", len(e.info.Command.GetURIs())))...)
	info := e.info
	a.procs.Add(1)
	go func() {
		defer a.procs.Done()
		cmd, err := a.prepare(info, e.containerID, runs, e.dir, res, env)
		if err == nil {
			err = cmd.Start()
			// The child has its own copies of stdout/stderr now.
			cmd.Stdout.(*os.File).Close()
			cmd.Stderr.(*os.File).Close()
			if err != nil {
				err = fmt.Errorf("failed to execute %q: %w", info.Command.GetValue(), err)
			}
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if err != nil {
			a.launchFailed(e, err)
			return
		}
		e.pid = cmd.Process.Pid
		a.event("executor process started", append(execFields(e), zap.Int("pid", e.pid))...)
		if a.stopped || e.state == execTerminated || e.destroyRequested {
			_ = syscall.Kill(-e.pid, syscall.SIGKILL)
		}
		a.procs.Add(1)
		go func() {
			defer a.procs.Done()
			_ = cmd.Wait()
			// The container ends with its leader: whatever else runs in the
			// process group (the executor under `sh -c`, its children) goes.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			status := int32(-1)
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
				status = int32(ws)
			}
			a.executorExited(e, status)
		}()
	}()
}

// prepare builds the sandbox (stdout/stderr, latest link), runs the fetcher,
// links the volumes and returns the command ready to start.
func (a *Agent) prepare(info mesos.ExecutorInfo, containerID, runs, dir string, res []mesos.Resource, env []string) (*exec.Cmd, error) {
	if err := os.MkdirAll(runs, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create sandbox: %w", err)
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		return nil, fmt.Errorf("failed to create sandbox: %w", err)
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		return nil, fmt.Errorf("failed to create sandbox: %w", err)
	}
	latest := filepath.Join(runs, "latest")
	_ = os.Remove(latest)
	if err := os.Symlink(dir, latest); err != nil {
		return nil, fmt.Errorf("failed to link sandbox: %w", err)
	}
	stdout, err := os.OpenFile(filepath.Join(dir, "stdout"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	stderr, err := os.OpenFile(filepath.Join(dir, "stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		stdout.Close()
		return nil, err
	}
	closeAll := func() { stdout.Close(); stderr.Close() }
	if err := a.fetchAll(info.Command.GetURIs(), dir, stderr); err != nil {
		closeAll()
		return nil, fmt.Errorf("Failed to fetch all URIs for container '%s': %w", containerID, err)
	}
	if err := a.linkVolumes(dir, res); err != nil {
		closeAll()
		return nil, err
	}
	cmd, err := command(info.Command, env, dir)
	if err != nil {
		closeAll()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, nil
}

// command turns a CommandInfo into a process the way the Mesos launcher
// does: shell → /bin/sh -c value; otherwise value is the program (looked up
// in the executor's PATH) and arguments its argv.
func command(ci *mesos.CommandInfo, env []string, dir string) (*exec.Cmd, error) {
	if ci == nil || ci.GetValue() == "" {
		return nil, errors.New("executor command is empty")
	}
	cmd := &exec.Cmd{Env: env, Dir: dir}
	if ci.Shell == nil || *ci.Shell {
		cmd.Path = "/bin/sh"
		cmd.Args = []string{"sh", "-c", ci.GetValue()}
		return cmd, nil
	}
	path := ci.GetValue()
	if !strings.Contains(path, "/") {
		p, err := lookPath(path, env)
		if err != nil {
			return nil, err
		}
		path = p
	} else if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	cmd.Path = path
	cmd.Args = append([]string(nil), ci.Arguments...)
	if len(cmd.Args) == 0 {
		cmd.Args = []string{ci.GetValue()}
	}
	return cmd, nil
}

// errCommandNotFound: a non-shell command's program is not in the PATH.
var errCommandNotFound = errors.New("command not found")

func lookPath(name string, env []string) (string, error) {
	pathVar := defaultPath
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			pathVar = kv[len("PATH="):]
		}
	}
	for _, d := range filepath.SplitList(pathVar) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("failed to find %q in PATH %q: %w", name, pathVar, errCommandNotFound)
}

// launchFailed: the container never started (fetch, volume or exec error).
// Tasks fail with REASON_CONTAINER_LAUNCH_FAILED; the master hears of the
// executor's end with status -1 (no wait status). Caller holds mu.
func (a *Agent) launchFailed(e *executor, err error) {
	if e.state == execTerminated {
		return
	}
	reason := mesos.REASON_CONTAINER_LAUNCH_FAILED
	e.termReason = &reason
	e.termMessage = "Failed to launch container: " + err.Error()
	a.log.Warn("executor failed to launch", append(execFields(e), zap.Error(err))...)
	a.executorGone(e, -1)
}

// registrationTimeout: the executor did not subscribe in time; its
// container is destroyed (SIGKILL) and its tasks fail with
// REASON_EXECUTOR_REGISTRATION_TIMEOUT.
func (a *Agent) registrationTimeout(e *executor, d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped || e.state != execRegistering {
		return
	}
	reason := mesos.REASON_EXECUTOR_REGISTRATION_TIMEOUT
	e.termReason = &reason
	e.termMessage = "Executor did not register within " + stoutDuration(d)
	e.state = execTerminating
	a.log.Warn("executor did not subscribe in time; destroying it", append(execFields(e), zap.Duration("timeout", d))...)
	if e.pid > 0 {
		_ = syscall.Kill(-e.pid, syscall.SIGKILL)
	} else {
		e.destroyRequested = true
	}
}

// executorExited is called when the executor process has been reaped.
func (a *Agent) executorExited(e *executor, status int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e.exited = true
	if a.stopped || e.state == execTerminated {
		return
	}
	a.executorGone(e, status)
}

// executorGone finishes an executor run: the master hears first (FAILURE),
// then every unfinished task gets TASK_FAILED / SOURCE_AGENT with the
// recorded cause or REASON_EXECUTOR_TERMINATED. Caller holds mu.
func (a *Agent) executorGone(e *executor, status int32) {
	a.event("executor terminated", append(execFields(e), zap.Int32("wait_status", status),
		zap.Int("tasks", len(e.tasks)))...)
	e.state = execTerminated
	e.stopTimers()
	if e.sub != nil {
		e.sub.close()
		e.sub = nil
	}
	f := a.framework(e.fwID.Value)
	if f != nil && f.executors[e.info.ExecutorID.Value] == e {
		delete(f.executors, e.info.ExecutorID.Value)
	}
	if f == nil || f.terminating {
		if f != nil {
			a.maybeForgetFramework(e.fwID.Value)
		}
		if e.command == nil {
			a.notifyTerminated(e, status)
		}
		return
	}
	if e.command == nil {
		a.notifyTerminated(e, status)
	}
	reason := mesos.REASON_EXECUTOR_TERMINATED
	msg := "Executor terminated"
	if e.termReason != nil {
		reason, msg = *e.termReason, e.termMessage
	}
	state := mesos.TASK_FAILED
	if e.termState != nil {
		state = *e.termState
	}
	ids := make([]string, 0, len(e.tasks))
	for id, t := range e.tasks {
		if !isTerminal(t.state) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		t := e.tasks[id]
		a.agentUpdate(e.fwID, e, t.info.TaskID, state, reason, msg)
	}
	// Tasks already acknowledged are gone; the rest keep the run listed.
	for id := range e.tasks {
		if _, pending := a.streams[streamKey{e.fwID.Value, id}]; !pending {
			delete(e.tasks, id)
		}
	}
	if len(e.tasks) > 0 {
		f.terminated = append(f.terminated, e)
	}
	a.maybeForgetFramework(e.fwID.Value)
}

// notifyTerminated tells the master (held during a partition).
// Caller holds mu.
func (a *Agent) notifyTerminated(e *executor, status int32) {
	agentID, fw, ex := a.cfg.ID, e.fwID, e.info.ExecutorID
	f := func() { a.master.ExecutorTerminated(agentID, fw, ex, status) }
	if a.offline() {
		a.held = append(a.held, f)
		return
	}
	a.emit(f)
}

// Kill kills a task (mesos-api.md 2.6, agent side).
func (a *Agent) Kill(fw mesos.FrameworkID, taskID mesos.TaskID, policy *mesos.KillPolicy) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.framework(fw.Value)
	if a.stopped || f == nil || f.terminating {
		return
	}
	e := a.executorOfTask(fw.Value, taskID.Value)
	if e == nil {
		if _, pending := a.streams[streamKey{fw.Value, taskID.Value}]; pending {
			return // already terminal; its update is on its way
		}
		a.agentUpdate(fw, nil, taskID, lostOrDropped(f.info), mesos.REASON_EXECUTOR_TERMINATED, "Cannot find executor")
		return
	}
	if e.state == execTerminating || e.state == execTerminated {
		return
	}
	t := e.tasks[taskID.Value]
	if t.queued {
		a.killQueued(e, t)
		return
	}
	if e.inProcess {
		if !isTerminal(t.state) {
			a.standIn(e, taskID, mesos.TASK_KILLED, "Killed by the in-process executor")
		}
		return
	}
	if e.command != nil {
		a.commandKill(e, commandKillGraceOf(t, policy))
		return
	}
	e.sub.push(eventKill(taskID, policy))
}

// killQueued kills a task (and the rest of its group) that the executor has
// not received yet: TASK_KILLED / REASON_TASK_KILLED_DURING_LAUNCH. An
// executor left with nothing to run and never used is shut down.
// Caller holds mu.
func (a *Agent) killQueued(e *executor, t *task) {
	var victims []mesos.TaskID
	kept := e.queue[:0]
	for _, pl := range e.queue {
		hit := false
		for _, ti := range pl.tasks {
			if ti.TaskID.Value == t.info.TaskID.Value {
				hit = true
			}
		}
		if hit && (pl.group > 0 || len(pl.tasks) == 1) {
			for _, ti := range pl.tasks {
				victims = append(victims, ti.TaskID)
			}
			continue
		}
		if hit {
			rest := pendingLaunch{group: pl.group}
			for _, ti := range pl.tasks {
				if ti.TaskID.Value != t.info.TaskID.Value {
					rest.tasks = append(rest.tasks, ti)
				}
			}
			victims = append(victims, t.info.TaskID)
			kept = append(kept, rest)
			continue
		}
		kept = append(kept, pl)
	}
	e.queue = kept
	for _, id := range victims {
		a.agentUpdate(e.fwID, e, id, mesos.TASK_KILLED, mesos.REASON_TASK_KILLED_DURING_LAUNCH, "Killed before delivery to the executor")
	}
	if len(e.queue) == 0 && !e.subscribed {
		e.killedBeforeUse = true
		a.shutdownExecutor(e)
	}
}

// ShutdownExecutor delivers SHUTDOWN and destroys the container after the
// shutdown grace period (ExecutorInfo.shutdown_grace_period or the agent's).
func (a *Agent) ShutdownExecutor(fw mesos.FrameworkID, ex mesos.ExecutorID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.framework(fw.Value)
	if a.stopped || f == nil || f.terminating {
		return
	}
	if e := f.executors[ex.Value]; e != nil {
		a.shutdownExecutor(e)
	}
}

// shutdownExecutor: caller holds mu.
func (a *Agent) shutdownExecutor(e *executor) {
	if e.state == execTerminating || e.state == execTerminated {
		return
	}
	e.state = execTerminating
	if e.regTimer != nil {
		e.regTimer.Stop()
		e.regTimer = nil
	}
	if e.inProcess {
		// The stand-in kills its tasks and exits 0, like a well-behaved
		// executor on SHUTDOWN.
		ids := make([]string, 0, len(e.tasks))
		for id, t := range e.tasks {
			if !isTerminal(t.state) {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		for _, id := range ids {
			a.standIn(e, e.tasks[id].info.TaskID, mesos.TASK_KILLED, "Killed by the in-process executor")
		}
		a.executorGone(e, 0)
		return
	}
	if e.command != nil {
		a.commandShutdown(e)
	}
	if e.sub != nil {
		e.sub.push(eventShutdown())
	}
	grace := e.graceperiod(a.cfg.ExecutorShutdownGrace)
	a.event("shutting down executor", append(execFields(e), zap.Duration("grace", grace))...)
	e.graceTimer = time.AfterFunc(grace, func() { a.destroy(e) })
}

// destroy ends a container whose grace period ran out: SIGTERM to the
// process group, SIGKILL shortly after.
func (a *Agent) destroy(e *executor) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped || e.exited || e.state == execTerminated {
		return
	}
	if e.pid <= 0 {
		// Still fetching: the spawner kills it as soon as it starts.
		e.destroyRequested = true
		return
	}
	a.log.Warn("executor outlived its shutdown grace period; sending SIGTERM, then SIGKILL",
		append(execFields(e), zap.Int("pid", e.pid))...)
	_ = syscall.Kill(-e.pid, syscall.SIGTERM)
	pid := e.pid
	e.killTimer = time.AfterFunc(killEscalation, func() {
		a.mu.Lock()
		exited := e.exited
		a.mu.Unlock()
		if !exited {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
}

// ShutdownFramework shuts down every executor of a framework (TEARDOWN or
// framework removal). From now on the agent sends no status updates for it.
func (a *Agent) ShutdownFramework(fw mesos.FrameworkID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.framework(fw.Value)
	if a.stopped || f == nil {
		return
	}
	f.terminating = true
	for _, e := range f.executors {
		a.shutdownExecutor(e)
	}
	f.terminated = nil
	a.dropStreams(fw.Value)
	a.maybeForgetFramework(fw.Value)
}

// Message relays a scheduler MESSAGE to a subscribed executor (best effort).
func (a *Agent) Message(fw mesos.FrameworkID, ex mesos.ExecutorID, data []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.executorByID(fw.Value, ex.Value)
	if e == nil || e.state != execRunning {
		return
	}
	e.sub.push(eventMessage(data))
}

// KillExecutorProcess SIGKILLs an executor's process group (fault tests).
// For an in-process executor the stand-in "dies" with the same effect.
func (a *Agent) KillExecutorProcess(fw mesos.FrameworkID, ex mesos.ExecutorID) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.executorByID(fw.Value, ex.Value)
	if e == nil {
		return fmt.Errorf("agent %s: no executor %s of framework %s", a.cfg.ID.Value, ex.Value, fw.Value)
	}
	if e.inProcess {
		a.executorGone(e, int32(syscall.SIGKILL))
		return nil
	}
	if e.command != nil {
		// The command executor dies: its container (the command) goes with
		// it, and the agent fails the task (no FAILURE event).
		if e.pid <= 0 || e.exited {
			return fmt.Errorf("agent %s: command executor %s has no process", a.cfg.ID.Value, ex.Value)
		}
		e.command.executorDied = true
		_ = syscall.Kill(-e.pid, syscall.SIGKILL)
		return nil
	}
	if e.pid <= 0 {
		return fmt.Errorf("agent %s: executor %s has no process yet", a.cfg.ID.Value, ex.Value)
	}
	// Kill the executor itself: under `sh -c` that is the shell's child (the
	// shell then exits 137, FAILURE status 35072, as in 10-executor-crash);
	// the rest of the group goes when the leader is reaped.
	members := groupMembers(e.pid)
	if len(members) == 0 {
		members = []int{e.pid}
	}
	for _, pid := range members {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("agent %s: kill executor %s: %w", a.cfg.ID.Value, ex.Value, err)
		}
	}
	return nil
}

// groupMembers lists the live processes of process group pgid other than
// its leader, from /proc (a zombie runs nothing and holds no file: it is
// left out).
func groupMembers(pgid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == pgid {
			continue
		}
		b, err := os.ReadFile("/proc/" + ent.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces.
		rest := string(b)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			out = append(out, pid)
		}
	}
	return out
}

// groupsGone waits, until deadline, for every live process of the process
// groups to end. A SIGKILL is delivered at once but a process ends when
// the kernel has torn it down: the executor under `sh -c` can outlive the
// shell that cmd.Wait saw end, for long enough to create a file in a
// sandbox its caller is about to remove.
func groupsGone(pgids []int, deadline time.Time) bool {
	for _, pg := range pgids {
		for len(groupMembers(pg)) > 0 {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return true
}
