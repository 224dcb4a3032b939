package offers

import (
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

func TestDecideOrphan(t *testing.T) {
	tg := target() // service "consul", 3 servers
	placed := func(agent string, res *state.Reservation) state.Task {
		return state.Task{Name: "consul-server-1", Role: taskspec.RoleServer, Index: 1, AgentID: agent, Reservation: res}
	}
	slot := state.Task{Name: "consul-server-1", Role: taskspec.RoleServer, Index: 1}
	orphan := Orphan{ReservationID: "r-old", Task: "consul-server-1", Service: "consul", PersistenceID: "consul-server-1-p"}
	with := func(f func(*Orphan)) Orphan { o := orphan; f(&o); return o }
	adoptedHere := placed("A", &state.Reservation{ID: "r-new", Confirmed: true})
	adoptedHere.Adopted = "adopted"
	adoptedRunning := placed("A", nil)
	adoptedRunning.Adopted = "adopted from its running task"
	replacedHere := placed("A", nil)
	replacedHere.Replacement = true
	for _, c := range []struct {
		name string
		o    Orphan
		rec  state.Task
		has  bool
		want OrphanAction
		why  string
	}{
		{"lost state: no record at all", orphan, state.Task{}, false, AdoptOrphan, "found with no record"},
		{"lost state: the fresh slot reconcile made", orphan, slot, true, AdoptOrphan, "found with no record"},
		{"made before the service label existed", with(func(o *Orphan) { o.Service = "" }), slot, true, AdoptOrphan, "found with no record"},
		{"without a volume", with(func(o *Orphan) { o.PersistenceID = "" }), slot, true, AdoptOrphan, "no volume"},
		{"record adopted from a running task, on this agent", orphan, adoptedRunning, true, AdoptOrphan, "adopted from its running task"},
		{"operator replace: the record still names this agent", orphan, replacedHere, true, DestroyOrphan, "left over by a replacement"},
		{"another service sharing the role", with(func(o *Orphan) { o.Service = "consul-dc2" }), slot, true, KeepOrphan, "not \"consul\""},
		{"not a server name", with(func(o *Orphan) { o.Task = "consul-server-01" }), slot, true, KeepOrphan, "no server"},
		{"a second reservation beside an adopted one", orphan, adoptedHere, true, KeepOrphan, "left alone"},
		{"scale-down leftover", with(func(o *Orphan) { o.Task = "consul-server-3" }), state.Task{}, false, DestroyOrphan, "scaled down to 3"},
		{"replacement leftover: the server lives elsewhere", orphan, placed("B", &state.Reservation{ID: "r-new", Confirmed: true}), true, DestroyOrphan, "left over by a replacement"},
		{"replacement leftover: the server is being moved", orphan, state.Task{Name: "consul-server-1", Replacement: true, OldPeer: "10.0.0.1:8300", Message: "replaced; was on a1"}, true, DestroyOrphan, "being replaced"},
		{"adopted-from-running record on another agent", orphan, placed("B", nil), true, DestroyOrphan, "left over by a replacement"},
	} {
		got, why := DecideOrphan(c.o, "A", tg, c.rec, c.has)
		if got != c.want || !strings.Contains(why, c.why) {
			t.Errorf("%s: %s (%s), want %s (%q)", c.name, got, why, c.want, c.why)
		}
	}
}

// After the scheduler lost its state, reconcile makes fresh server slots;
// the first offer carrying a server's reservation adopts it and relaunches
// the server on its own volume in the same ACCEPT: nothing is destroyed.
func TestLostStateAdoptsAndRelaunchesOnTheOwnVolume(t *testing.T) {
	tg := target()
	o := reservedOffer(2, "consul-server-1", "r1", "consul-server-1-p", true)
	d := Evaluate(input(tg, state.Tasks{}, o))
	if got := opTypes(d); got != "LAUNCH" {
		t.Fatalf("ops %s: %s", got, d.Reason)
	}
	if len(d.Adopted) != 1 || len(d.Records) != 1 || len(d.Cleanup) != 0 {
		t.Fatalf("adopted %v records %d cleanup %v", d.Adopted, len(d.Records), d.Cleanup)
	}
	rec := d.Records[0]
	if rec.Name != "consul-server-1" || rec.AgentID != "M-S2" || rec.Reservation == nil || rec.Reservation.ID != "r1" ||
		rec.Reservation.PersistenceID != "consul-server-1-p" || !rec.Reservation.Confirmed || rec.State != "TASK_STAGING" ||
		!strings.Contains(rec.Adopted, "found with no record") {
		t.Fatalf("record %+v", rec)
	}
	ti := launchedTask(t, d)
	vol := false
	for _, r := range ti.Resources {
		if reservationLabels(r)[state.LabelReservation] != "r1" {
			t.Fatalf("launch uses %s outside the adopted reservation", r.Name)
		}
		vol = vol || persistenceID(r) == "consul-server-1-p"
	}
	if !vol {
		t.Fatal("launched without its volume")
	}
	if !strings.Contains(d.Reason, "adopted") {
		t.Fatalf("reason %q does not say what was adopted", d.Reason)
	}
}

// A record adopted from a running task has no reservation: once that task
// ended, the relaunch waits for the reservation, and the offer carrying it
// fills it in and relaunches on it.
func TestRecordWithoutReservationWaitsForItsOwn(t *testing.T) {
	tg := target()
	rec := running("consul-server-0", 1, nil)
	rec.State, rec.Adopted = "TASK_FAILED", "adopted from a running task"
	tasks := state.Tasks{"consul-server-0": rec}
	d := Evaluate(input(tg, tasks, offer(1)))
	if d.Accept() || !strings.Contains(d.Waiting["consul-server-0"], "carry its reservation") {
		t.Fatalf("without its reservation: %s %v", opTypes(d), d.Waiting)
	}
	d = Evaluate(input(tg, tasks, reservedOffer(1, "consul-server-0", "r0", "consul-server-0-p", true)))
	if opTypes(d) != "LAUNCH" || d.Records[0].Reservation == nil || d.Records[0].Reservation.ID != "r0" {
		t.Fatalf("with it: %s %+v", d.Reason, d.Records)
	}
}

// Uninstall leaves reservations of another service sharing the role.
func TestUninstallLeavesAnotherServicesReservations(t *testing.T) {
	tg := target(func(c *config.Config) { c.Uninstall = true })
	other := target(func(c *config.Config) { c.ServiceName = "consul-dc2"; c.Role = tg.Role })
	rv := func(r mesos.Resource) mesos.Resource {
		return reserve(r, tg.Role, tg.Principal, other.ServiceName, "consul-server-0", "theirs")
	}
	o := offer(1, withResources(rv(scalar("cpus", 0.5, tg.Role)), withVolume(rv(scalar("disk", 1024, tg.Role)), "p", tg.Principal)))
	if d := Evaluate(input(tg, state.Tasks{}, o)); d.Accept() {
		t.Fatalf("uninstall touched another service's reservation: %s", opTypes(d))
	}
}

// A server held back from fresh resources while reservations found at
// start may still be offered: the hold keeps it off a fresh agent, but not
// off its own adopted reservation.
func TestAdoptionHoldOnlyKeepsServersOffFreshResources(t *testing.T) {
	tg := target()
	in := input(tg, state.Tasks{}, offer(4))
	in.Blocked = map[string]string{}
	for i := 0; i < 3; i++ {
		in.Blocked[state.ServerName(i)] = AdoptionHold("waiting for offers from a1")
	}
	if d := Evaluate(in); d.Accept() || !strings.Contains(d.Reason, "waiting for offers from a1") {
		t.Fatalf("fresh agent: %s %s", opTypes(d), d.Reason)
	}
	in.Offer = reservedOffer(1, "consul-server-0", "r0", "p0", true)
	if d := Evaluate(in); opTypes(d) != "LAUNCH" || len(d.Adopted) != 1 {
		t.Fatalf("own reservation: %s %s", opTypes(d), d.Reason)
	}
}

// Uninstall right after an adoption: a server record adopted from its
// running task knows its reservation by its label only; it waits for it
// and is released with it.
func TestUninstallReleasesAReservationKnownByItsLabel(t *testing.T) {
	tg := target(func(c *config.Config) { c.Uninstall = true })
	rec := running("consul-server-0", 1, nil)
	rec.State, rec.Adopted = "TASK_KILLED", "adopted from a running task"
	in := input(tg, state.Tasks{rec.Name: rec}, offer(1))
	if _, waits := in.Tasks[rec.Name]; !waits {
		t.Fatal("reconcile forgot the adopted server before its reservation was released")
	}
	if d := Evaluate(in); len(d.Released) != 0 {
		t.Fatalf("released without its reservation offered: %v", d.Released)
	}
	in.Offer = reservedOffer(1, "consul-server-0", "r0", "p0", true)
	d := Evaluate(in)
	if opTypes(d) != "DESTROY,UNRESERVE" || len(d.Released) != 1 {
		t.Fatalf("%s released %v: %s", opTypes(d), d.Released, d.Reason)
	}
}
