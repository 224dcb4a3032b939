package dev

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/secrets"
)

// Status is what dev's console shows of a cluster: read from the
// simulated master and the scheduler's API, as any other terminal can.
type Status struct {
	Agents int            // simulated agents
	Tasks  map[string]int // Consul tasks by state ("running", "staging", ...)
	Want   int            // Consul tasks the scheduler wants (one per agent)
	// Leader is the raft leader's address, "" while there is none.
	Leader string
	// ConsulHTTP is the HTTP address of an agent that answered (with the
	// port the scheduler gave it: dev --env CONSUL_PORT_HTTP=... included);
	// https://host:port of a server with TLS.
	ConsulHTTP string
	// ConsulDNSPort is the DNS port the scheduler gave the agents (dev
	// --env CONSUL_PORT_DNS=... included); 0 when no running agent says.
	ConsulDNSPort int
	Plan          string // the deploy plan's status
	Steps         int
	StepsDone     int
	Waiting       string // the first unfinished step and why, if any
	Err           string // what could not be read
}

// Ready: Consul has a leader and the deployment is complete.
func (s Status) Ready() bool { return s.Leader != "" && s.Plan == "COMPLETE" }

// Line is the one-line status: agents, tasks by state, leader, plan.
func (s Status) Line() string {
	var parts []string
	parts = append(parts, fmt.Sprintf("agents %d", s.Agents))
	var states []string
	for st := range s.Tasks {
		states = append(states, st)
	}
	sort.Slice(states, func(i, j int) bool {
		if (states[i] == "running") != (states[j] == "running") {
			return states[i] == "running"
		}
		return states[i] < states[j]
	})
	var ts []string
	for _, st := range states {
		ts = append(ts, fmt.Sprintf("%d %s", s.Tasks[st], st))
	}
	if len(ts) == 0 {
		ts = []string{"none yet"}
	}
	parts = append(parts, "tasks: "+strings.Join(ts, ", "))
	if s.Leader != "" {
		parts = append(parts, "leader elected ("+s.Leader+")")
	} else {
		parts = append(parts, "no leader yet")
	}
	if s.Plan != "" {
		parts = append(parts, fmt.Sprintf("deploy %s %d/%d", strings.ToLower(strings.ReplaceAll(s.Plan, "_", " ")), s.StepsDone, s.Steps))
	}
	line := strings.Join(parts, " | ")
	if s.Err != "" {
		line += " | " + s.Err
	}
	return line
}

// statusReader reads a Status over HTTP.
type statusReader struct {
	client       *http.Client
	masterURL    string
	schedulerURL string
}

func newStatusReader(masterURL, schedulerURL string) *statusReader {
	return &statusReader{client: &http.Client{Timeout: 3 * time.Second}, masterURL: masterURL, schedulerURL: schedulerURL}
}

// trustCA has the reader verify HTTPS against the service's CA (from the
// scheduler's /v1/tls/ca), once.
func (r *statusReader) trustCA(ctx context.Context) {
	if r.client.Transport != nil {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.schedulerURL+secrets.CAPath, nil)
	if err != nil {
		return
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	pool := x509.NewCertPool()
	if err != nil || resp.StatusCode != http.StatusOK || !pool.AppendCertsFromPEM(b) {
		return
	}
	r.client.Transport = &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
}

func (r *statusReader) getJSON(ctx context.Context, url string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return resp.StatusCode, fmt.Errorf("%s: %s: %w", url, resp.Status, err)
	}
	return resp.StatusCode, nil
}

type podStatus struct {
	Pods []struct {
		Info struct {
			Name  string `json:"name"`
			IP    string `json:"ip"`
			Ports struct {
				HTTP  int `json:"http"`
				HTTPS int `json:"https"`
				DNS   int `json:"dns"`
			} `json:"ports"`
		} `json:"info"`
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	} `json:"pods"`
}

type deployPlan struct {
	Status string `json:"status"`
	Phases []struct {
		Steps []struct {
			Name    string `json:"name"`
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"steps"`
	} `json:"phases"`
}

// Read reads the cluster's status; what cannot be read is said in Err.
func (r *statusReader) Read(ctx context.Context) Status {
	s := Status{Tasks: map[string]int{}}
	var agents []json.RawMessage
	if _, err := r.getJSON(ctx, r.masterURL+"/sim/v1/agents", &agents); err != nil {
		s.Err = "master: " + shortErr(err)
	}
	s.Agents = len(agents)
	var pods podStatus
	if _, err := r.getJSON(ctx, r.schedulerURL+"/v1/pod/status", &pods); err != nil {
		s.Err = "scheduler: " + shortErr(err)
		return s
	}
	var httpAddrs []string
	for _, p := range pods.Pods {
		st := strings.ToLower(strings.TrimPrefix(p.Status.State, "TASK_"))
		if st == "" {
			st = "waiting"
		}
		s.Tasks[st]++
		s.Want++
		if p.Status.State == "TASK_RUNNING" && p.Info.Ports.DNS > 0 {
			s.ConsulDNSPort = p.Info.Ports.DNS
		}
		switch {
		case p.Status.State != "TASK_RUNNING" || p.Info.IP == "":
		case p.Info.Ports.HTTP > 0:
			httpAddrs = append(httpAddrs, "http://"+net.JoinHostPort(p.Info.IP, strconv.Itoa(p.Info.Ports.HTTP)))
		case p.Info.Ports.HTTPS > 0 && strings.HasPrefix(p.Info.Name, "consul-server-"):
			// TLS: HTTPS only; servers' certificates verify against the
			// service's CA.
			httpAddrs = append(httpAddrs, "https://"+net.JoinHostPort(p.Info.IP, strconv.Itoa(p.Info.Ports.HTTPS)))
		}
	}
	var plan deployPlan
	if _, err := r.getJSON(ctx, r.schedulerURL+"/v1/plans/deploy", &plan); err == nil {
		s.Plan = plan.Status
		for _, ph := range plan.Phases {
			for _, st := range ph.Steps {
				s.Steps++
				if st.Status == "COMPLETE" {
					s.StepsDone++
				} else if s.Waiting == "" {
					s.Waiting = st.Name + ": " + st.Message
				}
			}
		}
	}
	for _, a := range httpAddrs {
		var leader string
		if strings.HasPrefix(a, "https://") {
			r.trustCA(ctx)
		}
		if code, err := r.getJSON(ctx, a+"/v1/status/leader", &leader); err == nil && code == http.StatusOK && leader != "" {
			s.Leader, s.ConsulHTTP = leader, strings.TrimPrefix(a, "http://")
			break
		}
	}
	if s.ConsulHTTP == "" && len(httpAddrs) > 0 {
		s.ConsulHTTP = strings.TrimPrefix(httpAddrs[0], "http://")
	}
	return s
}

func shortErr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg, "connect") {
		return "not answering (" + msg[i+2:] + ")"
	}
	return msg
}

// Summary is what dev prints once Consul is up: where everything is and
// three things to try.
func Summary(s Status, schedulerURL, masterURL, dnsAddr, workDir string) string {
	var b strings.Builder
	host, port := hostOf(dnsAddr), portOf(dnsAddr)
	api, srvName := s.ConsulHTTP, "http"
	if !strings.HasPrefix(api, "https://") {
		api = "http://" + api
	} else {
		srvName = "https" // the named port of the API with TLS
		api += "   (TLS: curl --cacert <(curl -s " + schedulerURL + secrets.CAPath + "))"
	}
	chost := hostOf(strings.TrimPrefix(s.ConsulHTTP, "https://"))
	fmt.Fprintf(&b, "Consul is up: leader %s, %d tasks running on %d agents.\n\n", s.Leader, s.Tasks["running"], s.Agents)
	fmt.Fprintf(&b, "  Consul UI         %s/   (through the scheduler, as DC/OS's \"Open Service\")\n", schedulerURL)
	fmt.Fprintf(&b, "  Consul HTTP API   %s\n", api)
	dnsPort := s.ConsulDNSPort
	if dnsPort <= 0 {
		dnsPort = 8600 // Consul's default
	}
	fmt.Fprintf(&b, "  Consul DNS        dig @%s -p %d consul.service.consul\n", chost, dnsPort)
	fmt.Fprintf(&b, "  Mesos-DNS         dig @%s -p %s consul-server-0.consul.mesos\n", host, port)
	fmt.Fprintf(&b, "  Mesos master      %s\n", masterURL)
	fmt.Fprintf(&b, "  Scheduler API     %s/v1/plans/deploy\n", schedulerURL)
	fmt.Fprintf(&b, "  Logs              %s/dev.log, %s/scheduler.log\n", workDir, workDir)
	b.WriteString("  ACL token         dcos-consul consul acl management-token   (ACLs are on by default: the UI and the KV API ask for it)\n")
	b.WriteString("\nThings to try (in another terminal):\n")
	b.WriteString("  dcos-consul consul plan show          the deployment, phase by phase\n")
	b.WriteString("  dcos-consul dev fault kill-server     kill a Consul server; this status line shows it heal\n")
	fmt.Fprintf(&b, "  dig @%s -p %s _%s._consul-server-0._tcp.consul.mesos SRV   the names DC/OS apps use\n", host, port, srvName)
	b.WriteString("\ndcos-consul dev status shows this again; dcos-consul dev stop (or Ctrl-C here) stops everything.\n")
	return b.String()
}
