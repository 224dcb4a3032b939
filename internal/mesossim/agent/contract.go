// Package agent simulates a Mesos agent: the executor HTTP API
// (POST /api/v1/executor), executor processes with the environment a real
// agent builds, sandboxes, the fetcher, persistent volumes, and the reliable
// status-update pipeline. The simulated master (package mesossim) drives it
// through the methods of Agent and hears back through the Master interface.
//
// This file is the contract between the two; agent.go and friends implement it.
package agent

import (
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
)

// Master is what an agent tells the master. The master implements it.
// Calls may come from any goroutine; the master must not call back into
// the agent synchronously from inside them (queue the work instead).
type Master interface {
	// StatusUpdate forwards the head of a task's update stream (always with
	// a uuid, source AGENT or EXECUTOR). latest is the agent's current state
	// of the task, which may be newer than update.State (mesos-api.md fact 4).
	// The master forwards it to the scheduler, and calls Agent.Acknowledge
	// when the scheduler acknowledges it.
	StatusUpdate(agentID mesos.AgentID, fw mesos.FrameworkID, update mesos.TaskStatus, latest mesos.TaskState)
	// ExecutorTerminated reports that an executor's process ended (the master
	// sends the scheduler a FAILURE event with executor_id and status).
	ExecutorTerminated(agentID mesos.AgentID, fw mesos.FrameworkID, executor mesos.ExecutorID, status int32)
	// ExecutorMessage relays an executor's MESSAGE call to the scheduler.
	ExecutorMessage(agentID mesos.AgentID, fw mesos.FrameworkID, executor mesos.ExecutorID, data []byte)
}

// Config describes one agent.
type Config struct {
	ID       mesos.AgentID
	Hostname string
	IP       string // 127.0.0.x
	Port     int    // the executor API port, 5051 by default
	// WorkDir holds slaves/<id>/frameworks/.../runs/<uuid> sandboxes and
	// volumes/roles/<role>/<persistence id>.
	WorkDir   string
	Resources []mesos.Resource // total, unreserved (cpus, mem, disk, ports)
	// Attributes are the agent's attributes (e.g. public_ip:true).
	Attributes []mesos.Attribute
	// InProcess runs no processes and serves no HTTP: every launched task
	// goes TASK_STARTING then TASK_RUNNING from an in-process stand-in, and
	// kills answer TASK_KILLED. For scale tests with thousands of agents.
	InProcess bool
	// Timing; zero values take the real Mesos defaults.
	ExecutorShutdownGrace  time.Duration // 5s
	StatusUpdateRetry      time.Duration // 10s, doubling, capped at StatusUpdateRetryMax
	StatusUpdateRetryMax   time.Duration // 10min
	ExecutorRegisterTimout time.Duration // 1min
	RecoveryTimeout        time.Duration // 15min (MESOS_RECOVERY_TIMEOUT)
	SubscriptionBackoffMax time.Duration // 2s (MESOS_SUBSCRIPTION_BACKOFF_MAX)
	ExecutorHeartbeat      time.Duration // 30min: HEARTBEAT events on executor streams
	// ExecutorAuthentication: every executor gets a token in
	// MESOS_EXECUTOR_AUTHENTICATION_TOKEN and the executor API requires it
	// as "Authorization: Bearer <token>" (an agent with
	// --authenticate_http_executors): 401 without a valid one, 403 for
	// another executor's.
	ExecutorAuthentication bool
	// Logger receives the agent's account of executors (launch, exit,
	// timeouts, shutdowns); nil discards it.
	Logger *zap.Logger
}

// Launch is one LAUNCH or LAUNCH_GROUP operation the master validated and
// sends to this agent.
type Launch struct {
	Framework mesos.FrameworkInfo // with its ID set
	Executor  mesos.ExecutorInfo  // framework_id set; type CUSTOM with a command
	Tasks     []mesos.TaskInfo    // agent_id set
	Group     bool                // LAUNCH_GROUP
}

// The Agent methods the master calls (implemented in this package):
//
//	func New(cfg Config, m Master) (*Agent, error)
//	func (a *Agent) Start() error            // listen on IP:Port (not when InProcess)
//	func (a *Agent) Stop()                   // agent removed or process exit: kill every executor, close listener
//	func (a *Agent) Config() Config
//	func (a *Agent) Launch(l Launch)         // start or reuse the executor, deliver LAUNCH/LAUNCH_GROUP
//	func (a *Agent) Kill(fw mesos.FrameworkID, task mesos.TaskID, policy *mesos.KillPolicy)
//	func (a *Agent) ShutdownExecutor(fw mesos.FrameworkID, ex mesos.ExecutorID)
//	func (a *Agent) ShutdownFramework(fw mesos.FrameworkID) // TEARDOWN / framework removed
//	func (a *Agent) Acknowledge(fw mesos.FrameworkID, task mesos.TaskID, uuid []byte)
//	func (a *Agent) Message(fw mesos.FrameworkID, ex mesos.ExecutorID, data []byte)
//	func (a *Agent) CreateVolume(role, persistenceID string) error  // CREATE: mkdir volumes/roles/<role>/<id>
//	func (a *Agent) DestroyVolume(role, persistenceID string) error // DESTROY: remove it
//	func (a *Agent) Reregistered()           // master restarted / partition healed: resend unacked head updates
//	func (a *Agent) SetPartitioned(bool)     // while true, nothing reaches the master (updates queue)
//	func (a *Agent) KillExecutorProcess(fw mesos.FrameworkID, ex mesos.ExecutorID) error // fault: SIGKILL
//	func (a *Agent) Executors() []ExecutorState  // for /master/state and tests
//
// ExecutorState describes one executor run for state endpoints and tests.
type ExecutorState struct {
	Framework mesos.FrameworkID
	Executor  mesos.ExecutorID
	Directory string // sandbox
	PID       int    // 0 when InProcess
	Tasks     map[string]mesos.TaskState
	// Terminated: the run has ended; it is listed while some of its tasks'
	// terminal updates await acknowledgement.
	Terminated bool
}
