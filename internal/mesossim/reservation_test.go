package mesossim

import (
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

func reservation(principal, label string) []mesos.Resource_ReservationInfo {
	t := mesos.Resource_ReservationInfo_DYNAMIC
	return []mesos.Resource_ReservationInfo{{Type: &t, Role: proto.String(role), Principal: proto.String(principal),
		Labels: &mesos.Labels{Labels: []mesos.Label{{Key: "resource_id", Value: proto.String(label)}}}}}
}

func reserved(r mesos.Resource, label string) mesos.Resource {
	r.Reservations = reservation("consul-principal", label)
	return r
}

func volume(r mesos.Resource, id, path string) mesos.Resource {
	mode := mesos.RW
	r.Disk = &mesos.Resource_DiskInfo{
		Persistence: &mesos.Resource_DiskInfo_Persistence{ID: id, Principal: proto.String("consul-principal")},
		Volume:      &mesos.Volume{ContainerPath: path, Mode: &mode},
	}
	return r
}

func findRes(rs []mesos.Resource, name string, reservedOnly bool) *mesos.Resource {
	for i := range rs {
		r := &rs[i]
		if r.Name == name && (len(r.Reservations) > 0 || r.Reservation != nil) == reservedOnly {
			return r
		}
	}
	return nil
}

// offerFrom returns an outstanding offer from agentID; offers from other
// agents are kept for later calls.
func offerFrom(t *testing.T, s *sched, agentID string) mesos.Offer {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		for i, o := range s.pool {
			if _, gone := s.rescinds.Load(o.ID.Value); gone {
				continue
			}
			if o.AgentID.Value == agentID {
				s.pool = append(s.pool[:i:i], s.pool[i+1:]...)
				return o
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no offer from %s", agentID)
		}
		s.pool = append(s.pool, s.offers(time.Until(deadline))...)
	}
}

// 03-reserve-create-volume.txt and 03b: RESERVE + CREATE in one ACCEPT;
// the next offer carries the reservation (principal, labels) and the
// volume (persistence id, container path) in the refined format, and in
// the deprecated format to a framework without RESERVATION_REFINEMENT;
// then LAUNCH on the volume, DESTROY refused while in use, DESTROY and
// UNRESERVE after.
func TestReserveCreateVolumeLaunch(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	s := subscribe(t, c.MasterURL(), paInfo("vol"))
	agentID := c.Agents()[0].ID
	o := offerFrom(t, s, agentID)
	cpus := reserved(res("cpus", 0.1, role), "r1")
	mem := reserved(res("mem", 64, role), "r2")
	disk := reserved(res("disk", 100, role), "r3")
	vol := volume(disk, "consul-server-0-data", "consul-data")
	s.accept([]mesos.Offer{o}, 5,
		mesos.Offer_Operation{Type: mesos.Offer_Operation_RESERVE, Reserve: &mesos.Offer_Operation_Reserve{Resources: []mesos.Resource{cpus, mem, disk}}},
		mesos.Offer_Operation{Type: mesos.Offer_Operation_CREATE, Create: &mesos.Offer_Operation_Create{Volumes: []mesos.Resource{vol}}},
	)
	// The converted resources come back at once (no filter) together with
	// the filtered remainder.
	o = offerFrom(t, s, agentID)
	v := findRes(o.Resources, "disk", true)
	if v == nil || v.GetDisk().GetPersistence().GetID() != "consul-server-0-data" || v.GetDisk().GetVolume().ContainerPath != "consul-data" ||
		v.GetDisk().GetPersistence().GetPrincipal() != "consul-principal" || v.GetScalar().GetValue() != 100 {
		t.Fatalf("volume not offered: %v", o.Resources)
	}
	rc := findRes(o.Resources, "cpus", true)
	if rc == nil || rc.Role != nil || rc.Reservation != nil || len(rc.Reservations) != 1 || rc.Reservations[0].GetPrincipal() != "consul-principal" ||
		rc.Reservations[0].Labels.Labels[0].GetValue() != "r1" || rc.GetAllocationInfo().GetRole() != role {
		t.Errorf("reserved cpus in refined format: %+v", rc)
	}
	if u := findRes(o.Resources, "cpus", false); u == nil || u.GetScalar().GetValue() != 3.9 {
		t.Errorf("unreserved remainder: %+v", u)
	}

	// A second framework in the same role without RESERVATION_REFINEMENT
	// sees the deprecated format.
	s.decline([]mesos.Offer{o}, 3600)
	legacy := subscribe(t, c.MasterURL(), frameworkInfo("legacy", role))
	lo := offerFrom(t, legacy, agentID)
	lc := findRes(lo.Resources, "cpus", true)
	if lc == nil || lc.GetRole() != role || lc.Reservation == nil || lc.Reservation.GetPrincipal() != "consul-principal" || len(lc.Reservations) != 0 {
		t.Errorf("legacy reserved cpus: %+v", lc)
	}
	if uc := findRes(lo.Resources, "ports", false); uc == nil || uc.GetRole() != "*" {
		t.Errorf("legacy unreserved: %+v", uc)
	}
	legacy.mustCall(&scheduler.Call{Type: scheduler.Call_TEARDOWN})

	// A framework in another role never sees the reservation.
	other := subscribe(t, c.MasterURL(), frameworkInfo("other", "other-role"))
	oo := offerFrom(t, other, agentID)
	if findRes(oo.Resources, "cpus", true) != nil || findRes(oo.Resources, "disk", true) != nil {
		t.Errorf("reserved resources offered to another role: %v", oo.Resources)
	}
	other.mustCall(&scheduler.Call{Type: scheduler.Call_TEARDOWN})

	// LAUNCH on the reservation and the volume.
	s.mustCall(&scheduler.Call{Type: scheduler.Call_REVIVE})
	o = offerFrom(t, s, agentID)
	v = findRes(o.Resources, "disk", true)
	task := taskInfo("server-0", agentID, customExecutor("e", role), *findRes(o.Resources, "cpus", true), *findRes(o.Resources, "mem", true), *v)
	task.Executor.Resources = []mesos.Resource{res("cpus", 0.1, role), res("mem", 32, role)}
	s.accept([]mesos.Offer{o}, 0, launch(task))
	st := s.update("server-0", waitLong)
	if st.GetState() != mesos.TASK_STARTING {
		t.Fatalf("launch on volume: %s %s", st.GetState(), st.GetMessage())
	}
	s.ack(st)
	s.ack(s.update("server-0", waitLong))

	// In use: not offered, and DESTROY is dropped.
	o = offerFrom(t, s, agentID)
	if findRes(o.Resources, "disk", true) != nil {
		t.Fatalf("volume in use was offered: %v", o.Resources)
	}
	s.accept([]mesos.Offer{o}, 0, mesos.Offer_Operation{Type: mesos.Offer_Operation_DESTROY, Destroy: &mesos.Offer_Operation_Destroy{Volumes: []mesos.Resource{*v}}})
	st0 := getState(t, c.MasterURL())
	slave := st0["slaves"].([]interface{})[0].(map[string]interface{})
	if rr := slave["reserved_resources"].(map[string]interface{})[role].(map[string]interface{}); rr["disk"].(float64) != 100 {
		t.Errorf("reservation lost after refused DESTROY: %v", rr)
	}

	// Kill the task: the volume comes back, DESTROY then UNRESERVE.
	s.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: "server-0"}}})
	for {
		st := s.update("server-0", waitLong)
		s.ack(st)
		if st.GetState() == mesos.TASK_KILLED {
			break
		}
	}
	s.drop(scheduler.Event_OFFERS)
	var back *mesos.Resource
	eventually(t, waitLong, "volume re-offered", func() bool {
		ev := s.nextOr(scheduler.Event_OFFERS, time.Second)
		if ev == nil {
			return false
		}
		o = ev.Offers.Offers[0]
		back = findRes(o.Resources, "disk", true)
		if back == nil {
			s.decline(ev.Offers.Offers, 0)
		}
		return back != nil
	})
	if back.GetDisk().GetPersistence().GetID() != "consul-server-0-data" {
		t.Fatalf("re-offered volume: %+v", back)
	}
	plain := *back
	plain.Disk = nil
	s.accept([]mesos.Offer{o}, 0,
		mesos.Offer_Operation{Type: mesos.Offer_Operation_DESTROY, Destroy: &mesos.Offer_Operation_Destroy{Volumes: []mesos.Resource{*back}}},
		mesos.Offer_Operation{Type: mesos.Offer_Operation_UNRESERVE, Unreserve: &mesos.Offer_Operation_Unreserve{Resources: []mesos.Resource{plain,
			*findRes(o.Resources, "cpus", true), *findRes(o.Resources, "mem", true)}}},
	)
	eventually(t, waitLong, "reservations gone", func() bool {
		slave := getState(t, c.MasterURL())["slaves"].([]interface{})[0].(map[string]interface{})
		return len(slave["reserved_resources"].(map[string]interface{})) == 0
	})
}

// RESERVE rules: principal must match, role must be the framework's, and a
// framework in "*" can never reserve; UNRESERVE of a volume is refused.
func TestReserveValidation(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	s := subscribe(t, c.MasterURL(), paInfo("rv"))
	agentID := c.Agents()[0].ID
	o := offerFrom(t, s, agentID)
	bad := res("cpus", 1, role)
	bad.Reservations = reservation("someone-else", "x")
	s.accept([]mesos.Offer{o}, 0, mesos.Offer_Operation{Type: mesos.Offer_Operation_RESERVE, Reserve: &mesos.Offer_Operation_Reserve{Resources: []mesos.Resource{bad}}})
	o = offerFrom(t, s, agentID)
	if findRes(o.Resources, "cpus", true) != nil {
		t.Fatalf("RESERVE with the wrong principal was applied")
	}
	// CREATE on unreserved disk: dropped.
	s.accept([]mesos.Offer{o}, 0, mesos.Offer_Operation{Type: mesos.Offer_Operation_CREATE, Create: &mesos.Offer_Operation_Create{
		Volumes: []mesos.Resource{volume(res("disk", 10, role), "v", "data")}}})
	o = offerFrom(t, s, agentID)
	for _, r := range o.Resources {
		if r.Disk != nil {
			t.Fatalf("volume created from unreserved disk")
		}
	}
}
