package mesosdns

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// State is the part of a Mesos master's GET /master/state document that
// Mesos-DNS reads (records/state/state.go). Other keys are ignored; a type
// mismatch or an unparsable pid fails the whole document, as in Mesos-DNS.
type State struct {
	Leader     string      `json:"leader"`
	Frameworks []Framework `json:"frameworks"`
	Slaves     []Slave     `json:"slaves"`
}

// Framework is a registered framework.
type Framework struct {
	Name string `json:"name"`
	// PID is set for driver-based frameworks only ("scheduler(1)@ip:port");
	// HTTP frameworks have none, and Hostname is used instead.
	PID      *UPID  `json:"pid"`
	Hostname string `json:"hostname"`
	Tasks    []Task `json:"tasks"`
}

// HostPort is where the framework's scheduler is: the pid's host and port,
// else its hostname and no port.
func (f Framework) HostPort() (host, port string) {
	if f.PID != nil {
		return f.PID.Host, f.PID.Port
	}
	return f.Hostname, ""
}

// Slave is a registered agent.
type Slave struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	PID      *UPID  `json:"pid"`
}

// Task is an active task.
type Task struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	FrameworkID string     `json:"framework_id"`
	SlaveID     string     `json:"slave_id"`
	State       string     `json:"state"`
	Statuses    []Status   `json:"statuses"`
	Resources   Resources  `json:"resources"`
	Discovery   *Discovery `json:"discovery"`
}

// HasDiscoveryName reports whether the task has a DiscoveryInfo with a name,
// which then replaces the task name in DNS.
func (t Task) HasDiscoveryName() bool { return t.Discovery != nil && t.Discovery.Name != "" }

// Resources holds the ports of a task as Mesos renders a RANGES resource:
// "[31000-31001, 31005-31005]".
type Resources struct {
	Ports string `json:"ports"`
}

// Status is one entry of a task's status history.
type Status struct {
	State           string          `json:"state"`
	Timestamp       float64         `json:"timestamp"`
	Labels          []Label         `json:"labels"`
	ContainerStatus ContainerStatus `json:"container_status"`
}

// Label is a key/value label.
type Label struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ContainerStatus carries the container's network addresses.
type ContainerStatus struct {
	NetworkInfos []NetworkInfo `json:"network_infos"`
}

// NetworkInfo is one network of a container.
type NetworkInfo struct {
	IPAddresses []IPAddress `json:"ip_addresses"`
	// IPAddress is the Mesos 0.25 form.
	IPAddress string `json:"ip_address"`
}

// IPAddress is one address of a network.
type IPAddress struct {
	IPAddress string `json:"ip_address"`
}

// Discovery is a task's DiscoveryInfo.
type Discovery struct {
	Visibility string `json:"visibility"`
	Name       string `json:"name"`
	Ports      struct {
		Ports []DiscoveryPort `json:"ports"`
	} `json:"ports"`
}

// DiscoveryPort is one port of a DiscoveryInfo.
type DiscoveryPort struct {
	Number   int    `json:"number"`
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
}

// UPID is a libprocess process ID, id@host:port.
type UPID struct {
	ID   string
	Host string
	Port string
}

// ParseUPID parses "id@host:port".
func ParseUPID(s string) (*UPID, error) {
	parts := strings.Split(s, "@")
	if len(parts) != 2 {
		return nil, fmt.Errorf("pid %q: want exactly one '@'", s)
	}
	host, port, err := net.SplitHostPort(parts[1])
	if err != nil {
		return nil, fmt.Errorf("pid %q: %w", s, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return nil, fmt.Errorf("pid %q: port %q is not a port number", s, port)
	}
	return &UPID{ID: parts[0], Host: host, Port: port}, nil
}

// String is id@host:port.
func (u UPID) String() string { return u.ID + "@" + net.JoinHostPort(u.Host, u.Port) }

// UnmarshalJSON parses a pid string.
func (u *UPID) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("pid: %w", err)
	}
	p, err := ParseUPID(s)
	if err != nil {
		return err
	}
	*u = *p
	return nil
}

// ErrNoLeader is returned for a state document without a leader (a master
// that is not elected); Mesos-DNS aborts the refresh then.
var ErrNoLeader = errors.New("master state has no leader")

// ParseState parses a /master/state document as Mesos-DNS does and checks
// that it names a leader.
func ParseState(data []byte) (*State, error) {
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("parse master state: %w", err)
	}
	if st.Leader == "" {
		return nil, ErrNoLeader
	}
	if _, err := ParseUPID(st.Leader); err != nil {
		return nil, fmt.Errorf("parse master state: leader: %w", err)
	}
	return &st, nil
}

// LeaderHostPort is the leader's host:port from its pid.
func (s *State) LeaderHostPort() (string, error) {
	u, err := ParseUPID(s.Leader)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(u.Host, u.Port), nil
}

// PortList expands a ranges string "[31000-31001, 31005-31005]" into its
// ports, in order. Malformed ranges are reported and skipped (Mesos-DNS
// logs and skips them); "" and "[]" mean no ports.
func PortList(ranges string) ([]int, error) {
	s := strings.TrimSpace(ranges)
	if s == "" || s == "[]" {
		return nil, nil
	}
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return nil, fmt.Errorf("ports %q: want [begin-end, ...]", ranges)
	}
	var ports []int
	var errs []error
	for _, r := range strings.Split(s[1:len(s)-1], ",") {
		r = strings.TrimSpace(r)
		lo, hi, ok := strings.Cut(r, "-")
		b, err1 := strconv.Atoi(lo)
		e, err2 := strconv.Atoi(hi)
		if !ok || err1 != nil || err2 != nil || b < 0 || e > 65535 || b > e {
			errs = append(errs, fmt.Errorf("ports %q: bad range %q", ranges, r))
			continue
		}
		for p := b; p <= e; p++ {
			ports = append(ports, p)
		}
	}
	return ports, errors.Join(errs...)
}

// IP sources, in the names Mesos-DNS's IPSources option uses.
const (
	IPSourceHost    = "host"    // the agent's IP
	IPSourceNetInfo = "netinfo" // container_status.network_infos of the latest RUNNING status
	IPSourceMesos   = "mesos"   // label MesosContainerizer.NetworkSettings.IPAddress
	IPSourceDocker  = "docker"  // label Docker.NetworkSettings.IPAddress
)

// DCOSIPSources is what DC/OS configures (dcos/dcos gen/calc.py): the
// agent's IP first, so <task>.<framework>.mesos is the agent IP.
var DCOSIPSources = []string{IPSourceHost, IPSourceNetInfo}

// MesosDNSIPSources is Mesos-DNS's own default.
var MesosDNSIPSources = []string{IPSourceNetInfo, IPSourceMesos, IPSourceHost}

// ValidateIPSources rejects unknown source names.
func ValidateIPSources(srcs []string) error {
	for _, s := range srcs {
		switch s {
		case IPSourceHost, IPSourceNetInfo, IPSourceMesos, IPSourceDocker:
		default:
			return fmt.Errorf("unknown IP source %q: want host, netinfo, mesos or docker", s)
		}
	}
	return nil
}

// taskIPs returns the IPs of the first source that yields any.
func taskIPs(t Task, agentIPs []net.IP, srcs []string) []net.IP {
	for _, src := range srcs {
		var ips []net.IP
		switch src {
		case IPSourceHost:
			ips = append(ips, agentIPs...)
		case IPSourceNetInfo:
			for _, s := range latestRunning(t.Statuses) {
				for _, ni := range s.ContainerStatus.NetworkInfos {
					if len(ni.IPAddresses) > 0 {
						for _, a := range ni.IPAddresses {
							if ip := net.ParseIP(a.IPAddress); ip != nil {
								ips = append(ips, ip)
							}
						}
					} else if ip := net.ParseIP(ni.IPAddress); ip != nil {
						ips = append(ips, ip)
					}
				}
			}
		case IPSourceMesos, IPSourceDocker:
			key := "MesosContainerizer.NetworkSettings.IPAddress"
			if src == IPSourceDocker {
				key = "Docker.NetworkSettings.IPAddress"
			}
			for _, s := range latestRunning(t.Statuses) {
				for _, l := range s.Labels {
					if l.Key == key {
						if ip := net.ParseIP(l.Value); ip != nil {
							ips = append(ips, ip)
						}
					}
				}
			}
		}
		if len(ips) > 0 {
			return ips
		}
	}
	return nil
}

// latestRunning is the TASK_RUNNING status with the newest timestamp (the
// master gives no order guarantee), as a 0- or 1-element slice.
func latestRunning(st []Status) []Status {
	best := -1
	for i := range st {
		if st[i].State == "TASK_RUNNING" && (best < 0 || st[i].Timestamp > st[best].Timestamp) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	return st[best : best+1]
}
