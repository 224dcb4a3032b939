// Package api is the scheduler's HTTP API in the DC/OS SDK's shape:
// /v1/plans, /v1/pod, /v1/endpoints, /v1/health, plus Prometheus /metrics,
// and Consul's web UI at / (ui.go).
// It reads snapshots and forwards operator commands; it decides nothing.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/plan"
	"github.com/dcos-consul/dcos-consul/scheduler/recovery"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// View is a consistent snapshot of the scheduler.
type View struct {
	FrameworkID string
	Subscribed  bool
	Target      state.Target
	Tasks       []state.Task
	Plans       map[string]plan.Plan
	// Err is set when the scheduler is in trouble (e.g. it cannot write
	// its state); health then answers 500.
	Err string
	// ConfigErrors are configuration changes refused at start: the
	// service runs with its stored configuration and health answers 417
	// until the options are set back.
	ConfigErrors []string
	// Quorum is the scheduler's latest verdict on Consul's raft quorum
	// (nil before the first one).
	Quorum *recovery.Quorum
	// SecretsLost says why the service's secrets are lost with the
	// scheduler's state and not recovered yet ("" when they are not).
	SecretsLost string
}

// ErrUnknownPod is returned by Restart and Replace for an unknown pod.
var ErrUnknownPod = errors.New("unknown pod")

// ErrConflict: the command is refused now (409), e.g. by the quorum gate.
var ErrConflict = errors.New("refused")

// ErrNotFound (404): no such plan, phase, step or configuration.
// ErrAlready (208): the command would change nothing.
var (
	ErrNotFound = plan.ErrNotFound
	ErrAlready  = errors.New("already reported")
)

// PlanCommand is one of the SDK's plan operations: POST
// /v1/plans/<Plan>/<Verb>?phase=<Phase>&step=<Step>.
type PlanCommand struct {
	Plan, Verb, Phase, Step string
}

// Source is the scheduler as the API sees it.
type Source interface {
	Snapshot() View
	// Restart kills the pod's task and relaunches it in place; Replace
	// relaunches it on another agent. Both return the task names affected.
	Restart(ctx context.Context, pod string) ([]string, error)
	Replace(ctx context.Context, pod string) ([]string, error)
	// PlanCommand runs a plan operation; the message is the SDK's
	// "Received cmd: ...".
	PlanCommand(ctx context.Context, c PlanCommand) (string, error)
	// Configurations lists the configuration IDs the service ran with;
	// Configuration is one of them.
	Configurations(ctx context.Context) ([]string, error)
	Configuration(ctx context.Context, id string) (json.RawMessage, error)
}

// Handler returns the API's HTTP handler. gatherer serves /metrics (nil:
// the default registry).
func Handler(src Source, gatherer prometheus.Gatherer) http.Handler {
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	a := &api{src: src}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/v1/plans", a.get(a.plans))
	mux.HandleFunc("/v1/plans/", a.plan)
	mux.HandleFunc("/v1/pod", a.get(a.pods))
	mux.HandleFunc("/v1/pod/", a.pod)
	mux.HandleFunc("/v1/endpoints", a.get(a.endpoints))
	mux.HandleFunc("/v1/endpoints/", a.get(a.endpoint))
	mux.HandleFunc("/v1/health", a.get(a.health))
	mux.HandleFunc("/v1/configurations", a.get(a.configurations))
	mux.HandleFunc("/v1/configurations/", a.get(a.configuration))
	mux.HandleFunc("/v1/state/frameworkId", a.get(a.frameworkID))
	snapshotRoutes(mux, src)
	recoverRoute(mux, src)
	// Everything else: Consul's web UI and the Consul API routes it calls
	// (ui.go), or a 404 that lists the endpoints.
	mux.Handle("/", newUIProxy(src))
	return mux
}

type api struct{ src Source }

func (a *api) get(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET")
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: only GET is allowed here", r.Method, r.URL.Path))
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"code": code, "error": http.StatusText(code), "message": msg})
}

func (a *api) plans(w http.ResponseWriter, r *http.Request) {
	v := a.src.Snapshot()
	names := make([]string, 0, len(v.Plans))
	for n := range v.Plans {
		names = append(names, n)
	}
	sort.Strings(names)
	writeJSON(w, http.StatusOK, names)
}

// planCode follows the SDK: 200 complete, 202 in progress, 417 error.
func planCode(status string) int {
	switch status {
	case plan.Complete:
		return http.StatusOK
	case plan.Error:
		return http.StatusExpectationFailed
	default:
		return http.StatusAccepted
	}
}

// planVerbs are the SDK's plan operations (POST /v1/plans/<plan>/<verb>).
var planVerbs = map[string]bool{"start": true, "stop": true, "continue": true, "interrupt": true, "forceComplete": true, "restart": true}

func (a *api) plan(w http.ResponseWriter, r *http.Request) {
	name := strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1/plans/"), "/")
	if parts := strings.Split(name, "/"); len(parts) == 2 && planVerbs[parts[1]] {
		a.planCommand(w, r, PlanCommand{Plan: parts[0], Verb: parts[1], Phase: r.URL.Query().Get("phase"), Step: r.URL.Query().Get("step")})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: only GET is allowed here", r.Method, r.URL.Path))
		return
	}
	if strings.Contains(name, "/") {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such plan endpoint: %s (POST /v1/plans/<plan>/start|stop|continue|interrupt|forceComplete|restart)", r.URL.Path))
		return
	}
	v := a.src.Snapshot()
	p, ok := v.Plans[name]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("plan %q not found; plans: %s", name, strings.Join(planNames(v), ", ")))
		return
	}
	writeJSON(w, planCode(p.Status), p)
}

func planNames(v View) []string {
	var out []string
	for n := range v.Plans {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (a *api) health(w http.ResponseWriter, r *http.Request) {
	v := a.src.Snapshot()
	d := v.Plans[plan.Deploy]
	body := map[string]any{"deploy": d.Status, "recovery": v.Plans[plan.Recovery].Status, "subscribed": v.Subscribed}
	if r := rollouts(v); len(r) > 0 {
		// Turning TLS, gossip encryption or ACLs on: what each phase
		// under way does or waits for (the update plan's rollout phases).
		body["rollouts"] = r
	}
	switch {
	case v.Err != "":
		body["error"] = v.Err
		writeJSON(w, http.StatusInternalServerError, body)
	case v.SecretsLost != "":
		// 417: the scheduler is fine (Marathon must not restart it) but
		// waits for a server's copy of the secrets, or the operator.
		body["secrets_lost"] = true
		body["error"] = v.SecretsLost
		writeJSON(w, http.StatusExpectationFailed, body)
	case len(v.ConfigErrors) > 0:
		// 417, as the SDK answers for plans with errors: the scheduler
		// itself is fine (Marathon must not restart it), but the
		// configuration it was started with is not what runs.
		body["error"] = "configuration change refused; the service keeps running with its current configuration: " +
			strings.Join(v.ConfigErrors, "; ")
		body["config_errors"] = v.ConfigErrors
		writeJSON(w, http.StatusExpectationFailed, body)
	case v.Quorum != nil && v.Quorum.Lost:
		// 417, as for plans with errors: the scheduler is fine (Marathon
		// must not restart it), Consul is not, and only the operator's
		// `recover --confirm` changes that.
		body["quorum_lost"] = true
		body["error"] = v.Quorum.Summary
		writeJSON(w, http.StatusExpectationFailed, body)
	case d.Status == plan.Error:
		body["error"] = strings.Join(d.Errors, "; ")
		writeJSON(w, http.StatusInternalServerError, body)
	case d.Status == plan.Complete:
		writeJSON(w, http.StatusOK, body)
	default:
		writeJSON(w, http.StatusAccepted, body)
	}
}

// rollouts are the update plan's rollout phases under way (tls-rollout,
// gossip-rollout, acl-rollout), each with its current step's message.
func rollouts(v View) map[string]string {
	out := map[string]string{}
	for _, ph := range v.Plans[plan.Update].Phases {
		if !strings.HasSuffix(ph.Name, "-rollout") {
			continue
		}
		for _, st := range ph.Steps {
			if st.Status == plan.InProgress {
				out[ph.Name] = st.Name + ": " + st.Message
			}
		}
	}
	return out
}

func (a *api) frameworkID(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, []string{a.src.Snapshot().FrameworkID})
}

func (a *api) pods(w http.ResponseWriter, r *http.Request) {
	v := a.src.Snapshot()
	names := []string{}
	for _, t := range v.Tasks {
		names = append(names, t.Name)
	}
	writeJSON(w, http.StatusOK, names)
}

// podInfo is one task of a pod, in the SDK's {info, status} pairing.
type podInfo struct {
	Info   taskInfo   `json:"info"`
	Status taskStatus `json:"status"`
}

type taskInfo struct {
	Name          string         `json:"name"`
	Role          taskspec.Role  `json:"role"`
	TaskID        string         `json:"taskId"`
	AgentID       string         `json:"agentId"`
	Hostname      string         `json:"hostname"`
	IP            string         `json:"ip"`
	Ports         taskspec.Ports `json:"ports"`
	ConfigID      string         `json:"configId"`
	ReservationID string         `json:"reservationId,omitempty"`
	PersistenceID string         `json:"persistenceId,omitempty"`
	Goal          string         `json:"goal,omitempty"`
	LaunchedAt    *time.Time     `json:"launchedAt,omitempty"`
}

type taskStatus struct {
	State     string `json:"state"`
	Reason    string `json:"reason,omitempty"`
	Message   string `json:"message,omitempty"`
	Healthy   *bool  `json:"healthy,omitempty"`
	Failures  int    `json:"failures"`
	Updated   string `json:"updated,omitempty"`
	Summary   string `json:"summary"`
	Replacing bool   `json:"replacing,omitempty"`
}

func info(t state.Task) podInfo {
	i := taskInfo{Name: t.Name, Role: t.Role, TaskID: t.TaskID, AgentID: t.AgentID, Hostname: t.Hostname, IP: t.IP,
		Ports: t.Ports, ConfigID: t.ConfigID, Goal: string(t.Goal)}
	if t.Reservation != nil {
		i.ReservationID, i.PersistenceID = t.Reservation.ID, t.Reservation.PersistenceID
	}
	if !t.LaunchedAt.IsZero() {
		l := t.LaunchedAt
		i.LaunchedAt = &l
	}
	st := taskStatus{State: t.State, Reason: t.Reason, Message: t.Message, Healthy: t.Healthy, Failures: t.Failures,
		Summary: t.Describe(), Replacing: t.Replacement}
	if !t.UpdatedAt.IsZero() {
		st.Updated = t.UpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	return podInfo{Info: i, Status: st}
}

func (a *api) pod(w http.ResponseWriter, r *http.Request) {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1/pod/"), "/")
	if rest == "status" {
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "only GET is allowed on /v1/pod/status")
			return
		}
		v := a.src.Snapshot()
		out := []podInfo{}
		for _, t := range v.Tasks {
			out = append(out, info(t))
		}
		writeJSON(w, http.StatusOK, map[string]any{"service": v.Target.ServiceName, "pods": out})
		return
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 2 || parts[0] == "" {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s (want /v1/pod/<name>/info, /restart or /replace)", r.URL.Path))
		return
	}
	name, verb := parts[0], parts[1]
	switch verb {
	case "info", "status":
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: only GET is allowed here", r.Method, r.URL.Path))
			return
		}
		for _, t := range a.src.Snapshot().Tasks {
			if t.Name == name {
				writeJSON(w, http.StatusOK, []podInfo{info(t)})
				return
			}
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("pod %q not found (GET /v1/pod lists the pods)", name))
	case "restart", "replace":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: use POST", r.Method, r.URL.Path))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		var tasks []string
		var err error
		if verb == "restart" {
			tasks, err = a.src.Restart(ctx, name)
		} else {
			tasks, err = a.src.Replace(ctx, name)
		}
		switch {
		case errors.Is(err, ErrUnknownPod):
			writeError(w, http.StatusNotFound, err.Error())
		case err != nil:
			writeError(w, http.StatusConflict, err.Error())
		default:
			writeJSON(w, http.StatusOK, map[string]any{"pod": name, "tasks": tasks})
		}
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown pod command %q (want info, restart or replace)", verb))
	}
}

// Endpoints are named after Consul's listeners.
var endpointPorts = map[string]func(taskspec.Ports) int{
	"http":     func(p taskspec.Ports) int { return p.HTTP },
	"https":    func(p taskspec.Ports) int { return p.HTTPS },
	"grpc":     func(p taskspec.Ports) int { return p.GRPC },
	"grpc-tls": func(p taskspec.Ports) int { return p.GRPCTLS },
	"dns":      func(p taskspec.Ports) int { return p.DNS },
	"serf-lan": func(p taskspec.Ports) int { return p.SerfLAN },
	"serf-wan": func(p taskspec.Ports) int { return p.SerfWAN },
	"server":   func(p taskspec.Ports) int { return p.Server },
}

func (a *api) endpoints(w http.ResponseWriter, r *http.Request) {
	v := a.src.Snapshot()
	names := []string{}
	for n, f := range endpointPorts {
		if f(v.Target.Ports) > 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	writeJSON(w, http.StatusOK, names)
}

func (a *api) endpoint(w http.ResponseWriter, r *http.Request) {
	name := strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1/endpoints/"), "/")
	f, ok := endpointPorts[name]
	v := a.src.Snapshot()
	if !ok || f(v.Target.Ports) <= 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("endpoint %q not found (GET /v1/endpoints lists them)", name))
		return
	}
	out := map[string]any{"address": []string{}, "dns": []string{}, "servers": []string{}}
	var addrs, dns, servers []string
	for _, t := range v.Tasks {
		if !t.Running() || t.IP == "" {
			continue
		}
		p := f(t.Ports)
		if p <= 0 || (t.Role == taskspec.RoleClient && (name == "server" || name == "serf-wan")) {
			continue
		}
		addr := net.JoinHostPort(t.IP, strconv.Itoa(p))
		addrs = append(addrs, addr)
		dns = append(dns, net.JoinHostPort(taskHost(t.Name, v.Target), strconv.Itoa(p)))
		if t.Role == taskspec.RoleServer {
			servers = append(servers, addr)
		}
	}
	if addrs != nil {
		out["address"], out["dns"] = addrs, dns
	}
	if servers != nil {
		out["servers"] = servers
	}
	if vip := endpointVIP(name, v.Target); vip != "" {
		out["vip"] = vip
	}
	writeJSON(w, http.StatusOK, out)
}

// planCommand runs a plan operation with the SDK's status codes: 200
// done, 208 nothing to do, 400 a step without its phase, 404 no such
// plan/phase/step, 409 refused (with why).
func (a *api) planCommand(w http.ResponseWriter, r *http.Request, c PlanCommand) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: use POST", r.Method, r.URL.Path))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	msg, err := a.src.PlanCommand(ctx, c)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]string{"message": msg})
	case errors.Is(err, ErrAlready):
		writeJSON(w, http.StatusAlreadyReported, map[string]string{"message": err.Error()})
	case errors.Is(err, plan.ErrMissingPhase):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	default:
		writeError(w, http.StatusConflict, err.Error())
	}
}

// configurations: GET /v1/configurations (IDs), /targetId, /target, /<id>.
func (a *api) configurations(w http.ResponseWriter, r *http.Request) {
	ids, err := a.src.Configurations(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ids)
}

func (a *api) configuration(w http.ResponseWriter, r *http.Request) {
	id := strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1/configurations/"), "/")
	target := a.src.Snapshot().Target.ConfigID
	switch id {
	case "targetId":
		writeJSON(w, http.StatusOK, []string{target})
		return
	case "target":
		id = target
	}
	b, err := a.src.Configuration(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		w.Header().Set("Content-Type", "application/json")
		var out bytes.Buffer
		if json.Indent(&out, b, "", "  ") != nil {
			out.Reset()
			out.Write(b)
		}
		out.WriteByte('\n')
		_, _ = w.Write(out.Bytes())
	}
}
