// Package offers turns one Mesos offer into the operations that use it, or
// a decline with the reason and a filter. It is a pure function of the
// target, the task records, the reconcile result and the offer.
//
// Servers run on dynamically reserved resources (role, principal, labels
// naming the server and the reservation) with a persistent volume for
// their data: a first launch is RESERVE + CREATE + LAUNCH in one ACCEPT; a
// relaunch uses the same reservation and volume on the same agent. Clients
// run on unreserved resources, one per agent without a server.
package offers

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dcos-consul/dcos-consul/internal/mesosdns"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/placement"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// Filters: a short one when something could use this agent later, a long
// one when nothing can (the scheduler revives, which clears filters, as
// soon as something new needs offers).
const (
	ShortRefuse = 5 * time.Second
	LongRefuse  = 5 * time.Minute
)

// KillGracePeriod is given to every task: the executor's graceful leave.
const KillGracePeriod = 30 * time.Second

// Input is one offer and everything the decision depends on.
type Input struct {
	Target      state.Target
	FrameworkID string
	Tasks       state.Tasks
	// Launch are the records waiting for an offer (reconcile.Result.Launch).
	Launch map[string]string
	// Blocked are records that must not be launched now (e.g. waiting for
	// reconciliation), with why.
	Blocked map[string]string
	// ByAgent optionally indexes Tasks by agent ID (record names); nil
	// means Evaluate scans Tasks (fine for tests, slow for 10,000 agents).
	ByAgent map[string][]string
	// AgentAttrs are the attributes of agents seen so far (for placement
	// constraints across agents).
	AgentAttrs map[string]map[string]string
	Offer      mesos.Offer
	Now        time.Time
	// NewID returns a fresh unique string (a UUID in production).
	NewID func() string
	// EvictAfter: a server that found no free agent for this long takes
	// the agent of a client (the client is stopped first). 0: never.
	EvictAfter time.Duration
	// Evicting: a client is already being stopped for a server.
	Evicting bool
}

// Evicting reports whether a client is being stopped to make room for a
// server (Input.Evicting).
func Evicting(ts state.Tasks) bool {
	for _, t := range ts {
		if t.Role == taskspec.RoleClient && t.Goal == state.GoalStop && t.Active() {
			return true
		}
	}
	return false
}

// IndexByAgent builds Input.ByAgent.
func IndexByAgent(ts state.Tasks) map[string][]string {
	out := map[string][]string{}
	for _, t := range ts {
		if t.AgentID != "" {
			out[t.AgentID] = append(out[t.AgentID], t.Name)
		}
	}
	return out
}

// serverSlots are the records of servers 0..Servers-1 that exist, by index.
func serverSlots(in Input) []state.Task {
	out := make([]state.Task, 0, in.Target.Servers)
	for i := 0; i < in.Target.Servers; i++ {
		if t, ok := in.Tasks[state.ServerName(i)]; ok {
			out = append(out, t)
		}
	}
	return out
}

func tasksOn(in Input, agent string) []state.Task {
	if in.ByAgent == nil {
		return in.Tasks.OnAgent(agent)
	}
	var out []state.Task
	for _, n := range in.ByAgent[agent] {
		if t, ok := in.Tasks[n]; ok && t.AgentID == agent {
			out = append(out, t)
		}
	}
	return out
}

// Decision is what to do with the offer.
type Decision struct {
	// Records must be persisted before the ACCEPT is sent.
	Records []state.Task
	// Operations for one ACCEPT; empty means decline.
	Operations []mesos.Offer_Operation
	// Launched names the tasks launched by Operations.
	Launched []string
	// Cleanup describes unexplained reservations being destroyed.
	Cleanup []string
	// Reason explains the decision (always set).
	Reason string
	// Refuse is the filter for the unused remainder or the decline.
	Refuse time.Duration
	// Waiting maps tasks that could have used this offer but did not to why.
	Waiting map[string]string
	// Evict names client records to stop so that a server can have
	// their agent.
	Evict []string
	// Released (uninstall) names server records whose reservation and
	// volume on this agent are gone after this decision.
	Released []string
	// Adopted describes reservations with no record that were adopted
	// (their records are in Records); Kept those left alone.
	Adopted []string
	Kept    []string
}

// orphans decides about every reservation of ours in the offer that no
// record on this agent explains. Adopted ones become records (in
// d.Records, and in the returned Input for the rest of the decision).
func (d *Decision) orphans(in Input, groups map[string]*group, onAgent []state.Task) (Input, []state.Task) {
	explained := map[string]bool{}
	for _, t := range onAgent {
		if t.Reservation != nil {
			explained[t.Reservation.ID] = true
		}
	}
	agent := in.Offer.AgentID.Value
	changed := false
	for _, id := range sortedGroupIDs(groups) {
		if explained[id] {
			continue
		}
		g := groups[id]
		rec, has := in.Tasks[g.task]
		action, why := DecideOrphan(g.orphan(), agent, in.Target, rec, has)
		switch action {
		case AdoptOrphan:
			t := adopted(in, g.orphan(), rec, has, why)
			in = withoutHold(withRecord(in, t), t.Name)
			changed = true
			d.Records = append(d.Records, t)
			d.Adopted = append(d.Adopted, why)
		case DestroyOrphan:
			d.Operations = append(d.Operations, releaseOps(g.resources)...)
			d.Cleanup = append(d.Cleanup, why)
		default:
			d.Kept = append(d.Kept, why)
		}
	}
	if changed {
		onAgent = tasksOn(in, agent)
	}
	return in, onAgent
}

// Accept reports whether the decision uses the offer.
func (d Decision) Accept() bool { return len(d.Operations) > 0 }

// Evaluate decides what to do with one offer.
func Evaluate(in Input) Decision {
	o := in.Offer
	agent := o.AgentID.Value
	d := Decision{Waiting: map[string]string{}, Refuse: LongRefuse}
	role := in.Target.Role
	if o.AllocationInfo != nil && o.AllocationInfo.GetRole() != "" && o.AllocationInfo.GetRole() != role {
		if o.AllocationInfo.GetRole() == PublicRole && in.Target.ClientsOnPublic && in.Target.ClientsEnabled && !in.Target.Uninstall {
			return publicClientOffer(in, d)
		}
		d.Reason = fmt.Sprintf("offer allocated to role %q, not %q", o.AllocationInfo.GetRole(), role)
		return d
	}

	groups := ourGroups(o, role)
	onAgent := tasksOn(in, agent)
	if in.Target.Uninstall {
		return uninstallOffer(in, d, groups, onAgent)
	}

	// 1. Reservations no record explains: adopted, destroyed (scale-down
	// and replacement leftovers only) or left alone (DecideOrphan).
	in, onAgent = d.orphans(in, groups, onAgent)

	// 2. A task already placed on this agent that needs a (re)launch.
	var placedHere *state.Task
	busy := false // an active task of ours, or a placed server, occupies the agent
	for i := range onAgent {
		t := onAgent[i]
		if t.Active() || t.Role == taskspec.RoleServer {
			busy = true
		}
		if _, wants := in.Launch[t.Name]; wants {
			tt := t
			placedHere = &tt
		}
	}
	if placedHere != nil {
		t := *placedHere
		if why, blocked := in.Blocked[t.Name]; blocked {
			d.Waiting[t.Name] = why
			d.Reason = fmt.Sprintf("%s is placed on this agent but %s", t.Name, why)
			d.Refuse = ShortRefuse
			return finish(d)
		}
		if wait := backoffLeft(t, in.Now); wait > 0 {
			d.Waiting[t.Name] = fmt.Sprintf("relaunch delayed %s after %d failures", wait.Round(time.Second), t.Failures)
			d.Reason = t.Name + ": " + d.Waiting[t.Name]
			d.Refuse = ShortRefuse
			return finish(d)
		}
		var l launchPlan
		var err error
		if t.Role == taskspec.RoleServer {
			l, err = relaunchServer(in, t, groups)
		} else {
			l, err = launchClient(in, t)
		}
		if err != nil {
			d.Waiting[t.Name] = err.Error()
			d.Reason = t.Name + ": " + err.Error()
			d.Refuse = ShortRefuse
			return finish(d)
		}
		return finish(l.apply(d))
	}
	if busy {
		if victim, server, ok := evictFor(in, onAgent); ok {
			d.Evict = []string{victim}
			d.Reason = fmt.Sprintf("%s has found no free agent for %s: stopping client %s to give it this agent", server, in.EvictAfter, victim)
			d.Waiting[server] = "waiting for client " + victim + " to stop on " + o.Hostname
			d.Refuse = 0
			return finish(d)
		}
		d.Reason = "this agent already runs " + names(onAgent)
		for _, t := range onAgent {
			if t.Role == taskspec.RoleServer && t.Goal == state.GoalDecommission && !t.Active() {
				// Killed in a scale-down, its record waits for Consul to
				// show its raft peer gone: its volume is destroyed (and
				// the agent freed) seconds later, not after LongRefuse.
				d.Reason = t.Name + " is being removed (scale-down): its volume is destroyed once Consul shows its raft peer gone"
				d.Refuse = ShortRefuse
			}
		}
		if waiting := unplacedServer(in); waiting != "" && len(onAgent) == 1 && onAgent[0].Role == taskspec.RoleClient {
			// Come back soon: the server may take this agent once it has
			// waited EvictAfter for a free one.
			d.Refuse = ShortRefuse
			d.Waiting[waiting] = fmt.Sprintf("no free agent offered; after %s without one it takes the agent of a client", in.EvictAfter)
		}
		return finish(d)
	}

	// 3. A server not yet placed.
	var unplaced []state.Task
	allPlaced := true
	for _, t := range serverSlots(in) {
		if t.AgentID == "" {
			allPlaced = false
			if _, wants := in.Launch[t.Name]; wants {
				unplaced = append(unplaced, t)
			}
		}
	}
	public := isPublic(o)
	if len(unplaced) > 0 {
		t := unplaced[0]
		if why, blocked := in.Blocked[t.Name]; blocked {
			d.Waiting[t.Name] = why
			d.Reason = t.Name + ": " + why
			d.Refuse = ShortRefuse
			return finish(d)
		}
		var err error
		if public {
			err = fmt.Errorf("agent %s is a public agent: servers run on private agents", o.Hostname)
		} else {
			if err = checkPlacement(in.Target.Placement, o, serverSlots(in), in.AgentAttrs); err == nil {
				var l launchPlan
				l, err = placeServer(in, t)
				if err == nil {
					return finish(l.apply(d))
				}
			}
		}
		for _, u := range unplaced {
			d.Waiting[u.Name] = fmt.Sprintf("offer from %s does not fit: %v", o.Hostname, err)
		}
		d.Reason = fmt.Sprintf("cannot place %s: %v", t.Name, err)
		d.Refuse = ShortRefuse
		return finish(d)
	}

	// 4. A client on an agent without one.
	if in.Target.ClientsEnabled {
		switch {
		case public && !in.Target.ClientsOnPublic:
			d.Reason = "public agent and clients on public agents are disabled"
		case !allPlaced:
			d.Reason = "clients wait until every server is placed (servers need agents of their own)"
			d.Refuse = ShortRefuse
		default:
			name := state.ClientName(agent)
			if why, blocked := in.Blocked[name]; blocked {
				d.Reason = name + ": " + why
				d.Refuse = ShortRefuse
				return finish(d)
			}
			t := state.Task{Name: name, Role: taskspec.RoleClient}
			l, err := launchClient(in, t)
			if err != nil {
				d.Reason = fmt.Sprintf("cannot launch %s: %v", name, err)
				return finish(d)
			}
			return finish(l.apply(d))
		}
		return finish(d)
	}
	if len(in.Launch) == 0 {
		d.Reason = "nothing to launch"
	} else {
		d.Reason = "nothing waiting can use this agent"
	}
	return finish(d)
}

// releaseOps destroys the volumes among a reservation's resources and
// unreserves all of them.
func releaseOps(resources []mesos.Resource) []mesos.Offer_Operation {
	var destroy, unreserve []mesos.Resource
	for _, r := range resources {
		if persistenceID(r) != "" {
			destroy = append(destroy, r)
			unreserve = append(unreserve, withoutVolume(r))
		} else {
			unreserve = append(unreserve, r)
		}
	}
	var ops []mesos.Offer_Operation
	if len(destroy) > 0 {
		ops = append(ops, mesos.Offer_Operation{Type: mesos.Offer_Operation_DESTROY, Destroy: &mesos.Offer_Operation_Destroy{Volumes: destroy}})
	}
	return append(ops, mesos.Offer_Operation{Type: mesos.Offer_Operation_UNRESERVE, Unreserve: &mesos.Offer_Operation_Unreserve{Resources: unreserve}})
}

// uninstallOffer destroys and unreserves every reservation of ours in the
// offer.
func uninstallOffer(in Input, d Decision, groups map[string]*group, onAgent []state.Task) Decision {
	for _, id := range sortedGroupIDs(groups) {
		g := groups[id]
		if g.service != "" && g.service != in.Target.ServiceName {
			continue // another service sharing the role
		}
		d.Operations = append(d.Operations, releaseOps(g.resources)...)
		d.Cleanup = append(d.Cleanup, fmt.Sprintf("uninstall: destroying and unreserving reservation %s (task %q)", id, g.task))
	}
	// A record is released once its reservation is in an offer (destroyed
	// now). An offer without it proves nothing: it may have been made
	// before the task ended. Unconfirmed reservations are not waited for
	// (reconcile forgets them).
	for _, t := range onAgent {
		if t.Role == taskspec.RoleServer && t.Reservation != nil && !t.Active() {
			if _, ok := groups[t.Reservation.ID]; ok {
				d.Released = append(d.Released, t.Name)
			}
		}
		if t.Role == taskspec.RoleServer && t.Reservation == nil && !t.Active() && labelledFor(groups, t.Name) {
			d.Released = append(d.Released, t.Name) // adopted from a running task
		}
	}
	if len(d.Cleanup) == 0 {
		d.Reason = "uninstall: no reservation of this service in the offer"
	}
	d.Refuse = LongRefuse
	d = finish(d)
	d.Refuse = LongRefuse
	return d
}

func labelledFor(groups map[string]*group, task string) bool {
	for _, g := range groups {
		if g.task == task {
			return true
		}
	}
	return false
}

// unplacedServer names a server waiting for an agent of its own.
func unplacedServer(in Input) string {
	for _, t := range serverSlots(in) {
		if t.AgentID == "" {
			if _, wants := in.Launch[t.Name]; wants {
				return t.Name
			}
		}
	}
	return ""
}

// evictFor picks the client on this agent to stop for a server that has
// waited EvictAfter for an agent of its own.
func evictFor(in Input, onAgent []state.Task) (victim, server string, ok bool) {
	if in.EvictAfter <= 0 || len(onAgent) != 1 || onAgent[0].Role != taskspec.RoleClient || !onAgent[0].Active() ||
		onAgent[0].Goal != state.GoalRunning || isPublic(in.Offer) {
		return "", "", false
	}
	client := onAgent[0]
	if in.Evicting {
		return "", "", false // one eviction at a time
	}
	for _, t := range serverSlots(in) {
		if t.AgentID != "" {
			continue
		}
		if _, wants := in.Launch[t.Name]; !wants {
			continue
		}
		if _, blocked := in.Blocked[t.Name]; blocked || in.Now.Sub(t.UpdatedAt) < in.EvictAfter {
			continue
		}
		if checkPlacement(in.Target.Placement, in.Offer, serverSlots(in), in.AgentAttrs) != nil {
			continue
		}
		p := unreservedPool(in.Offer)
		if p.cpus+in.Target.Client.CPUs < in.Target.Server.CPUs || p.mem+in.Target.Client.Mem < in.Target.Server.Mem {
			continue
		}
		return client.Name, t.Name, true
	}
	return "", "", false
}

func finish(d Decision) Decision {
	for _, extra := range [][]string{d.Adopted, d.Cleanup, d.Kept} {
		if len(extra) == 0 {
			continue
		}
		if d.Reason == "" {
			d.Reason = strings.Join(extra, "; ")
		} else {
			d.Reason += "; " + strings.Join(extra, "; ")
		}
	}
	d.Records = lastPerName(d.Records)
	if len(d.Cleanup) > 0 {
		d.Refuse = 0 // the unreserved remainder may be wanted right away
	}
	return d
}

// lastPerName keeps the last record of each name (an adoption followed by
// the launch of the same record keeps the launch), in order.
func lastPerName(ts []state.Task) []state.Task {
	if len(ts) < 2 {
		return ts
	}
	last := map[string]int{}
	for i, t := range ts {
		last[t.Name] = i
	}
	out := ts[:0:0]
	for i, t := range ts {
		if last[t.Name] == i {
			out = append(out, t)
		}
	}
	return out
}

func names(ts []state.Task) string {
	var ns []string
	for _, t := range ts {
		ns = append(ns, t.Name)
	}
	sort.Strings(ns)
	return strings.Join(ns, ", ")
}

func backoffLeft(t state.Task, now time.Time) time.Duration {
	if t.Failures <= 1 {
		return 0
	}
	d := time.Second << uint(t.Failures-2)
	if d > time.Minute || d <= 0 {
		d = time.Minute
	}
	return d - now.Sub(t.UpdatedAt)
}

// launchPlan is the operations and the record for one task launch.
type launchPlan struct {
	ops    []mesos.Offer_Operation
	record state.Task
	what   string
}

func (l launchPlan) apply(d Decision) Decision {
	d.Operations = append(d.Operations, l.ops...)
	d.Records = append(d.Records, l.record)
	d.Launched = append(d.Launched, l.record.Name)
	d.Reason = l.what
	d.Refuse = LongRefuse
	return d
}

// placeServer: RESERVE + CREATE + LAUNCH of a server on fresh resources.
func placeServer(in Input, t state.Task) (launchPlan, error) {
	id := in.NewID()
	t.Reservation = &state.Reservation{ID: id, PersistenceID: t.Name + "-" + shortID(id)}
	t.AgentValues = placement.Values(in.Offer) // what later placements compare with
	l, err := reserveAndLaunch(in, t)
	if err != nil {
		return l, err
	}
	l.what = fmt.Sprintf("placing %s on %s: reserve, create volume %s, launch", t.Name, in.Offer.Hostname, t.Reservation.PersistenceID)
	return l, nil
}

func shortID(id string) string {
	id = strings.ReplaceAll(id, "-", "")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// reserveAndLaunch builds RESERVE + CREATE + LAUNCH from unreserved resources.
func reserveAndLaunch(in Input, t state.Task) (launchPlan, error) {
	o, tg := in.Offer, in.Target
	p := unreservedPool(o)
	want := tg.Server
	if p.cpus < want.CPUs {
		return launchPlan{}, fmt.Errorf("cpus %.2f offered, %.2f needed", p.cpus, want.CPUs)
	}
	if p.mem < want.Mem {
		return launchPlan{}, fmt.Errorf("mem %.0f MB offered, %.0f MB needed", p.mem, want.Mem)
	}
	ports := tg.PortList()
	if miss, ok := missingPort(p.ports, ports); ok {
		return launchPlan{}, fmt.Errorf("port %d is not offered (offered ports: %s)", miss, describePorts(p.ports))
	}
	var disk mesos.Resource
	if want.DiskType == "MOUNT" {
		found := false
		for _, m := range p.mounts {
			if m.GetScalar().GetValue() >= want.Disk {
				disk, found = m, true
				break
			}
		}
		if !found {
			return launchPlan{}, fmt.Errorf("no MOUNT disk of at least %.0f MB offered", want.Disk)
		}
	} else {
		if p.disk < want.Disk {
			return launchPlan{}, fmt.Errorf("disk %.0f MB offered, %.0f MB needed", p.disk, want.Disk)
		}
		disk = scalar("disk", want.Disk, tg.Role)
	}
	disk.AllocationInfo = alloc(tg.Role)
	res := t.Reservation
	rv := func(r mesos.Resource) mesos.Resource {
		return reserve(r, tg.Role, tg.Principal, tg.ServiceName, t.Name, res.ID)
	}
	cpus, mem, prt, dsk := rv(scalar("cpus", want.CPUs, tg.Role)), rv(scalar("mem", want.Mem, tg.Role)), rv(portsResource(ports, tg.Role)), rv(disk)
	vol := withVolume(dsk, res.PersistenceID, tg.Principal)
	t = placedOn(t, o)
	t.Ports = tg.Ports
	ops := []mesos.Offer_Operation{
		{Type: mesos.Offer_Operation_RESERVE, Reserve: &mesos.Offer_Operation_Reserve{Resources: []mesos.Resource{cpus, mem, prt, dsk}}},
		{Type: mesos.Offer_Operation_CREATE, Create: &mesos.Offer_Operation_Create{Volumes: []mesos.Resource{vol}}},
	}
	launch, rec, err := launchOp(in, t, []mesos.Resource{cpus, mem, prt, vol})
	if err != nil {
		return launchPlan{}, err
	}
	return launchPlan{ops: append(ops, launch), record: rec}, nil
}

// relaunchServer: LAUNCH on the server's own reservation and volume.
func relaunchServer(in Input, t state.Task, groups map[string]*group) (launchPlan, error) {
	if t.Reservation == nil {
		// Adopted from a running task of the previous framework: its
		// reservation is adopted when an offer carries it (DecideOrphan);
		// a fresh one here would leave its volume behind.
		return launchPlan{}, fmt.Errorf("waiting for an offer from %s to carry its reservation (labelled %s=%s): its record was adopted from a running task without it",
			hostOr(t), state.LabelTask, t.Name)
	}
	g, ok := groups[t.Reservation.ID]
	if !ok {
		if t.Reservation.Confirmed {
			return launchPlan{}, fmt.Errorf("waiting for its reservation %s on %s to be offered (its resources may still be in use)", t.Reservation.ID, hostOr(t))
		}
		// The reservation was recorded but Mesos never showed it (the
		// scheduler stopped before the ACCEPT, or the RESERVE failed):
		// make it now, on the same agent.
		l, err := reserveAndLaunch(in, t)
		if err != nil {
			return l, fmt.Errorf("its reservation %s was never confirmed and cannot be made again here: %w", t.Reservation.ID, err)
		}
		l.what = fmt.Sprintf("relaunching %s on %s: reservation %s was not found, reserving and creating volume %s again", t.Name, in.Offer.Hostname, t.Reservation.ID, t.Reservation.PersistenceID)
		return l, nil
	}
	cpus, okc := g.find("cpus")
	mem, okm := g.find("mem")
	prt, okp := g.find("ports")
	if !okc || !okm {
		return launchPlan{}, fmt.Errorf("its reservation %s is offered without cpus or mem (partial offer); waiting", t.Reservation.ID)
	}
	res := []mesos.Resource{cpus, mem}
	var ops []mesos.Offer_Operation
	vol, hasVol := g.volume()
	switch {
	case hasVol && persistenceID(vol) == t.Reservation.PersistenceID:
	case hasVol:
		return launchPlan{}, fmt.Errorf("its reservation carries volume %s, not %s", persistenceID(vol), t.Reservation.PersistenceID)
	default:
		dsk, okd := g.find("disk")
		if !okd {
			return launchPlan{}, fmt.Errorf("its reservation %s is offered without its disk or volume %s; waiting", t.Reservation.ID, t.Reservation.PersistenceID)
		}
		vol = withVolume(dsk, t.Reservation.PersistenceID, in.Target.Principal)
		ops = append(ops, mesos.Offer_Operation{Type: mesos.Offer_Operation_CREATE, Create: &mesos.Offer_Operation_Create{Volumes: []mesos.Resource{vol}}})
	}
	res = append(res, vol)
	t = placedOn(t, in.Offer)
	if !okp {
		return launchPlan{}, fmt.Errorf("its reservation %s is offered without its ports; waiting", t.Reservation.ID)
	}
	prt = g.ports()
	if extra, ok := morePorts(in, prt); ok {
		// A port the target has since enabled (HTTPS when TLS is turned
		// on): reserved now, on the same reservation.
		r := reserve(extra, in.Target.Role, in.Target.Principal, in.Target.ServiceName, t.Name, t.Reservation.ID)
		ops = append(ops, mesos.Offer_Operation{Type: mesos.Offer_Operation_RESERVE, Reserve: &mesos.Offer_Operation_Reserve{Resources: []mesos.Resource{r}}})
		res = append(res, r)
		prt.Ranges = &mesos.Value_Ranges{Range: append(append(mesos.Ranges{}, prt.Ranges.Range...), extra.Ranges.Range...).Sort().Squash()}
	}
	res = append(res, g.portsResources()...)
	t.Ports = portsFrom(in.Target.Ports, prt)
	t.Reservation.Confirmed = true
	launch, rec, err := launchOp(in, t, res)
	if err != nil {
		return launchPlan{}, err
	}
	return launchPlan{ops: append(ops, launch), record: rec,
		what: fmt.Sprintf("relaunching %s on %s with its reservation %s and volume %s", t.Name, in.Offer.Hostname, t.Reservation.ID, t.Reservation.PersistenceID)}, nil
}

// portsFrom keeps the target's port numbers that the reserved ranges hold.
func portsFrom(want taskspec.Ports, r mesos.Resource) taskspec.Ports {
	var have mesos.Ranges
	if r.Ranges != nil {
		have = r.Ranges.Range
	}
	keep := func(p int) int {
		if p <= 0 {
			return p
		}
		if _, miss := missingPort(have, []int{p}); miss {
			return -1
		}
		return p
	}
	return taskspec.Ports{Server: keep(want.Server), SerfLAN: keep(want.SerfLAN), SerfWAN: keep(want.SerfWAN),
		HTTP: keep(want.HTTP), HTTPS: keep(want.HTTPS), GRPC: keep(want.GRPC), DNS: keep(want.DNS), GRPCTLS: keep(want.GRPCTLS)}
}

// launchClient: LAUNCH of a client on unreserved resources.
func launchClient(in Input, t state.Task) (launchPlan, error) {
	o, tg := in.Offer, in.Target
	p := unreservedPool(o)
	if p.cpus < tg.Client.CPUs {
		return launchPlan{}, fmt.Errorf("cpus %.2f offered, %.2f needed", p.cpus, tg.Client.CPUs)
	}
	if p.mem < tg.Client.Mem {
		return launchPlan{}, fmt.Errorf("mem %.0f MB offered, %.0f MB needed", p.mem, tg.Client.Mem)
	}
	ports, list := clientPorts(tg)
	if miss, ok := missingPort(p.ports, list); ok {
		return launchPlan{}, fmt.Errorf("port %d is not offered (offered ports: %s)", miss, describePorts(p.ports))
	}
	t = placedOn(t, o)
	t.Role = taskspec.RoleClient
	t.Ports = ports
	res := []mesos.Resource{scalar("cpus", tg.Client.CPUs, tg.Role), scalar("mem", tg.Client.Mem, tg.Role), portsResource(list, tg.Role)}
	launch, rec, err := launchOp(in, t, res)
	if err != nil {
		return launchPlan{}, err
	}
	return launchPlan{ops: []mesos.Offer_Operation{launch}, record: rec,
		what: fmt.Sprintf("launching %s on %s", t.Name, o.Hostname)}, nil
}

// PublicRole is the role of the resources of DC/OS public agents. With
// CLIENTS_ON_PUBLIC_AGENTS the framework subscribes with it too, and runs
// clients on those (statically reserved) resources.
const PublicRole = "slave_public"

// publicClientOffer handles an offer allocated to PublicRole: a client if
// the agent has none, nothing else.
func publicClientOffer(in Input, d Decision) Decision {
	o := in.Offer
	onAgent := tasksOn(in, o.AgentID.Value)
	if len(onAgent) > 0 {
		d.Reason = "this public agent already runs " + names(onAgent)
		return d
	}
	for _, t := range serverSlots(in) {
		if t.AgentID == "" {
			d.Reason = "clients wait until every server is placed"
			d.Refuse = ShortRefuse
			return d
		}
	}
	name := state.ClientName(o.AgentID.Value)
	if why, blocked := in.Blocked[name]; blocked {
		d.Reason, d.Refuse = name+": "+why, ShortRefuse
		return d
	}
	okRole := func(r string) bool { return r == "" || r == PublicRole }
	tg := in.Target
	cpus, ok1 := takeScalar(o, "cpus", tg.Client.CPUs, okRole)
	mem, ok2 := takeScalar(o, "mem", tg.Client.Mem, okRole)
	ports, list := clientPorts(tg)
	prt, ok3 := takePorts(o, list, okRole)
	if !ok1 || !ok2 || !ok3 {
		d.Reason = fmt.Sprintf("cannot launch %s on public agent %s: it offers no single cpus >= %.2f, mem >= %.0f MB and ports %v for role %s",
			name, o.Hostname, tg.Client.CPUs, tg.Client.Mem, list, PublicRole)
		return d
	}
	t := placedOn(state.Task{Name: name, Role: taskspec.RoleClient}, o)
	t.Ports = ports
	launch, rec, err := launchOp(in, t, []mesos.Resource{cpus, mem, prt})
	if err != nil {
		d.Reason = err.Error()
		return d
	}
	return launchPlan{ops: []mesos.Offer_Operation{launch}, record: rec,
		what: fmt.Sprintf("launching %s on public agent %s (role %s)", name, o.Hostname, PublicRole)}.apply(d)
}

// takeScalar copies an offered resource of an acceptable reservation role
// (keeping its reservation and allocation) with the amount wanted.
func takeScalar(o mesos.Offer, name string, amount float64, okRole func(string) bool) (mesos.Resource, bool) {
	for _, r := range o.Resources {
		if r.Name != name || r.Scalar == nil || !okRole(reservationRole(r)) || isDynamic(r) || r.Revocable != nil || r.Disk != nil {
			continue
		}
		if r.Scalar.Value >= amount {
			r.Scalar = &mesos.Value_Scalar{Value: amount}
			return r, true
		}
	}
	return mesos.Resource{}, false
}

// takePorts copies an offered ports resource holding every wanted port.
func takePorts(o mesos.Offer, ports []int, okRole func(string) bool) (mesos.Resource, bool) {
	for _, r := range o.Resources {
		if r.Name != "ports" || r.Ranges == nil || !okRole(reservationRole(r)) || isDynamic(r) {
			continue
		}
		if _, miss := missingPort(r.Ranges.Range, ports); miss {
			continue
		}
		ns := make([]uint64, 0, len(ports))
		for _, p := range ports {
			ns = append(ns, uint64(p))
		}
		r.Ranges = &mesos.Value_Ranges{Range: mesos.NewRanges(ns...)}
		return r, true
	}
	return mesos.Resource{}, false
}

// clientPorts: a client listens on serf LAN, HTTP(S), gRPC (plain and TLS)
// and DNS. It
// does not use the server RPC port or serf WAN, so those are not taken
// from the offer (the server port keeps its number: the spec needs one).
func clientPorts(tg state.Target) (taskspec.Ports, []int) {
	p := tg.ClientPorts()
	p.SerfWAN = -1
	var list []int
	for _, v := range []int{p.SerfLAN, p.HTTP, p.HTTPS, p.GRPC, p.DNS, p.GRPCTLS} {
		if v > 0 {
			list = append(list, v)
		}
	}
	sort.Ints(list)
	return p, list
}

func placedOn(t state.Task, o mesos.Offer) state.Task {
	t.AgentID = o.AgentID.Value
	t.Hostname = o.Hostname
	t.IP = agentIP(o)
	return t
}

func hostOr(t state.Task) string {
	if t.Hostname != "" {
		return t.Hostname
	}
	return t.AgentID
}

// launchOp builds the LAUNCH operation and the record written before it.
func launchOp(in Input, t state.Task, res []mesos.Resource) (mesos.Offer_Operation, state.Task, error) {
	tg := in.Target
	taskID := state.NewTaskID(t.Name, in.NewID())
	spec := taskspec.Spec{
		Role:           t.Role,
		NodeName:       t.Name,
		Datacenter:     tg.Datacenter,
		Domain:         tg.Domain,
		JoinDNSNames:   serverDNSNames(tg),
		JoinAddrs:      joinAddrs(in.Tasks, t.Name, tg),
		Ports:          t.Ports,
		RaftMultiplier: tg.RaftMultiplier,
		UI:             tg.UI,
		LogLevel:       strings.ToLower(tg.LogLevel),
		ExtraConfig:    tg.ExtraConfig,
		DNSServer:      tg.DNSServer,
		ConfigID:       tg.ConfigIDOf(t.Role),
		DataDir:        state.ClientDataDir,
	}
	if t.Role == taskspec.RoleServer {
		spec.BootstrapExpect = tg.Servers
		spec.DataDir = state.VolumePath
		spec.WANJoin = tg.WANJoin
		spec.RecoverPeers = t.RecoverPeers
		spec.ACLReplication = tg.Secondary
	}
	spec.PrimaryDatacenter = tg.PrimaryDatacenter
	if tg.GossipEncryption || tg.ACL || tg.TLS {
		if tg.Secrets == nil || tg.Secrets.Credential == nil {
			return mesos.Offer_Operation{}, t, errors.New("task spec: gossip encryption, ACLs or TLS are on but the scheduler has no secrets access to hand out")
		}
		spec.GossipEncryption = tg.GossipEncryption
		spec.ACL, spec.ACLRollout = tg.ACLFor(t.Role)
		spec.GossipRollout = tg.GossipRollout()
		spec.TLS, spec.TLSRollout = tg.TLSFor(t.Role)
		if spec.TLS && t.Role == taskspec.RoleServer {
			spec.TLSTrustedCAs = tg.TLSTrustedCAs
		}
		spec.Secrets = &taskspec.SecretsRef{URL: tg.Secrets.URL, Token: tg.Secrets.Credential(taskID)}
		if tg.Secrets.CACert != nil {
			spec.Secrets.CACert = tg.Secrets.CACert()
		}
	}
	data, err := taskspec.Encode(spec)
	if err != nil {
		return mesos.Offer_Operation{}, t, fmt.Errorf("task spec: %w", err)
	}
	cmd, err := executorCommand(tg.ExecutorURI)
	if err != nil {
		return mesos.Offer_Operation{}, t, err
	}
	fw := mesos.FrameworkID{Value: in.FrameworkID}
	grace := KillGracePeriod.Nanoseconds()
	ti := mesos.TaskInfo{
		Name:      t.Name,
		TaskID:    mesos.TaskID{Value: taskID},
		AgentID:   in.Offer.AgentID,
		Resources: res,
		Executor: &mesos.ExecutorInfo{
			Type:        mesos.ExecutorInfo_CUSTOM,
			ExecutorID:  mesos.ExecutorID{Value: taskID},
			FrameworkID: &fw,
			Name:        strPtr("dcos-consul executor for " + t.Name),
			Source:      strPtr(t.Name),
			Command:     cmd,
			// SHUTDOWN (framework teardown, agent draining) gets the same
			// time as a KILL: a server's graceful leave takes about 5 s,
			// longer than Mesos's default 5 s shutdown grace.
			ShutdownGracePeriod: &mesos.DurationInfo{Nanoseconds: grace},
		},
		KillPolicy: &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: grace}},
		Data:       data,
		Discovery:  discoveryInfo(t),
		Labels: &mesos.Labels{Labels: []mesos.Label{
			{Key: "dcos_consul_role", Value: strPtr(string(t.Role))},
			{Key: "dcos_consul_config_id", Value: strPtr(tg.ConfigIDOf(t.Role))},
		}},
	}
	t.TaskID = taskID
	t.ExecutorTLS = spec.Secrets != nil && spec.Secrets.CACert != ""
	t.State = "TASK_STAGING"
	t.Reason, t.Message = "", ""
	t.Healthy = nil
	t.ConfigID = tg.ConfigIDOf(t.Role)
	t.Goal = state.GoalRunning
	t.LaunchedAt = in.Now
	t.UpdatedAt = in.Now
	return mesos.Offer_Operation{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: []mesos.TaskInfo{ti}}}, t, nil
}

// ExecutorFile is the name of the executor binary in the sandbox: the last
// path element of the URI, or for a .tar.gz/.tgz archive (which the fetcher
// extracts, and which holds the binary under that name) the name without
// the archive's extension: dcos-consul-linux-amd64.tar.gz holds dcos-consul.
func ExecutorFile(uri string) (string, error) {
	name, _, err := executorArtifact(uri)
	return name, err
}

// executorArtifact is ExecutorFile, and whether the URI is an archive.
func executorArtifact(uri string) (string, bool, error) {
	if uri == "" {
		return "", false, fmt.Errorf("no executor URI configured (EXECUTOR_URI)")
	}
	p := uri
	if u, err := url.Parse(uri); err == nil && u.Path != "" {
		p = u.Path
	}
	name := path.Base(p)
	if name == "." || name == "/" || name == "" {
		return "", false, fmt.Errorf("executor URI %q names no file", uri)
	}
	if strings.HasSuffix(name, ".tar.gz") || strings.HasSuffix(name, ".tgz") {
		return ArchivedBinary, true, nil
	}
	return name, false, nil
}

// ArchivedBinary is the name of the binary inside a published archive.
const ArchivedBinary = "dcos-consul"

// executorCommand fetches the executor: an archive is extracted (the Mesos
// fetcher unpacks .tar.gz), a plain file made executable; both are cached
// per agent, so an agent downloads each artifact once.
func executorCommand(uri string) (*mesos.CommandInfo, error) {
	name, archive, err := executorArtifact(uri)
	if err != nil {
		return nil, err
	}
	t, f := true, false
	u := mesos.CommandInfo_URI{Value: uri, Executable: &t, Extract: &f, Cache: &t}
	if archive {
		u.Executable, u.Extract = &f, &t
	}
	return &mesos.CommandInfo{
		URIs:  []mesos.CommandInfo_URI{u},
		Shell: &t,
		Value: strPtr("./" + shellQuote(name) + " executor"),
	}, nil
}

func shellQuote(s string) string {
	if strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// serverDNSNames are the Mesos-DNS names of every server task.
func serverDNSNames(tg state.Target) []string {
	out := make([]string, 0, tg.Servers)
	for i := 0; i < tg.Servers; i++ {
		out = append(out, mesosdns.TaskHost(state.ServerName(i), tg.ServiceName, tg.MesosDNSDomain))
	}
	return out
}

// joinAddrs: serf LAN addresses of the other servers placed on an agent
// and launched (running or starting). Not only running ones: a server
// reports TASK_RUNNING only after it joined, and Mesos-DNS lists only
// running tasks, so servers launched together must find each other here.
func joinAddrs(ts state.Tasks, self string, tg state.Target) []string {
	return JoinAddrs(ts, tg, self)
}

// JoinAddrs lists the serf LAN addresses of the launched servers except
// the one named self.
func JoinAddrs(ts state.Tasks, tg state.Target, self string) []string {
	var out []string
	for i := 0; i < tg.Servers; i++ {
		t, ok := ts[state.ServerName(i)]
		if !ok || t.Name == self || !t.Active() || t.IP == "" {
			continue
		}
		port := t.Ports.SerfLAN
		if port <= 0 {
			port = tg.Ports.SerfLAN
		}
		out = append(out, net.JoinHostPort(t.IP, strconv.Itoa(port)))
	}
	return out
}
