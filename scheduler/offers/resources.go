package offers

import (
	"fmt"
	"sort"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// reservationRole is the role a resource is reserved for, "" if unreserved.
// It reads both the post-refinement stack and the deprecated role field.
func reservationRole(r mesos.Resource) string {
	if n := len(r.Reservations); n > 0 {
		return r.Reservations[n-1].GetRole()
	}
	if r.Role != nil && *r.Role != "*" && *r.Role != "" {
		return *r.Role
	}
	return ""
}

// reservationLabels returns the labels of the top (or deprecated) reservation.
func reservationLabels(r mesos.Resource) map[string]string {
	var ls *mesos.Labels
	if n := len(r.Reservations); n > 0 {
		ls = r.Reservations[n-1].Labels
	} else if r.Reservation != nil {
		ls = r.Reservation.Labels
	}
	out := map[string]string{}
	if ls != nil {
		for _, l := range ls.Labels {
			out[l.Key] = l.GetValue()
		}
	}
	return out
}

func isDynamic(r mesos.Resource) bool {
	if n := len(r.Reservations); n > 0 {
		return r.Reservations[n-1].GetType() == mesos.Resource_ReservationInfo_DYNAMIC
	}
	return r.Reservation != nil
}

func persistenceID(r mesos.Resource) string {
	if r.Disk != nil && r.Disk.Persistence != nil {
		return r.Disk.Persistence.ID
	}
	return ""
}

func isMountDisk(r mesos.Resource) bool {
	return r.Disk != nil && r.Disk.Source != nil && r.Disk.Source.GetType() == mesos.Resource_DiskInfo_Source_MOUNT
}

// usableDisk: a plain disk resource (root disk, no volume, no provider).
func isRootDisk(r mesos.Resource) bool {
	return r.Name == "disk" && r.ProviderID == nil && (r.Disk == nil || (r.Disk.Persistence == nil && r.Disk.Source == nil && r.Disk.Volume == nil))
}

// pool is the unreserved part of an offer, for accounting.
type pool struct {
	cpus, mem, disk float64
	mounts          []mesos.Resource // unreserved MOUNT disks
	ports           mesos.Ranges
}

func unreservedPool(o mesos.Offer) pool {
	var p pool
	for _, r := range o.Resources {
		if reservationRole(r) != "" || r.Revocable != nil || r.Shared != nil {
			continue
		}
		switch r.Name {
		case "cpus":
			p.cpus += r.GetScalar().GetValue()
		case "mem":
			p.mem += r.GetScalar().GetValue()
		case "disk":
			if isMountDisk(r) && r.Disk.Persistence == nil {
				p.mounts = append(p.mounts, r)
			} else if isRootDisk(r) {
				p.disk += r.GetScalar().GetValue()
			}
		case "ports":
			if r.Ranges != nil {
				p.ports = append(p.ports, r.Ranges.Range...)
			}
		}
	}
	p.ports = p.ports.Sort().Squash()
	return p
}

// group is the reserved resources of one of our reservations in an offer.
type group struct {
	id, task, service string
	resources         []mesos.Resource
}

// orphan describes the group for DecideOrphan.
func (g group) orphan() Orphan {
	o := Orphan{ReservationID: g.id, Task: g.task, Service: g.service}
	if v, ok := g.volume(); ok {
		o.PersistenceID = persistenceID(v)
	}
	return o
}

func (g group) volume() (mesos.Resource, bool) {
	for _, r := range g.resources {
		if r.Name == "disk" && persistenceID(r) != "" {
			return r, true
		}
	}
	return mesos.Resource{}, false
}

func (g group) find(name string) (mesos.Resource, bool) {
	for _, r := range g.resources {
		if r.Name == name && (name != "disk" || persistenceID(r) == "") {
			return r, true
		}
	}
	return mesos.Resource{}, false
}

// ports is the group's reserved ports as one resource: the ranges of
// every ports resource of the reservation (a port reserved after the
// others may come as a resource of its own).
func (g group) ports() mesos.Resource {
	var out mesos.Resource
	var rs mesos.Ranges
	for _, r := range g.resources {
		if r.Name != "ports" || r.Ranges == nil {
			continue
		}
		if out.Name == "" {
			out = r
		}
		rs = append(rs, r.Ranges.Range...)
	}
	out.Ranges = &mesos.Value_Ranges{Range: rs.Sort().Squash()}
	return out
}

// portsResources is every ports resource of the group, as offered.
func (g group) portsResources() []mesos.Resource {
	var out []mesos.Resource
	for _, r := range g.resources {
		if r.Name == "ports" {
			out = append(out, r)
		}
	}
	return out
}

// morePorts is the ports the target wants that reserved (a server's
// reserved ports) lacks and the offer has unreserved, as one unreserved
// resource to reserve; false when there is none.
func morePorts(in Input, reserved mesos.Resource) (mesos.Resource, bool) {
	var have mesos.Ranges
	if reserved.Ranges != nil {
		have = reserved.Ranges.Range
	}
	free := unreservedPool(in.Offer).ports
	var add []int
	for _, p := range in.Target.PortList() {
		if _, miss := missingPort(have, []int{p}); !miss {
			continue
		}
		if _, miss := missingPort(free, []int{p}); !miss {
			add = append(add, p)
		}
	}
	if len(add) == 0 {
		return mesos.Resource{}, false
	}
	return portsResource(add, in.Target.Role), true
}

// ourGroups collects the dynamically reserved resources of role that carry
// our reservation label, by reservation ID.
func ourGroups(o mesos.Offer, role string) map[string]*group {
	out := map[string]*group{}
	for _, r := range o.Resources {
		if reservationRole(r) != role || !isDynamic(r) {
			continue
		}
		ls := reservationLabels(r)
		id := ls[state.LabelReservation]
		if id == "" {
			continue
		}
		g := out[id]
		if g == nil {
			g = &group{id: id, task: ls[state.LabelTask], service: ls[state.LabelService]}
			out[id] = g
		}
		g.resources = append(g.resources, r)
	}
	return out
}

func sortedGroupIDs(m map[string]*group) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func alloc(role string) *mesos.Resource_AllocationInfo {
	r := role
	return &mesos.Resource_AllocationInfo{Role: &r}
}

func scalar(name string, v float64, role string) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}, AllocationInfo: alloc(role)}
}

func portsResource(ports []int, role string) mesos.Resource {
	ns := make([]uint64, 0, len(ports))
	for _, p := range ports {
		ns = append(ns, uint64(p))
	}
	rs := mesos.NewRanges(ns...)
	return mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: rs}, AllocationInfo: alloc(role)}
}

// reserve puts r under a dynamic reservation of role by principal with our
// labels: the server, the reservation and the service.
func reserve(r mesos.Resource, role, principal, service, task, resID string) mesos.Resource {
	ro, pr := role, principal
	r.Role = nil
	r.Reservation = nil
	r.Reservations = []mesos.Resource_ReservationInfo{{
		Type:      mesos.Resource_ReservationInfo_DYNAMIC.Enum(),
		Role:      &ro,
		Principal: &pr,
		Labels: &mesos.Labels{Labels: []mesos.Label{
			{Key: state.LabelTask, Value: strPtr(task)},
			{Key: state.LabelReservation, Value: strPtr(resID)},
			{Key: state.LabelService, Value: strPtr(service)},
		}},
	}}
	return r
}

func withVolume(r mesos.Resource, persistenceID, principal string) mesos.Resource {
	mode := mesos.RW
	pr := principal
	d := mesos.Resource_DiskInfo{}
	if r.Disk != nil {
		d = *r.Disk
	}
	d.Persistence = &mesos.Resource_DiskInfo_Persistence{ID: persistenceID, Principal: &pr}
	d.Volume = &mesos.Volume{Mode: &mode, ContainerPath: state.VolumePath}
	r.Disk = &d
	return r
}

// withoutVolume is a volume resource after DESTROY: the reserved disk.
func withoutVolume(r mesos.Resource) mesos.Resource {
	if r.Disk == nil {
		return r
	}
	d := *r.Disk
	d.Persistence = nil
	d.Volume = nil
	if d.Source == nil {
		r.Disk = nil
	} else {
		r.Disk = &d
	}
	return r
}

func strPtr(s string) *string { return &s }

// portsContain reports the first wanted port missing from have.
func missingPort(have mesos.Ranges, want []int) (int, bool) {
	for _, p := range want {
		ok := false
		for _, r := range have {
			if uint64(p) >= r.Begin && uint64(p) <= r.End {
				ok = true
				break
			}
		}
		if !ok {
			return p, true
		}
	}
	return 0, false
}

func describePorts(rs mesos.Ranges) string {
	if len(rs) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%d-%d", r.Begin, r.End))
	}
	return strings.Join(parts, ",")
}

func isPublic(o mesos.Offer) bool {
	for _, a := range o.Attributes {
		if a.Name != "public_ip" {
			continue
		}
		if a.Text != nil && strings.EqualFold(a.Text.Value, "true") {
			return true
		}
		if a.Scalar != nil && a.Scalar.Value != 0 {
			return true
		}
	}
	return false
}

// agentIP is the agent's address from the offer.
func agentIP(o mesos.Offer) string {
	if o.URL != nil && o.URL.Address.IP != nil && *o.URL.Address.IP != "" {
		return *o.URL.Address.IP
	}
	return o.Hostname
}
