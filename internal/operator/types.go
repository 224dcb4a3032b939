package operator

import (
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// The scheduler API's JSON, as the CLI reads it (scheduler/api writes it;
// the tests run that handler, so a change of shape there fails here).

// Plan is GET /v1/plans/<name>.
type Plan struct {
	Status   string   `json:"status"`
	Strategy string   `json:"strategy"`
	Phases   []Phase  `json:"phases"`
	Errors   []string `json:"errors"`
}

// Phase is one phase of a plan.
type Phase struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Status   string `json:"status"`
	Strategy string `json:"strategy"`
	Steps    []Step `json:"steps"`
}

// Step is one step of a phase.
type Step struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// Ports are a task's Consul ports, as the task contract names them.
type Ports = taskspec.Ports

// PodInfo is one task of a pod (GET /v1/pod/<name>/info, /v1/pod/status).
type PodInfo struct {
	Info   TaskInfo   `json:"info"`
	Status TaskStatus `json:"status"`
}

// TaskInfo is what a task is and where it runs.
type TaskInfo struct {
	Name          string     `json:"name"`
	Role          string     `json:"role"`
	TaskID        string     `json:"taskId"`
	AgentID       string     `json:"agentId"`
	Hostname      string     `json:"hostname"`
	IP            string     `json:"ip"`
	Ports         Ports      `json:"ports"`
	ConfigID      string     `json:"configId"`
	ReservationID string     `json:"reservationId"`
	PersistenceID string     `json:"persistenceId"`
	Goal          string     `json:"goal"`
	LaunchedAt    *time.Time `json:"launchedAt"`
}

// TaskStatus is a task's latest Mesos state.
type TaskStatus struct {
	State     string `json:"state"`
	Reason    string `json:"reason"`
	Message   string `json:"message"`
	Healthy   *bool  `json:"healthy"`
	Failures  int    `json:"failures"`
	Updated   string `json:"updated"`
	Summary   string `json:"summary"`
	Replacing bool   `json:"replacing"`
}

// PodStatus is GET /v1/pod/status.
type PodStatus struct {
	Service string    `json:"service"`
	Pods    []PodInfo `json:"pods"`
}

// CommandResult is the answer to POST /v1/pod/<name>/restart or /replace.
type CommandResult struct {
	Pod   string   `json:"pod"`
	Tasks []string `json:"tasks"`
}

// Endpoint is GET /v1/endpoints/<name>: the addresses of the running
// tasks' listener, by IP and by Mesos-DNS name, and the servers' alone.
type Endpoint struct {
	Address []string `json:"address"`
	DNS     []string `json:"dns"`
	Servers []string `json:"servers"`
	// VIP is DC/OS's load-balanced name of the endpoint
	// (<vip>.<service>.l4lb.thisdcos.directory:<port>), if it has one.
	VIP string `json:"vip,omitempty"`
}

// Member is one Consul LAN member.
type Member struct {
	Name       string `json:"name"`
	Address    string `json:"address"`
	Status     string `json:"status"`
	Role       string `json:"role"`
	Datacenter string `json:"datacenter"`
	Build      string `json:"build"`
}

// Peer is one server of the raft configuration.
type Peer struct {
	Node    string `json:"node"`
	ID      string `json:"id"`
	Address string `json:"address"`
	Leader  bool   `json:"leader"`
	Voter   bool   `json:"voter"`
}
