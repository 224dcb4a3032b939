package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Commands runs the operator commands against one scheduler and writes
// what they show to Out: tables by default, the API's JSON with JSON set.
type Commands struct {
	Client *Client
	Out    io.Writer
	// Err receives warnings (default: Out).
	Err  io.Writer
	JSON bool
	// Consul reaches the Consul HTTP API for members and raft peers.
	Consul ConsulAPI
	// ConsulAddr, if set, is the Consul agent to ask (host:port or URL)
	// instead of the servers the scheduler lists.
	ConsulAddr string
}

// PlanList shows the plans' names.
func (c *Commands) PlanList(ctx context.Context) error {
	return c.printNames(ctx, "/v1/plans")
}

// printNames shows a list of names the API answers at path, one a line.
func (c *Commands) printNames(ctx context.Context, path string) error {
	r, err := c.Client.Get(ctx, path)
	if err != nil {
		return err
	}
	var names []string
	if err := decode(r, path, &names); err != nil {
		return err
	}
	if c.JSON {
		return c.raw(r)
	}
	for _, n := range names {
		fmt.Fprintln(c.Out, n)
	}
	return nil
}

// PlanShow shows one plan (deploy when name is empty). A plan with errors
// (HTTP 417) is shown like any other: its errors are part of it.
func (c *Commands) PlanShow(ctx context.Context, name string) error {
	if name == "" {
		name = "deploy"
	}
	p := "/v1/plans/" + url.PathEscape(name)
	r, err := c.Client.Get(ctx, p, http.StatusExpectationFailed)
	if err != nil {
		return err
	}
	var pl Plan
	if err := decode(r, p, &pl); err != nil {
		return err
	}
	if c.JSON {
		return c.raw(r)
	}
	RenderPlan(c.Out, name, pl)
	return nil
}

// PodList shows the pods' names.
func (c *Commands) PodList(ctx context.Context) error {
	r, names, err := c.pods(ctx)
	if err != nil {
		return err
	}
	if c.JSON {
		return c.raw(r)
	}
	for _, n := range names {
		fmt.Fprintln(c.Out, n)
	}
	return nil
}

func (c *Commands) pods(ctx context.Context) (Response, []string, error) {
	r, err := c.Client.Get(ctx, "/v1/pod")
	if err != nil {
		return r, nil, err
	}
	var names []string
	err = decode(r, "/v1/pod", &names)
	return r, names, err
}

// PodStatus shows every pod's task, or one pod's (name set).
func (c *Commands) PodStatus(ctx context.Context, name string) error {
	if name == "" {
		r, err := c.Client.Get(ctx, "/v1/pod/status")
		if err != nil {
			return err
		}
		var st PodStatus
		if err := decode(r, "/v1/pod/status", &st); err != nil {
			return err
		}
		if c.JSON {
			return c.raw(r)
		}
		RenderPodStatus(c.Out, st.Pods)
		return nil
	}
	r, infos, err := c.podInfo(ctx, name, "status")
	if err != nil {
		return err
	}
	if c.JSON {
		return c.raw(r)
	}
	RenderPodStatus(c.Out, infos)
	return nil
}

// PodInfo shows everything the scheduler knows of one pod.
func (c *Commands) PodInfo(ctx context.Context, name string) error {
	r, infos, err := c.podInfo(ctx, name, "info")
	if err != nil {
		return err
	}
	if c.JSON {
		return c.raw(r)
	}
	RenderPodInfo(c.Out, infos)
	return nil
}

func (c *Commands) podInfo(ctx context.Context, name, verb string) (Response, []PodInfo, error) {
	p := "/v1/pod/" + url.PathEscape(name) + "/" + verb
	r, err := c.Client.Get(ctx, p)
	if err != nil {
		return r, nil, c.unknownPod(ctx, name, err)
	}
	var infos []PodInfo
	err = decode(r, p, &infos)
	return r, infos, err
}

// PodRestart kills the pod's task and has the scheduler relaunch it in
// place (same agent, same reservation and volume).
func (c *Commands) PodRestart(ctx context.Context, name string) error {
	return c.command(ctx, name, "restart")
}

// PodReplace has the scheduler abandon the pod's agent and reservation and
// place it anew: a server gets a new reservation and an empty volume on
// whichever agent suits (its old one too, if no other is free) and
// rejoins; a client is relaunched.
func (c *Commands) PodReplace(ctx context.Context, name string) error {
	return c.command(ctx, name, "replace")
}

func (c *Commands) command(ctx context.Context, name, verb string) error {
	p := "/v1/pod/" + url.PathEscape(name) + "/" + verb
	r, err := c.Client.Post(ctx, p)
	if err != nil {
		return c.unknownPod(ctx, name, err)
	}
	var res CommandResult
	if err := decode(r, p, &res); err != nil {
		return err
	}
	if c.JSON {
		return c.raw(r)
	}
	what := map[string]string{"restart": "Restarting", "replace": "Replacing"}[verb]
	fmt.Fprintf(c.Out, "%s pod %s: tasks %s\n", what, res.Pod, strings.Join(res.Tasks, ", "))
	fmt.Fprintln(c.Out, "Follow it with `pod status "+res.Pod+"` and `plan show recovery`.")
	return nil
}

// unknownPod turns the API's 404 for a pod into an error that lists the
// pods there are.
func (c *Commands) unknownPod(ctx context.Context, name string, err error) error {
	if !IsNotFound(err) {
		return err
	}
	_, names, lerr := c.pods(ctx)
	if lerr != nil {
		return err
	}
	if len(names) == 0 {
		return fmt.Errorf("pod %q not found: the service has no pods yet (see `plan show deploy`)", name)
	}
	return fmt.Errorf("pod %q not found; the pods are: %s", name, strings.Join(names, ", "))
}

// Endpoints lists the endpoint names, or shows one endpoint's addresses.
func (c *Commands) Endpoints(ctx context.Context, name string) error {
	if name == "" {
		return c.printNames(ctx, "/v1/endpoints")
	}
	r, ep, err := c.endpoint(ctx, name)
	if err != nil {
		return err
	}
	if c.JSON {
		return c.raw(r)
	}
	RenderEndpoint(c.Out, ep)
	return nil
}

func (c *Commands) endpoint(ctx context.Context, name string) (Response, Endpoint, error) {
	p := "/v1/endpoints/" + url.PathEscape(name)
	r, err := c.Client.Get(ctx, p)
	if err != nil {
		return r, Endpoint{}, err
	}
	var ep Endpoint
	err = decode(r, p, &ep)
	return r, ep, err
}

// raw writes the API's own JSON, indented.
func (c *Commands) raw(r Response) error {
	var b bytes.Buffer
	if err := json.Indent(&b, bytes.TrimSpace(r.Body), "", "  "); err != nil {
		return err
	}
	b.WriteByte('\n')
	_, err := c.Out.Write(b.Bytes())
	return err
}

func (c *Commands) writeJSON(v any) error {
	enc := json.NewEncoder(c.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func decode(r Response, path string, v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("%s: the answer is JSON but not in the scheduler API's shape (%v): is the address the dcos-consul scheduler?", path, err)
	}
	return nil
}

// PlanVerbs maps the CLI's plan verbs (the DC/OS SDK CLI's) to the API's
// plan operations.
var PlanVerbs = map[string]string{
	"pause": "interrupt", "resume": "continue", "force-complete": "forceComplete",
	"restart": "restart", "start": "start", "stop": "stop",
}

// PlanOp runs a plan operation: args are the plan, then optionally the
// phase and the step (by name or ID). 208 (nothing to do) is not an error.
func (c *Commands) PlanOp(ctx context.Context, verb string, args []string) error {
	op, ok := PlanVerbs[verb]
	if !ok {
		return fmt.Errorf("unknown plan command %q", verb)
	}
	if len(args) < 1 || len(args) > 3 {
		return fmt.Errorf("plan %s <plan> [phase [step]]", verb)
	}
	q := url.Values{}
	if len(args) > 1 {
		q.Set("phase", args[1])
	}
	if len(args) > 2 {
		q.Set("step", args[2])
	}
	p := "/v1/plans/" + url.PathEscape(args[0]) + "/" + op
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	r, err := c.Client.Post(ctx, p)
	if err != nil {
		return err
	}
	if c.JSON {
		return c.raw(r)
	}
	var res struct {
		Message string `json:"message"`
	}
	if err := decode(r, p, &res); err != nil {
		return err
	}
	if r.Status == http.StatusAlreadyReported {
		fmt.Fprintf(c.Out, "Nothing to do: %s\n", res.Message)
		return nil
	}
	fmt.Fprintln(c.Out, res.Message)
	return nil
}

// KeyringRotate has the scheduler rotate Consul's gossip key: install a
// new key on every agent, switch to it, remove the old one. It shows the
// keys' fingerprints, never the keys.
func (c *Commands) KeyringRotate(ctx context.Context) error {
	const p = "/v1/keyring/rotate"
	r, err := c.Client.Post(ctx, p)
	if err != nil {
		return err
	}
	var res struct {
		Primary string   `json:"primary"`
		Removed []string `json:"removed"`
		Via     string   `json:"via"`
	}
	if err := decode(r, p, &res); err != nil {
		return err
	}
	if c.JSON {
		return c.raw(r)
	}
	fmt.Fprintf(c.Out, "Gossip key rotated: every agent uses %s; removed %s (through %s).\n",
		res.Primary, strings.Join(res.Removed, ", "), res.Via)
	return nil
}

// ACLRotateManagementToken has the scheduler replace the Consul ACL
// management token: a new one is created, the old one deleted. It never
// prints a token (`acl management-token` reads the new one).
func (c *Commands) ACLRotateManagementToken(ctx context.Context) error {
	const p = "/v1/acl/management-token/rotate"
	r, err := c.Client.Post(ctx, p)
	if err != nil {
		return err
	}
	var res struct {
		Created bool   `json:"created"`
		Deleted bool   `json:"deleted"`
		Via     string `json:"via"`
		Message string `json:"message"`
	}
	if err := decode(r, p, &res); err != nil {
		return err
	}
	if c.JSON {
		return c.raw(r)
	}
	fmt.Fprintf(c.Out, "%s (through %s).\n", res.Message, res.Via)
	return nil
}

// ACLManagementToken prints the Consul ACL management token, which the
// scheduler gives only to a caller with the operator token: a deliberate
// command, for `CONSUL_HTTP_TOKEN_FILE` or the Consul UI's login.
func (c *Commands) ACLManagementToken(ctx context.Context) error {
	const p = "/v1/acl/management-token"
	r, err := c.Client.Get(ctx, p)
	if err != nil {
		return err
	}
	var res struct {
		SecretID string `json:"secret_id"`
	}
	if err := decode(r, p, &res); err != nil {
		return err
	}
	if res.SecretID == "" {
		return fmt.Errorf("GET %s: the scheduler holds no management token", p)
	}
	fmt.Fprintln(c.Out, res.SecretID)
	return nil
}

// TLSCA prints the service's CA certificate (PEM) as its scheduler serves
// it (public): what clients verify the Consul servers against, and what
// another federated install trusts (security.tls.trusted_ca_certs).
func (c *Commands) TLSCA(ctx context.Context) error {
	b, err := c.Client.GetPEM(ctx, "/v1/tls/ca")
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN CERTIFICATE-----")) {
		return fmt.Errorf("GET /v1/tls/ca: the scheduler's answer is not a PEM certificate")
	}
	_, err = c.Out.Write(b)
	return err
}
