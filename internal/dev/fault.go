package dev

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/devstate"
)

// Faults of `dcos-consul dev fault ...`, injected from any terminal through
// the simulator's fault endpoints (/sim/v1/...) and read from the
// scheduler's API, as an operator would meet them on a real cluster.

type faultClient struct {
	st     devstate.State
	client *http.Client
}

func newFaultClient(st devstate.State) *faultClient {
	return &faultClient{st: st, client: &http.Client{Timeout: 30 * time.Second}}
}

func (f *faultClient) do(ctx context.Context, method, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(body)))
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, url, err)
		}
	}
	return nil
}

type podRecord struct {
	Name    string `json:"name"`
	TaskID  string `json:"taskId"`
	AgentID string `json:"agentId"`
}

type podStatusFull struct {
	Pods []struct {
		Info   podRecord `json:"info"`
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	} `json:"pods"`
}

// pod finds a running pod: by name, or when name is "" the
// highest-numbered running server (wantServer) or pod.
func (f *faultClient) pod(ctx context.Context, name string, wantServer bool) (podRecord, error) {
	var ps podStatusFull
	if err := f.do(ctx, http.MethodGet, f.st.SchedulerURL+"/v1/pod/status", &ps); err != nil {
		return podRecord{}, err
	}
	var running []podRecord
	var names []string
	for _, p := range ps.Pods {
		names = append(names, p.Info.Name)
		if p.Status.State == "TASK_RUNNING" && p.Info.AgentID != "" {
			running = append(running, p.Info)
		}
	}
	sort.Slice(running, func(i, j int) bool { return running[i].Name > running[j].Name })
	for _, p := range running {
		if name == p.Name || (name == "" && (!wantServer || strings.HasPrefix(p.Name, "consul-server-"))) {
			return p, nil
		}
	}
	if name != "" {
		return podRecord{}, fmt.Errorf("no running pod %q (pods: %s)", name, strings.Join(names, ", "))
	}
	return podRecord{}, fmt.Errorf("no running Consul server to pick (pods: %s)", strings.Join(names, ", "))
}

// KillServer kills the executor (and with it the Consul agent) of a running
// server pod ("" picks one), as a crash would. The scheduler relaunches it
// in place, on its reservation and volume.
func KillServer(ctx context.Context, st devstate.State, pod string, out io.Writer) error {
	f := newFaultClient(st)
	p, err := f.pod(ctx, pod, true)
	if err != nil {
		return err
	}
	var fw []string
	if err := f.do(ctx, http.MethodGet, st.SchedulerURL+"/v1/state/frameworkId", &fw); err != nil || len(fw) == 0 || fw[0] == "" {
		return fmt.Errorf("the scheduler's framework ID: %v", err)
	}
	// The scheduler names each executor after its task.
	u := fmt.Sprintf("%s/sim/v1/agents/%s/executors/kill?framework_id=%s&executor_id=%s", st.MasterURL,
		url.PathEscape(p.AgentID), url.QueryEscape(fw[0]), url.QueryEscape(p.TaskID))
	if err := f.do(ctx, http.MethodPost, u, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "Killed the executor of %s (task %s) on agent %s.\nThe scheduler relaunches it in place, on the same reservation and volume: watch dev's status line, or `dcos-consul consul pod status %s`.\n",
		p.Name, p.TaskID, p.AgentID, p.Name)
	return nil
}

// RemoveAgent removes a simulated agent for good, as a lost machine: target
// is an agent ID or the name of the pod on it ("" picks a server's agent).
func RemoveAgent(ctx context.Context, st devstate.State, target string, out io.Writer) error {
	f := newFaultClient(st)
	agent, pod := target, ""
	if target == "" || strings.HasPrefix(target, "consul-") {
		p, err := f.pod(ctx, target, true)
		if err != nil {
			return err
		}
		agent, pod = p.AgentID, p.Name
	}
	if err := f.do(ctx, http.MethodDelete, st.MasterURL+"/sim/v1/agents/"+url.PathEscape(agent), nil); err != nil {
		return err
	}
	what := "agent " + agent
	if pod != "" {
		what += " (where " + pod + " ran)"
	}
	fmt.Fprintf(out, "Removed %s.\nA server on it is replaced on another agent once SERVER_REPLACE_AFTER has passed (dev sets 30s); a client is not replaced (its agent is gone). Watch dev's status line, or `dcos-consul consul plan show recovery`.\n", what)
	return nil
}

// RestartMaster restarts the simulated Mesos master: the scheduler
// re-subscribes and reconciles; Consul keeps running.
func RestartMaster(ctx context.Context, st devstate.State, out io.Writer) error {
	f := newFaultClient(st)
	if err := f.do(ctx, http.MethodPost, st.MasterURL+"/sim/v1/master/restart", nil); err != nil {
		return err
	}
	fmt.Fprintln(out, "The Mesos master is restarting. The scheduler re-subscribes and reconciles its tasks; Consul keeps running. Watch dev's status line.")
	return nil
}
