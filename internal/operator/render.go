package operator

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// RenderPlan writes a plan as a table of its phases and their steps, each
// with its status and what it is waiting for, then the plan's errors.
func RenderPlan(w io.Writer, name string, p Plan) {
	fmt.Fprintf(w, "Plan %s: %s", name, p.Status)
	if p.Strategy != "" {
		fmt.Fprintf(w, " (%s strategy)", p.Strategy)
	}
	fmt.Fprintln(w)
	tw := table(w)
	fmt.Fprintln(tw, "PHASE / STEP\tSTATUS\tMESSAGE")
	for _, ph := range p.Phases {
		label := ph.Name
		if ph.Strategy != "" {
			label += " (" + ph.Strategy + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t\n", label, ph.Status)
		if len(ph.Steps) == 0 {
			fmt.Fprintf(tw, "  (no steps)\t\t\n")
		}
		for _, st := range ph.Steps {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", st.Name, st.Status, oneLine(st.Message))
		}
	}
	tw.Flush()
	if len(p.Errors) > 0 {
		fmt.Fprintln(w, "Errors:")
		for _, e := range p.Errors {
			fmt.Fprintf(w, "  - %s\n", oneLine(e))
		}
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func healthWord(h *bool) string {
	switch {
	case h == nil:
		return "-"
	case *h:
		return "yes"
	default:
		return "no"
	}
}

// podDetail says, in a few words, what is going on with a task beyond its
// state: an operator command in progress, a replacement, failures, the
// last reason and message from Mesos.
func podDetail(p PodInfo) string {
	var parts []string
	switch p.Info.Goal {
	case "RESTART":
		parts = append(parts, "restart requested")
	case "REPLACE":
		parts = append(parts, "replacement requested")
	case "STOP":
		parts = append(parts, "being stopped")
	}
	if p.Status.Replacing {
		parts = append(parts, "moving to another agent")
	}
	if p.Status.Failures > 0 {
		parts = append(parts, fmt.Sprintf("%d failure(s) in a row", p.Status.Failures))
	}
	// A running task's reason is only what changed last (usually its
	// health check): noise next to the state.
	if p.Status.Reason != "" && p.Status.State != "TASK_RUNNING" {
		parts = append(parts, p.Status.Reason)
	}
	if p.Status.Message != "" {
		parts = append(parts, oneLine(p.Status.Message))
	}
	return dash(strings.Join(parts, "; "))
}

// RenderPodStatus writes one line per task.
func RenderPodStatus(w io.Writer, pods []PodInfo) {
	tw := table(w)
	fmt.Fprintln(tw, "POD\tROLE\tSTATE\tHEALTHY\tHOST\tIP\tDETAIL")
	for _, p := range pods {
		state := p.Status.State
		if state == "" {
			state = "NOT_LAUNCHED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Info.Name, dash(p.Info.Role), state, healthWord(p.Status.Healthy),
			dash(p.Info.Hostname), dash(p.Info.IP), podDetail(p))
	}
	tw.Flush()
}

func portsLine(p Ports) string {
	var parts []string
	for _, x := range []struct {
		name string
		port int
	}{{"server", p.Server}, {"serf-lan", p.SerfLAN}, {"serf-wan", p.SerfWAN}, {"http", p.HTTP}, {"https", p.HTTPS}, {"grpc", p.GRPC}, {"grpc-tls", p.GRPCTLS}, {"dns", p.DNS}} {
		if x.port > 0 {
			parts = append(parts, x.name+" "+strconv.Itoa(x.port))
		}
	}
	return dash(strings.Join(parts, ", "))
}

// RenderPodInfo writes every field the scheduler reports for a pod's tasks.
func RenderPodInfo(w io.Writer, infos []PodInfo) {
	for i, p := range infos {
		if i > 0 {
			fmt.Fprintln(w)
		}
		tw := table(w)
		row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
		row("Pod", p.Info.Name)
		row("Role", dash(p.Info.Role))
		row("Task ID", dash(p.Info.TaskID))
		row("Agent", dash(p.Info.AgentID))
		host := dash(p.Info.Hostname)
		if p.Info.IP != "" && p.Info.IP != p.Info.Hostname {
			host += " (" + p.Info.IP + ")"
		}
		row("Host", host)
		row("Ports", portsLine(p.Info.Ports))
		row("Config ID", dash(p.Info.ConfigID))
		if p.Info.ReservationID != "" {
			row("Reservation", p.Info.ReservationID)
			row("Volume", dash(p.Info.PersistenceID))
		}
		if p.Info.Goal != "" {
			row("Goal", p.Info.Goal)
		}
		launched := "-"
		if p.Info.LaunchedAt != nil {
			launched = p.Info.LaunchedAt.UTC().Format(time.RFC3339)
		}
		row("Launched", launched)
		state := dash(p.Status.State)
		if p.Status.Reason != "" {
			state += " (" + p.Status.Reason + ")"
		}
		row("State", state)
		if p.Status.Message != "" {
			row("Message", oneLine(p.Status.Message))
		}
		row("Healthy", healthWord(p.Status.Healthy))
		row("Failures", strconv.Itoa(p.Status.Failures))
		if p.Status.Replacing {
			row("Replacing", "yes: moving to another agent")
		}
		row("Updated", dash(p.Status.Updated))
		tw.Flush()
	}
}

// RenderEndpoint writes an endpoint's addresses, one task a line, with
// the Mesos-DNS name beside each and which ones are servers.
func RenderEndpoint(w io.Writer, ep Endpoint) {
	if len(ep.Address) == 0 {
		fmt.Fprintln(w, "No running task serves this endpoint yet.")
		return
	}
	servers := map[string]bool{}
	for _, s := range ep.Servers {
		servers[s] = true
	}
	tw := table(w)
	fmt.Fprintln(tw, "ADDRESS\tDNS\tROLE")
	for i, a := range ep.Address {
		dns := ""
		if i < len(ep.DNS) {
			dns = ep.DNS[i]
		}
		role := "client"
		if servers[a] {
			role = "server"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a, dash(dns), role)
	}
	tw.Flush()
	if ep.VIP != "" {
		fmt.Fprintf(w, "Load-balanced on DC/OS: %s\n", ep.VIP)
	}
}

// RenderMembers writes Consul's LAN members.
func RenderMembers(w io.Writer, ms []Member) {
	tw := table(w)
	fmt.Fprintln(tw, "NAME\tADDRESS\tSTATUS\tROLE\tDC\tBUILD")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Address, m.Status, m.Role, dash(m.Datacenter), dash(m.Build))
	}
	tw.Flush()
}

// RenderPeers writes the raft configuration.
func RenderPeers(w io.Writer, ps []Peer) {
	tw := table(w)
	fmt.Fprintln(tw, "NODE\tID\tADDRESS\tLEADER\tVOTER")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%t\n", p.Node, p.ID, p.Address, p.Leader, p.Voter)
	}
	tw.Flush()
}
