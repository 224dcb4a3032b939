package mesossim

// GET /master/state in the shape of a real master (07-master-state.json),
// which is what Mesos-DNS parses: ports as range strings, slaves[].pid as
// slave(1)@IP:PORT, leader as master@IP:PORT, tasks with statuses.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// resourcesJSON renders a resource list as the master's JSON model does:
// always disk, mem, gpus, cpus; other scalars; RANGES as "[b-e, b-e]";
// SET as "{a, b}".
type resourcesJSON rlist

func (r resourcesJSON) MarshalJSON() ([]byte, error) {
	q := rlist(r).quantities()
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	put := func(k, v string) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(strconv.Quote(k))
		b.WriteByte(':')
		b.WriteString(v)
	}
	for _, k := range []string{"disk", "mem", "gpus", "cpus"} {
		put(k, formatDouble(q.scalars[k]))
	}
	for _, k := range sortedKeys(q.scalars) {
		if k != "disk" && k != "mem" && k != "gpus" && k != "cpus" {
			put(k, formatDouble(q.scalars[k]))
		}
	}
	for _, k := range sortedKeys(q.ranges) {
		if len(q.ranges[k]) > 0 {
			put(k, strconv.Quote(formatRanges(q.ranges[k])))
		}
	}
	for _, k := range sortedKeys(q.sets) {
		put(k, strconv.Quote("{"+strings.Join(q.sets[k], ", ")+"}"))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

type stateLeaderInfo struct {
	ID       string `json:"id"`
	PID      string `json:"pid"`
	Port     int    `json:"port"`
	Hostname string `json:"hostname"`
}

type stateSlave struct {
	ID                  string                   `json:"id"`
	Hostname            string                   `json:"hostname"`
	Port                int                      `json:"port"`
	Attributes          map[string]interface{}   `json:"attributes"`
	PID                 string                   `json:"pid"`
	RegisteredTime      float64                  `json:"registered_time"`
	Resources           resourcesJSON            `json:"resources"`
	UsedResources       resourcesJSON            `json:"used_resources"`
	OfferedResources    resourcesJSON            `json:"offered_resources"`
	ReservedResources   map[string]resourcesJSON `json:"reserved_resources"`
	UnreservedResources resourcesJSON            `json:"unreserved_resources"`
	Active              bool                     `json:"active"`
	Deactivated         bool                     `json:"deactivated"`
	Version             string                   `json:"version"`
	Capabilities        []string                 `json:"capabilities"`
}

type stateStatus struct {
	State           string          `json:"state"`
	Timestamp       float64         `json:"timestamp"`
	Labels          json.RawMessage `json:"labels,omitempty"`
	ContainerStatus json.RawMessage `json:"container_status,omitempty"`
	Healthy         *bool           `json:"healthy,omitempty"`
}

type stateTask struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	FrameworkID string          `json:"framework_id"`
	ExecutorID  string          `json:"executor_id"`
	SlaveID     string          `json:"slave_id"`
	State       string          `json:"state"`
	Resources   resourcesJSON   `json:"resources"`
	Role        string          `json:"role"`
	Statuses    []stateStatus   `json:"statuses"`
	Labels      json.RawMessage `json:"labels,omitempty"`
	Discovery   json.RawMessage `json:"discovery,omitempty"`
	Container   json.RawMessage `json:"container,omitempty"`
	HealthCheck json.RawMessage `json:"health_check,omitempty"`
}

type stateOffer struct {
	ID             string          `json:"id"`
	FrameworkID    string          `json:"framework_id"`
	AllocationInfo json.RawMessage `json:"allocation_info"`
	SlaveID        string          `json:"slave_id"`
	Resources      resourcesJSON   `json:"resources"`
}

type stateFramework struct {
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	UsedResources    resourcesJSON     `json:"used_resources"`
	OfferedResources resourcesJSON     `json:"offered_resources"`
	Capabilities     []string          `json:"capabilities"`
	Hostname         string            `json:"hostname"`
	WebuiURL         string            `json:"webui_url"`
	Active           bool              `json:"active"`
	Connected        bool              `json:"connected"`
	Recovered        bool              `json:"recovered"`
	User             string            `json:"user"`
	FailoverTimeout  float64           `json:"failover_timeout"`
	Checkpoint       bool              `json:"checkpoint"`
	RegisteredTime   float64           `json:"registered_time"`
	UnregisteredTime float64           `json:"unregistered_time"`
	Principal        string            `json:"principal,omitempty"`
	Resources        resourcesJSON     `json:"resources"`
	Role             string            `json:"role,omitempty"`
	Roles            []string          `json:"roles,omitempty"`
	Tasks            []stateTask       `json:"tasks"`
	UnreachableTasks []stateTask       `json:"unreachable_tasks"`
	CompletedTasks   []stateTask       `json:"completed_tasks"`
	Offers           []stateOffer      `json:"offers"`
	Executors        []json.RawMessage `json:"executors"`
	Labels           json.RawMessage   `json:"labels,omitempty"`
}

type masterState struct {
	Version                string            `json:"version"`
	StartTime              float64           `json:"start_time"`
	ElectedTime            float64           `json:"elected_time"`
	ID                     string            `json:"id"`
	PID                    string            `json:"pid"`
	Hostname               string            `json:"hostname"`
	Capabilities           []string          `json:"capabilities"`
	ActivatedSlaves        float64           `json:"activated_slaves"`
	DeactivatedSlaves      float64           `json:"deactivated_slaves"`
	UnreachableSlaves      float64           `json:"unreachable_slaves"`
	Leader                 string            `json:"leader"`
	LeaderInfo             stateLeaderInfo   `json:"leader_info"`
	Flags                  map[string]string `json:"flags"`
	Slaves                 []stateSlave      `json:"slaves"`
	RecoveredSlaves        []interface{}     `json:"recovered_slaves"`
	Frameworks             []stateFramework  `json:"frameworks"`
	CompletedFrameworks    []stateFramework  `json:"completed_frameworks"`
	OrphanTasks            []interface{}     `json:"orphan_tasks"`
	UnregisteredFrameworks []interface{}     `json:"unregistered_frameworks"`
}

func (m *master) serveState(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		textError(w, http.StatusMethodNotAllowed, "405 Method Not Allowed. Expecting one of { 'GET' }, but received '"+r.Method+"'.")
		return
	}
	m.mu.Lock()
	b, err := json.Marshal(m.state()) // the state shares the master's resource lists
	m.mu.Unlock()
	if err != nil {
		textError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if cb := r.URL.Query().Get("jsonp"); cb != "" {
		w.Header().Set("Content-Type", "text/javascript")
		b = append(append([]byte(cb+"("), b...), ')', ';')
	}
	w.Write(b)
}

func attributesJSON(attrs []mesos.Attribute) map[string]interface{} {
	out := map[string]interface{}{}
	for _, a := range attrs {
		switch a.Type {
		case mesos.SCALAR:
			out[a.Name] = a.GetScalar().GetValue()
		case mesos.RANGES:
			out[a.Name] = formatRanges(a.GetRanges().GetRange())
		case mesos.SET:
			out[a.Name] = "{" + strings.Join(a.GetSet().GetItem(), ", ") + "}"
		default:
			out[a.Name] = a.GetText().GetValue()
		}
	}
	return out
}

func (m *master) state() masterState {
	pid := m.pid()
	st := masterState{
		Version:                Version,
		StartTime:              m.startTime,
		ElectedTime:            m.startTime,
		ID:                     m.id,
		PID:                    pid,
		Hostname:               m.ip,
		Capabilities:           masterCapabilities,
		Leader:                 pid,
		LeaderInfo:             stateLeaderInfo{ID: m.id, PID: pid, Port: m.port, Hostname: m.ip},
		Slaves:                 []stateSlave{},
		RecoveredSlaves:        []interface{}{},
		Frameworks:             []stateFramework{},
		CompletedFrameworks:    []stateFramework{},
		OrphanTasks:            []interface{}{},
		UnregisteredFrameworks: []interface{}{},
		Flags: map[string]string{
			"allocation_interval":       formatStoutDuration(m.allocEvery.Seconds()),
			"agent_ping_timeout":        "15secs",
			"max_agent_ping_timeouts":   "5",
			"max_completed_frameworks":  strconv.Itoa(maxCompletedFrameworks),
			"port":                      strconv.Itoa(m.port),
			"ip":                        m.ip,
			"registry":                  "replicated_log",
			"root_submissions":          "true",
			"min_allocatable_resources": "cpus:0.01|mem:32",
		},
		UnreachableSlaves: float64(len(m.unreachable)),
	}
	for _, id := range sortedKeys(m.agents) {
		e := m.agents[id]
		if e.connected {
			st.ActivatedSlaves++
		} else {
			st.DeactivatedSlaves++
		}
		reserved := map[string]resourcesJSON{}
		var unreserved rlist
		for _, r := range e.total {
			if isReserved(&r) {
				role := reservationRole(&r)
				reserved[role] = resourcesJSON(rlist(reserved[role]).add(r))
			} else {
				unreserved = unreserved.add(r)
			}
		}
		st.Slaves = append(st.Slaves, stateSlave{
			ID:                  id,
			Hostname:            e.rec.info.Hostname,
			Port:                e.rec.info.Port,
			Attributes:          attributesJSON(e.rec.cfg.Attributes),
			PID:                 e.rec.info.PID(),
			RegisteredTime:      e.registeredTime,
			Resources:           resourcesJSON(e.total),
			UsedResources:       resourcesJSON(e.usedFlat),
			OfferedResources:    resourcesJSON(e.offeredFlat),
			ReservedResources:   reserved,
			UnreservedResources: resourcesJSON(unreserved),
			Active:              e.connected,
			Version:             Version,
			Capabilities:        agentCapabilities,
		})
	}
	for _, id := range sortedKeys(m.frameworks) {
		st.Frameworks = append(st.Frameworks, m.frameworkState(m.frameworks[id]))
	}
	for _, fw := range m.completed {
		st.CompletedFrameworks = append(st.CompletedFrameworks, m.frameworkState(fw))
	}
	return st
}

func formatStoutDuration(secs float64) string {
	if secs == float64(int64(secs)) {
		return strconv.FormatInt(int64(secs), 10) + "secs"
	}
	return strconv.FormatFloat(secs*1000, 'f', -1, 64) + "ms"
}

func taskState(t *task) stateTask {
	st := stateTask{
		ID:          t.info.TaskID.Value,
		Name:        t.info.Name,
		FrameworkID: t.fw,
		ExecutorID:  t.executorID,
		SlaveID:     t.agent,
		State:       t.state.String(),
		Resources:   resourcesJSON(t.info.Resources),
		Role:        t.role,
		Statuses:    []stateStatus{},
	}
	for _, s := range t.statuses {
		ss := stateStatus{State: s.GetState().String(), Timestamp: s.GetTimestamp(), Healthy: s.Healthy}
		if s.Labels != nil && len(s.Labels.Labels) > 0 {
			ss.Labels = labelsArray(s.Labels)
		}
		if s.ContainerStatus != nil {
			ss.ContainerStatus = protoToJSON(s.ContainerStatus)
		}
		st.Statuses = append(st.Statuses, ss)
	}
	if t.info.Labels != nil && len(t.info.Labels.Labels) > 0 {
		st.Labels = labelsArray(t.info.Labels)
	}
	if t.info.Discovery != nil {
		st.Discovery = protoToJSON(t.info.Discovery)
	}
	if t.info.Container != nil {
		st.Container = protoToJSON(t.info.Container)
	}
	if t.info.HealthCheck != nil {
		st.HealthCheck = protoToJSON(t.info.HealthCheck)
	}
	return st
}

func labelsArray(l *mesos.Labels) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range l.Labels {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(protoToJSON(&l.Labels[i]))
	}
	b.WriteByte(']')
	return b.Bytes()
}

func (m *master) frameworkState(fw *framework) stateFramework {
	var caps []string
	for _, c := range fw.info.Capabilities {
		caps = append(caps, c.Type.String())
	}
	if caps == nil {
		caps = []string{}
	}
	fs := stateFramework{
		ID:               fw.id,
		Name:             fw.info.Name,
		Capabilities:     caps,
		Hostname:         fw.info.GetHostname(),
		WebuiURL:         fw.info.GetWebUiURL(),
		Active:           fw.active,
		Connected:        fw.connected,
		Recovered:        fw.recovered,
		User:             fw.info.User,
		FailoverTimeout:  fw.info.GetFailoverTimeout(),
		Checkpoint:       fw.info.GetCheckpoint(),
		RegisteredTime:   fw.registeredTime,
		UnregisteredTime: fw.unregisteredTime,
		Principal:        fw.info.GetPrincipal(),
		Tasks:            []stateTask{},
		UnreachableTasks: []stateTask{},
		CompletedTasks:   []stateTask{},
		Offers:           []stateOffer{},
		Executors:        []json.RawMessage{},
	}
	if fw.multiRole {
		fs.Roles = append([]string{}, fw.roles...)
		if fs.Roles == nil {
			fs.Roles = []string{}
		}
	} else if len(fw.roles) > 0 {
		fs.Role = fw.roles[0]
	}
	var used, offered rlist
	for _, e := range m.agents {
		used = used.addAll(e.usedBy[fw.id].unallocated())
	}
	for _, id := range sortedKeys(fw.tasks) {
		fs.Tasks = append(fs.Tasks, taskState(fw.tasks[id]))
	}
	for _, id := range sortedKeys(fw.unreachableTasks) {
		fs.UnreachableTasks = append(fs.UnreachableTasks, taskState(fw.unreachableTasks[id]))
	}
	for _, t := range fw.completedTasks {
		fs.CompletedTasks = append(fs.CompletedTasks, taskState(t))
	}
	for _, id := range sortedKeys(fw.offers) {
		o := fw.offers[id]
		role := o.role
		offered = offered.addAll(o.resources.unallocated())
		fs.Offers = append(fs.Offers, stateOffer{
			ID: o.id, FrameworkID: fw.id, SlaveID: o.agent, Resources: resourcesJSON(o.resources),
			AllocationInfo: protoToJSON(&mesos.Resource_AllocationInfo{Role: &role}),
		})
	}
	for _, agentID := range sortedKeys(fw.executors) {
		exs := fw.executors[agentID]
		ids := make([]string, 0, len(exs))
		for id := range exs {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			b := protoToJSON(exs[id])
			b = append(b[:len(b)-1], []byte(`,"slave_id":`+strconv.Quote(agentID)+`}`)...)
			fs.Executors = append(fs.Executors, b)
		}
	}
	fs.UsedResources = resourcesJSON(used)
	fs.OfferedResources = resourcesJSON(offered)
	fs.Resources = resourcesJSON(used.clone().addAll(offered))
	if fw.info.Labels != nil && len(fw.info.Labels.Labels) > 0 {
		fs.Labels = labelsArray(fw.info.Labels)
	}
	return fs
}
