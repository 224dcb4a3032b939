package operator

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// ServerView is what one Consul server says of itself (GET
// /v1/agent/self through its HTTP address), or why it did not answer.
type ServerView struct {
	Name      string `json:"name"`
	Address   string `json:"address"` // HTTP ip:port
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

// RecoverStatus asks every server the scheduler knows of for its raft
// state and says whether the cluster has lost quorum, which servers
// survive and whose raft log is the freshest. It changes nothing.
func (c *Commands) RecoverStatus(ctx context.Context) error {
	r, err := c.Client.Get(ctx, "/v1/pod/status")
	if err != nil {
		return err
	}
	var st PodStatus
	if err := decode(r, "/v1/pod/status", &st); err != nil {
		return err
	}
	var views []ServerView
	for _, p := range st.Pods {
		if p.Info.Role != "server" {
			continue
		}
		sv := ServerView{Name: p.Info.Name}
		if p.Info.IP == "" || p.Info.Ports.HTTP <= 0 {
			sv.Error = "not placed or no HTTP port"
			views = append(views, sv)
			continue
		}
		sv.Address = net.JoinHostPort(p.Info.IP, strconv.Itoa(p.Info.Ports.HTTP))
		views = append(views, c.serverView(ctx, sv))
	}
	v := Verdict(len(views), views)
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
	if v.Lost {
		fmt.Fprintln(c.Out, "Recovery is manual for now: Consul's peers.json procedure on the survivors (docs/operations.md, \"Outage recovery\").")
	}
	return nil
}

// serverView asks one server through its HTTP API (3 s at most).
func (c *Commands) serverView(ctx context.Context, sv ServerView) ServerView {
	h, ok := c.Consul.(HTTPConsul)
	if !ok {
		h = HTTPConsul{}
	}
	h.Timeout = 3 * time.Second
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
