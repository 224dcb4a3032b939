package offers

import (
	"fmt"
	"strings"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// Orphan is one of our reservations in an offer that no record explains:
// its labels and its volume.
type Orphan struct {
	ReservationID string
	// Task is the value of state.LabelTask (the server it was made for).
	Task string
	// Service is the value of state.LabelService; "" on reservations made
	// before the label existed (the role alone said they were ours).
	Service string
	// PersistenceID is its volume's ID, "" if it has no volume.
	PersistenceID string
}

// OrphanAction is what happens to an orphan reservation.
type OrphanAction string

// Orphan actions. Only a scale-down or a replacement destroys one (and
// uninstall, which does not ask): anything the scheduler cannot explain
// is adopted or left alone, never destroyed.
const (
	// AdoptOrphan: the reservation becomes its server's again, and the
	// server is relaunched on it with its volume and raft data.
	AdoptOrphan OrphanAction = "adopt"
	// DestroyOrphan: DESTROY its volume, UNRESERVE it.
	DestroyOrphan OrphanAction = "destroy"
	// KeepOrphan: leave it alone (declined with the offer).
	KeepOrphan OrphanAction = "keep"
)

// DecideOrphan decides what to do with an orphan reservation offered by
// agentID, given the record of the server it is labelled for (has is
// false when there is none). It says why in one sentence.
func DecideOrphan(o Orphan, agentID string, tg state.Target, rec state.Task, has bool) (OrphanAction, string) {
	if o.Service != "" && o.Service != tg.ServiceName {
		return KeepOrphan, fmt.Sprintf("reservation %s is labelled for service %q, not %q: left alone", o.ReservationID, o.Service, tg.ServiceName)
	}
	i, ok := state.ServerIndex(o.Task)
	if !ok {
		return KeepOrphan, fmt.Sprintf("reservation %s is labelled for task %q, which is no server of this service: left alone", o.ReservationID, o.Task)
	}
	vol := "no volume"
	if o.PersistenceID != "" {
		vol = "volume " + o.PersistenceID
	}
	switch {
	case has && rec.AgentID == agentID && rec.Reservation == nil && rec.Adopted != "" && !rec.Replacement && rec.OldPeer == "":
		return AdoptOrphan, fmt.Sprintf("reservation %s (%s) is %s's on this agent, whose record was adopted from its running task without it: adopted", o.ReservationID, vol, o.Task)
	case has && rec.AgentID == agentID && rec.Adopted != "":
		return KeepOrphan, fmt.Sprintf("reservation %s (%s) is labelled for %s, which already has reservation %s on this agent since an adoption: left alone for the operator",
			o.ReservationID, vol, o.Task, reservationOf(rec))
	case i >= tg.Servers:
		return DestroyOrphan, fmt.Sprintf("reservation %s (%s, task %q): servers are scaled down to %d, so it is left over by a decommission: destroying its volume and unreserving it",
			o.ReservationID, vol, o.Task, tg.Servers)
	case has && rec.AgentID != "":
		return DestroyOrphan, fmt.Sprintf("reservation %s (%s, task %q): %s has its own reservation %s on %s, so this one is left over by a replacement: destroying its volume and unreserving it",
			o.ReservationID, vol, o.Task, o.Task, reservationOf(rec), hostOr(rec))
	case has && (rec.Replacement || rec.OldPeer != ""):
		return DestroyOrphan, fmt.Sprintf("reservation %s (%s, task %q): %s is being replaced (%s), so its old reservation goes: destroying its volume and unreserving it",
			o.ReservationID, vol, o.Task, o.Task, rec.Message)
	}
	return AdoptOrphan, fmt.Sprintf("reservation %s (%s) of %s was found with no record (the scheduler's state was lost or replaced): adopted, %s relaunches on it",
		o.ReservationID, vol, o.Task, o.Task)
}

func reservationOf(t state.Task) string {
	if t.Reservation == nil {
		return "(not known yet)"
	}
	return t.Reservation.ID
}

// adoptionHold tags a Blocked reason that holds a server slot back from
// fresh resources only (while reservations found at start may still be
// adopted): once a reservation is adopted for it, it does not hold.
const adoptionHold = "adoption: "

// AdoptionHold makes a Blocked reason that holds a server back from fresh
// resources while its reservation may still be offered.
func AdoptionHold(why string) string { return adoptionHold + why }

// withoutHold is in without an adoption hold on name.
func withoutHold(in Input, name string) Input {
	if !strings.HasPrefix(in.Blocked[name], adoptionHold) {
		return in
	}
	b := make(map[string]string, len(in.Blocked))
	for k, v := range in.Blocked {
		if k != name {
			b[k] = v
		}
	}
	in.Blocked = b
	return in
}

// adopted is the record of the server an orphan reservation is adopted
// for: placed on the offer's agent with that reservation, confirmed (Mesos
// just offered it).
func adopted(in Input, o Orphan, rec state.Task, has bool, why string) state.Task {
	i, _ := state.ServerIndex(o.Task)
	if !has {
		rec = state.Task{Name: o.Task, Role: taskspec.RoleServer, Index: i}
	}
	pid := o.PersistenceID
	if pid == "" {
		pid = o.Task + "-" + shortID(o.ReservationID)
	}
	rec = placedOn(rec, in.Offer)
	rec.Reservation = &state.Reservation{ID: o.ReservationID, PersistenceID: pid, Confirmed: true}
	if rec.Ports == (taskspec.Ports{}) {
		rec.Ports = in.Target.Ports
	}
	rec.UpdatedAt = in.Now
	rec.Adopted = why
	return rec
}

// withRecord is in with one record added or changed (a copy: in.Tasks
// and in.ByAgent belong to the caller).
func withRecord(in Input, t state.Task) Input {
	ts := in.Tasks.Clone()
	old, had := ts[t.Name]
	ts[t.Name] = t
	in.Tasks = ts
	if in.ByAgent != nil && (!had || old.AgentID != t.AgentID) {
		by := make(map[string][]string, len(in.ByAgent)+1)
		for k, v := range in.ByAgent {
			by[k] = v
		}
		by[t.AgentID] = append(append([]string(nil), by[t.AgentID]...), t.Name)
		in.ByAgent = by
	}
	return in
}
