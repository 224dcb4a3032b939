package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/recovery"
)

// ServerView is what one Consul server says of itself (GET
// /v1/agent/self through its HTTP address), or why it did not answer.
type ServerView struct {
	Name      string `json:"name"`
	Address   string `json:"address"`                // HTTP ip:port
	RaftAddr  string `json:"raft_address,omitempty"` // ip:server port
	Answered  bool   `json:"answered"`
	Error     string `json:"error,omitempty"`
	NodeID    string `json:"node_id,omitempty"`
	RaftState string `json:"raft_state,omitempty"` // Leader, Follower, Candidate
	LastIndex uint64 `json:"last_index,omitempty"`
	Leader    string `json:"leader,omitempty"` // the leader it knows, "" if none
}

// QuorumVerdict is recover status's reading of the servers.
type QuorumVerdict struct {
	Servers   int          `json:"servers"` // configured
	Answering int          `json:"answering"`
	Leader    string       `json:"leader,omitempty"`
	Lost      bool         `json:"quorum_lost"`
	Survivors []string     `json:"survivors,omitempty"`
	Freshest  string       `json:"freshest,omitempty"`
	Summary   string       `json:"summary"`
	Views     []ServerView `json:"views"`
	// Scheduler is the scheduler's own verdict (GET /v1/recover: it asks
	// every server every few seconds and declares quorum lost after a
	// threshold); nil when it has none yet.
	Scheduler *recovery.Quorum `json:"scheduler,omitempty"`
	// SchedulerErr says why the scheduler's verdict is missing.
	SchedulerErr string `json:"scheduler_error,omitempty"`
}

// Verdict reads the servers' answers: quorum is lost when no server knows
// a leader and fewer than a majority of the configured servers answer.
func Verdict(configured int, views []ServerView) QuorumVerdict {
	v := QuorumVerdict{Servers: configured, Views: views}
	var best *ServerView
	for i := range views {
		s := &views[i]
		if !s.Answered {
			continue
		}
		v.Answering++
		v.Survivors = append(v.Survivors, s.Name)
		if s.Leader != "" && v.Leader == "" {
			v.Leader = s.Leader
		}
		if best == nil || s.LastIndex > best.LastIndex {
			best = s
		}
	}
	sort.Strings(v.Survivors)
	majority := configured/2 + 1
	switch {
	case v.Leader != "":
		v.Summary = fmt.Sprintf("quorum: yes, leader %s; %d of %d servers answer", v.Leader, v.Answering, configured)
	case v.Answering >= majority:
		v.Summary = fmt.Sprintf("no leader yet, but %d of %d servers answer (a majority is %d): an election should end this; check again", v.Answering, configured, majority)
	default:
		v.Lost = true
		if best != nil {
			v.Freshest = best.Name
		}
		v.Summary = fmt.Sprintf("QUORUM LOST: no leader and only %d of %d servers answer (a majority is %d); survivors: %s",
			v.Answering, configured, majority, strings.Join(orNone(v.Survivors), ", "))
		if v.Freshest != "" {
			v.Summary += fmt.Sprintf("; the freshest raft log is %s's (index %d)", best.Name, best.LastIndex)
		}
	}
	return v
}

func orNone(s []string) []string {
	if len(s) == 0 {
		return []string{"none"}
	}
	return s
}

// recoverVerdict asks every server the scheduler knows of.
func (c *Commands) recoverVerdict(ctx context.Context) (QuorumVerdict, error) {
	r, err := c.Client.Get(ctx, "/v1/pod/status")
	if err != nil {
		return QuorumVerdict{}, err
	}
	var st PodStatus
	if err := decode(r, "/v1/pod/status", &st); err != nil {
		return QuorumVerdict{}, err
	}
	var views []ServerView
	for _, p := range st.Pods {
		if p.Info.Role != "server" {
			continue
		}
		sv := ServerView{Name: p.Info.Name}
		switch {
		case p.Info.IP == "" || (p.Info.Ports.HTTP <= 0 && p.Info.Ports.HTTPS <= 0):
			sv.Error = "not placed or no HTTP port"
			views = append(views, sv)
			continue
		case p.Info.Ports.HTTP > 0:
			sv.Address = net.JoinHostPort(p.Info.IP, strconv.Itoa(p.Info.Ports.HTTP))
		default: // TLS: HTTPS only
			sv.Address = "https://" + net.JoinHostPort(p.Info.IP, strconv.Itoa(p.Info.Ports.HTTPS))
			c.trustServiceCA(ctx)
		}
		if p.Info.Ports.Server > 0 {
			sv.RaftAddr = net.JoinHostPort(p.Info.IP, strconv.Itoa(p.Info.Ports.Server))
		}
		v := c.serverView(ctx, sv)
		if refused(v.Error) {
			// A server that refuses the token is alive: counting it as
			// lost would read a healthy cluster as one without quorum.
			return QuorumVerdict{}, fmt.Errorf("%s refused GET /v1/agent/self (ACLs are on, default deny): %s\n%s", v.Name, v.Error, tokenHint)
		}
		views = append(views, v)
	}
	v := Verdict(len(views), views)
	v.Scheduler, v.SchedulerErr = c.schedulerVerdict(ctx)
	return v, nil
}

// schedulerVerdict is the scheduler's own verdict on the quorum.
func (c *Commands) schedulerVerdict(ctx context.Context) (*recovery.Quorum, string) {
	r, err := c.Client.Get(ctx, "/v1/recover")
	if err != nil {
		return nil, err.Error()
	}
	var q recovery.Quorum
	if err := decode(r, "/v1/recover", &q); err != nil {
		return nil, err.Error()
	}
	return &q, ""
}

// tokenHint says how to give the commands that ask Consul directly a token.
const tokenHint = "Set CONSUL_HTTP_TOKEN_FILE (or CONSUL_HTTP_TOKEN) to a token with agent:read and operator:read, e.g. the management token that `dcos-consul consul acl management-token` prints"

// refused: Consul's answer to a request whose token lacks the right.
func refused(e string) bool {
	return strings.Contains(e, "403") || strings.Contains(e, "Permission denied") || strings.Contains(e, "ACL not found")
}

// RecoverStatus asks every server the scheduler knows of for its raft
// state and says whether the cluster has lost quorum, which servers
// survive and whose raft log is the freshest. It changes nothing.
func (c *Commands) RecoverStatus(ctx context.Context) error {
	v, err := c.recoverVerdict(ctx)
	if err != nil {
		return err
	}
	if c.JSON {
		return c.writeJSON(v)
	}
	tw := tabwriter.NewWriter(c.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tHTTP\tANSWERS\tRAFT STATE\tLAST INDEX\tLEADER KNOWN")
	for _, s := range v.Views {
		ans := "yes"
		if !s.Answered {
			ans = "no: " + s.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.Address, ans, s.RaftState, s.LastIndex, s.Leader)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.Out, v.Summary)
	switch {
	case v.Scheduler != nil:
		fmt.Fprintf(c.Out, "The scheduler's verdict (it asks every server every few seconds; quorum counts as lost after %s without a leader): %s\n",
			v.Scheduler.Threshold, v.Scheduler.Summary)
	case v.SchedulerErr != "":
		fmt.Fprintf(c.Out, "The scheduler has no verdict: %s\n", v.SchedulerErr)
	}
	if v.Lost && len(v.Survivors) > 0 {
		fmt.Fprintf(c.Out, "`recover --confirm` restarts %s in place with a raft peers.json naming only the survivors; the lost servers are then replaced by new ones.\n",
			strings.Join(v.Survivors, ", "))
	}
	return nil
}

// RecoverConfirm restarts the surviving servers of a cluster that lost
// quorum with a peers.json naming only them (through the scheduler:
// POST /v1/recover), after checking again that quorum is lost.
func (c *Commands) RecoverConfirm(ctx context.Context) error {
	v, err := c.recoverVerdict(ctx)
	if err != nil {
		return err
	}
	if !v.Lost {
		return fmt.Errorf("refusing to recover: %s", v.Summary)
	}
	type peer struct {
		ID       string `json:"id"`
		Address  string `json:"address"`
		NonVoter bool   `json:"non_voter"`
	}
	var peers []peer
	var survivors []string
	for _, s := range v.Views {
		if !s.Answered {
			continue
		}
		if s.NodeID == "" || s.RaftAddr == "" {
			return fmt.Errorf("refusing to recover: survivor %s did not tell its node ID or raft address", s.Name)
		}
		peers = append(peers, peer{ID: s.NodeID, Address: s.RaftAddr})
		survivors = append(survivors, s.Name)
	}
	body := map[string]any{"survivors": survivors, "peers": peers}
	if len(survivors) == 0 {
		// This machine reaches no server (the CLI outside the cluster's
		// network): the scheduler's own verdict names the survivors.
		if v.Scheduler == nil || !v.Scheduler.Lost || len(v.Scheduler.Survivors) == 0 {
			return fmt.Errorf("refusing to recover: no server survives (%s); restore a snapshot into a new install instead", v.Summary)
		}
		body = map[string]any{}
		for _, s := range v.Scheduler.Survivors {
			survivors = append(survivors, s.Name)
		}
	}
	r, err := c.Client.PostJSON(ctx, "/v1/recover", body)
	if err != nil {
		return err
	}
	if c.JSON {
		return c.raw(r)
	}
	var res struct {
		Replaced []string `json:"replaced"`
	}
	_ = json.Unmarshal(r.Body, &res)
	fmt.Fprintf(c.Out, "Recovering: %s restart with a raft peers.json naming only them", strings.Join(survivors, ", "))
	if len(res.Replaced) > 0 {
		fmt.Fprintf(c.Out, "; once they lead, %s are replaced by new servers on new volumes, one at a time", strings.Join(res.Replaced, ", "))
	}
	fmt.Fprintln(c.Out, ".\nFollow it with `recover status`, `plan show recovery` and `pod status`.")
	return nil
}

// serverView asks one server through its HTTP API (10 s at most: a
// candidate server of a cluster without quorum, on a loaded host, has been
// seen to take over 3 s).
func (c *Commands) serverView(ctx context.Context, sv ServerView) ServerView {
	h, ok := c.Consul.(HTTPConsul)
	if !ok {
		h = HTTPConsul{}
	}
	h.Timeout = 10 * time.Second
	cl, err := h.client(sv.Address)
	if err != nil {
		sv.Error = err.Error()
		return sv
	}
	self, err := cl.Agent().Self()
	if err != nil {
		sv.Error = err.Error()
		return sv
	}
	sv.Answered = true
	if cfg, ok := self["Config"]; ok {
		sv.NodeID, _ = cfg["NodeID"].(string)
	}
	if raft, ok := self["Stats"]["raft"].(map[string]any); ok {
		sv.RaftState, _ = raft["state"].(string)
		if s, ok := raft["last_log_index"].(string); ok {
			sv.LastIndex, _ = strconv.ParseUint(s, 10, 64)
		}
	}
	if leader, err := cl.Status().Leader(); err == nil {
		sv.Leader = leader
	}
	return sv
}
