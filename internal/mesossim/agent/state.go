package agent

// GET /state (also /slave(1)/state, /state.json): the agent's own view in
// the shape of a real 1.12 agent (07-agent-state-127.0.0.2x.json), a
// subset: identity, capabilities, total resources, attributes, and for each
// framework its executors with their resources, queued, live and completed
// tasks. Unlike the master, the agent counts the command executor's
// allowance (cpus 0.1, mem 32) in the executor's resources.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dcos-consul/dcos-consul/internal/mesossim/stoutjson"
)

// Version is the Mesos version the simulated master and agents report.
const Version = "1.12.0"

// Capabilities are a real 1.12 agent's (07-master-state.json
// slaves[].capabilities, 07-agent-state-*.json).
var Capabilities = []string{"MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT",
	"RESOURCE_PROVIDER", "RESIZE_VOLUME", "AGENT_OPERATION_FEEDBACK", "AGENT_DRAINING", "TASK_RESOURCE_LIMITS"}

type stateResources []mesos.Resource

// MarshalJSON: always disk, mem, gpus, cpus (doubles as Mesos writes
// them), then ranges such as ports as "[b-e, b-e]".
func (rs stateResources) MarshalJSON() ([]byte, error) {
	scalars := map[string]float64{}
	ranges := map[string][]mesos.Value_Range{}
	for _, r := range rs {
		switch {
		case r.Scalar != nil:
			scalars[r.Name] += r.Scalar.Value
		case r.Ranges != nil:
			ranges[r.Name] = append(ranges[r.Name], r.Ranges.Range...)
		}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range []string{"disk", "mem", "gpus", "cpus"} {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", k, stoutjson.FormatDouble(scalars[k]))
	}
	names := make([]string, 0, len(ranges))
	for k := range ranges {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, ",%q:%s", k, strconv.Quote(formatRanges(ranges[k])))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// formatRanges merges and prints ranges as Mesos does: "[8000-9000, 31000-32000]".
func formatRanges(rs []mesos.Value_Range) string {
	rs = append([]mesos.Value_Range(nil), rs...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].Begin < rs[j].Begin })
	var merged []mesos.Value_Range
	for _, r := range rs {
		if n := len(merged); n > 0 && r.Begin <= merged[n-1].End+1 {
			if r.End > merged[n-1].End {
				merged[n-1].End = r.End
			}
			continue
		}
		merged = append(merged, r)
	}
	parts := make([]string, len(merged))
	for i, r := range merged {
		parts[i] = fmt.Sprintf("%d-%d", r.Begin, r.End)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

type stateStatus struct {
	State           string          `json:"state"`
	Timestamp       float64         `json:"timestamp"`
	ContainerStatus json.RawMessage `json:"container_status,omitempty"`
}

type stateTask struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	FrameworkID string         `json:"framework_id"`
	ExecutorID  string         `json:"executor_id"`
	SlaveID     string         `json:"slave_id"`
	State       string         `json:"state"`
	Resources   stateResources `json:"resources"`
	Role        string         `json:"role"`
	Statuses    []stateStatus  `json:"statuses"`
}

type stateExecutor struct {
	ID             string         `json:"id"`
	Name           string         `json:"name"`
	Source         string         `json:"source"`
	Container      string         `json:"container"`
	Directory      string         `json:"directory"`
	Resources      stateResources `json:"resources"`
	Role           string         `json:"role"`
	Tasks          []stateTask    `json:"tasks"`
	QueuedTasks    []stateTask    `json:"queued_tasks"`
	CompletedTasks []stateTask    `json:"completed_tasks"`
}

type stateFramework struct {
	ID                 string          `json:"id"`
	Name               string          `json:"name"`
	User               string          `json:"user"`
	FailoverTimeout    float64         `json:"failover_timeout"`
	Checkpoint         bool            `json:"checkpoint"`
	Hostname           string          `json:"hostname"`
	Principal          string          `json:"principal,omitempty"`
	Roles              []string        `json:"roles"`
	Executors          []stateExecutor `json:"executors"`
	CompletedExecutors []stateExecutor `json:"completed_executors"`
}

type agentState struct {
	Version             string                 `json:"version"`
	ID                  string                 `json:"id"`
	PID                 string                 `json:"pid"`
	Hostname            string                 `json:"hostname"`
	Capabilities        []string               `json:"capabilities"`
	Resources           stateResources         `json:"resources"`
	Attributes          map[string]interface{} `json:"attributes"`
	Flags               map[string]string      `json:"flags"`
	Frameworks          []stateFramework       `json:"frameworks"`
	CompletedFrameworks []stateFramework       `json:"completed_frameworks"`
}

func (a *Agent) serveState(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		httpError(w, http.StatusMethodNotAllowed, "")
		return
	}
	b, err := json.Marshal(a.state())
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (a *Agent) state() agentState {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := agentState{
		Version:      Version,
		ID:           a.cfg.ID.Value,
		PID:          a.PID(),
		Hostname:     a.cfg.Hostname,
		Capabilities: Capabilities,
		Resources:    stateResources(a.cfg.Resources),
		Attributes:   map[string]interface{}{},
		Flags: map[string]string{
			"executor_shutdown_grace_period": stoutDuration(a.cfg.ExecutorShutdownGrace),
			"executor_registration_timeout":  stoutDuration(a.cfg.ExecutorRegisterTimout),
			"recover":                        "reconnect",
			"work_dir":                       a.cfg.WorkDir,
			"launcher_dir":                   launcherDir,
		},
		Frameworks:          []stateFramework{},
		CompletedFrameworks: []stateFramework{},
	}
	for _, at := range a.cfg.Attributes {
		switch {
		case at.Scalar != nil:
			st.Attributes[at.Name] = at.Scalar.Value
		case at.Text != nil:
			st.Attributes[at.Name] = at.Text.GetValue()
		}
	}
	ids := make([]string, 0, len(a.frameworks))
	for id := range a.frameworks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		st.Frameworks = append(st.Frameworks, a.frameworkState(a.frameworks[id]))
	}
	return st
}

func (a *Agent) frameworkState(f *framework) stateFramework {
	fs := stateFramework{
		ID:                 f.info.GetID().GetValue(),
		Name:               f.info.Name,
		User:               f.info.User,
		FailoverTimeout:    f.info.GetFailoverTimeout(),
		Checkpoint:         f.info.GetCheckpoint(),
		Hostname:           f.info.GetHostname(),
		Principal:          f.info.GetPrincipal(),
		Roles:              append([]string{}, f.info.Roles...),
		Executors:          []stateExecutor{},
		CompletedExecutors: []stateExecutor{},
	}
	exIDs := make([]string, 0, len(f.executors))
	for id := range f.executors {
		exIDs = append(exIDs, id)
	}
	sort.Strings(exIDs)
	for _, id := range exIDs {
		fs.Executors = append(fs.Executors, a.executorState(f.executors[id], true))
	}
	for _, e := range f.terminated {
		fs.CompletedExecutors = append(fs.CompletedExecutors, a.executorState(e, false))
	}
	return fs
}

// executorState: a live executor's resources are its own plus its
// unfinished tasks' (the agent's view, which counts the command executor's
// allowance); a completed one's are its own.
func (a *Agent) executorState(e *executor, live bool) stateExecutor {
	es := stateExecutor{
		ID:             e.info.ExecutorID.Value,
		Name:           e.info.GetName(),
		Source:         e.info.GetSource(),
		Container:      e.containerID,
		Directory:      e.dir,
		Role:           roleOf(e.info.Resources),
		Tasks:          []stateTask{},
		QueuedTasks:    []stateTask{},
		CompletedTasks: []stateTask{},
	}
	res := append([]mesos.Resource(nil), e.info.Resources...)
	ids := make([]string, 0, len(e.tasks))
	for id := range e.tasks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		t := e.tasks[id]
		ts := a.taskState(e, t)
		switch {
		case isTerminal(t.state):
			es.CompletedTasks = append(es.CompletedTasks, ts)
		case t.queued:
			es.QueuedTasks = append(es.QueuedTasks, ts)
			res = append(res, t.info.Resources...)
		default:
			es.Tasks = append(es.Tasks, ts)
			res = append(res, t.info.Resources...)
		}
	}
	if !live {
		res = e.info.Resources
	}
	es.Resources = res
	return es
}

func (a *Agent) taskState(e *executor, t *task) stateTask {
	exID := e.info.ExecutorID.Value
	if e.command != nil || (t.info.Executor == nil && t.info.Command != nil) {
		exID = "" // a command task names no executor
	}
	ts := stateTask{
		ID:          t.info.TaskID.Value,
		Name:        t.info.Name,
		FrameworkID: e.fwID.Value,
		ExecutorID:  exID,
		SlaveID:     a.cfg.ID.Value,
		State:       t.state.String(),
		Resources:   stateResources(t.info.Resources),
		Role:        roleOf(t.info.Resources),
		Statuses:    []stateStatus{},
	}
	for _, s := range t.statuses {
		ss := stateStatus{State: s.GetState().String(), Timestamp: s.GetTimestamp()}
		if s.ContainerStatus != nil {
			cs := *s.ContainerStatus
			cs.ExecutorPID = nil // the agent's state leaves it out (07)
			ss.ContainerStatus = stoutjson.Encode(&cs)
		}
		ts.Statuses = append(ts.Statuses, ss)
	}
	return ts
}

func roleOf(rs []mesos.Resource) string {
	for _, r := range rs {
		if r.AllocationInfo != nil {
			return r.AllocationInfo.GetRole()
		}
	}
	return "*"
}
