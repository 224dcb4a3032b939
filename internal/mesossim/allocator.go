package mesossim

import (
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// allocate is one allocation cycle of a (simplified) hierarchical DRF
// allocator: each connected agent's unused resources go to the framework
// with the lowest dominant share that can use them, one offer per
// (agent, role); reserved resources only to their role; decline filters
// and suppression honoured; min_allocatable_resources cpus:0.01|mem:32.
func (m *master) allocate(now time.Time) {
	var fws []*framework
	var totalCPU, totalMem float64
	for _, fw := range m.frameworks {
		if fw.active && fw.connected && len(fw.roles) > 0 {
			fws = append(fws, fw)
		}
	}
	if len(fws) == 0 {
		return
	}
	for _, e := range m.agents {
		totalCPU += e.total.scalar("cpus")
		totalMem += e.total.scalar("mem")
	}
	share := func(fw *framework) float64 {
		s := 0.0
		if totalCPU > 0 {
			s = fw.allocatedCPUs / totalCPU
		}
		if totalMem > 0 && fw.allocatedMem/totalMem > s {
			s = fw.allocatedMem / totalMem
		}
		return s
	}
	newOffers := map[string][]mesos.Offer{}
	for _, agentID := range m.agentOrder() {
		e := m.agents[agentID]
		if !e.connected || e.quiet.holds(e.books, m.allocGen, now) {
			continue
		}
		note := quietNote{valid: true, books: e.books, gen: m.allocGen}
		offered := false
		avail := e.total.clone().subAll(e.usedFlat).subAll(e.offeredFlat)
		if avail.empty() {
			e.quiet = note
			continue
		}
		// Frameworks by ascending share; ties by ID for stability.
		order := append([]*framework(nil), fws...)
		for i := 1; i < len(order); i++ {
			for j := i; j > 0; j-- {
				a, b := order[j], order[j-1]
				if sa, sb := share(a), share(b); sa < sb || sa == sb && a.id < b.id {
					order[j], order[j-1] = b, a
				} else {
					break
				}
			}
		}
		for _, fw := range order {
			for _, role := range fw.roles {
				if fw.suppressed[role] || avail.empty() {
					continue
				}
				var res rlist
				for i := range avail {
					r := &avail[i]
					if !allocatableTo(r, role) {
						continue
					}
					if len(r.Reservations) > 1 && !fw.refinement {
						continue // refined reservations are never offered to old-format frameworks
					}
					res = append(res, cloneRes(*r))
				}
				if res.scalar("cpus") < minExecutorCPUs && res.scalar("mem") < minExecutorMem {
					continue
				}
				key := filterKey{e.id, role}
				if f := fw.filters[key]; f != nil {
					if now.Before(f.until) && f.resources.contains(res) {
						note.until(f.until)
						continue
					}
					if !now.Before(f.until) {
						delete(fw.filters, key)
					}
				}
				avail = avail.subAll(res)
				res = offerOrder(res)
				o := &offer{id: m.newOfferID(), fw: fw.id, agent: e.id, role: role, resources: res.withAllocation(role)}
				m.offers[o.id] = o
				fw.offers[o.id] = o
				e.offeredFlat = e.offeredFlat.addAll(res)
				e.touch()
				offered = true
				fw.allocatedCPUs += res.scalar("cpus")
				fw.allocatedMem += res.scalar("mem")
				newOffers[fw.id] = append(newOffers[fw.id], m.offerProto(fw, e, o))
			}
		}
		if offered {
			e.quiet = quietNote{}
		} else {
			e.quiet = note
		}
	}
	// One OFFERS event per framework per cycle, however many offers, as the
	// real master sends them (with 10,000 agents it is several MiB).
	for fwID, offers := range newOffers {
		m.frameworks[fwID].send(&scheduler.Event{Type: scheduler.Event_OFFERS, Offers: &scheduler.Event_Offers{Offers: offers}})
	}
}

// quietNote remembers that an allocation cycle offered nothing of an
// agent: nothing was left, what was left was too small, suppressed, of
// another role, or covered by decline filters. Until the agent's books
// change (touch), something may offer more (allocGen), or the first of
// those filters expires, every later cycle would conclude the same, so it
// skips the agent. Without this a cycle cost a resource-list computation
// for every agent each second, under the master's lock: with 10,000
// agents, all running a task and filtered, the scheduler's calls waited
// for cycles that offered nothing (issue 8).
type quietNote struct {
	valid       bool
	books, gen  uint64
	bounded     bool
	expiresWhen time.Time
}

// until notes a filter that kept an offer back: the note ends with it.
func (q *quietNote) until(t time.Time) {
	if !q.bounded || t.Before(q.expiresWhen) {
		q.bounded, q.expiresWhen = true, t
	}
}

// holds reports whether the agent can be skipped in this cycle.
func (q quietNote) holds(books, gen uint64, now time.Time) bool {
	return q.valid && q.books == books && q.gen == gen && (!q.bounded || now.Before(q.expiresWhen))
}

// offerOrder lays out an offer's resources as a real 1.12 master does (every
// OFFERS record of the transcripts): non-scalar resources (ports) first,
// then reserved scalars, then unreserved ones, each group in the agent's
// order (cpus, mem, disk). The allocator builds an offer from its
// non-scalar part plus its (possibly shrunk) scalar part, reserved first.
func offerOrder(res rlist) rlist {
	group := func(r *mesos.Resource) int {
		g := 0
		if r.GetType() == mesos.SCALAR {
			g = 2
		}
		if !isReserved(r) {
			g++
		}
		return g
	}
	out := make(rlist, 0, len(res))
	for g := 0; g < 4; g++ {
		for i := range res {
			if group(&res[i]) == g {
				out = append(out, res[i])
			}
		}
	}
	return out
}

// agentOrder returns the agent IDs in Go's randomised map order, so that
// no agent is always offered first (Mesos shuffles agents too).
func (m *master) agentOrder() []string {
	ids := make([]string, 0, len(m.agents))
	for id := range m.agents {
		ids = append(ids, id)
	}
	return ids
}

// offerProto renders an offer for fw: allocation_info only for MULTI_ROLE
// frameworks, the deprecated role/reservation format for frameworks
// without RESERVATION_REFINEMENT.
func (m *master) offerProto(fw *framework, e *agentEntry, o *offer) mesos.Offer {
	rec := e.rec
	host, ip := rec.info.Hostname, rec.info.IP
	port := int32(rec.info.Port)
	res := make([]mesos.Resource, 0, len(o.resources))
	for _, r := range o.resources {
		res = append(res, formatForFramework(fw, r))
	}
	off := mesos.Offer{
		ID:          mesos.OfferID{Value: o.id},
		FrameworkID: mesos.FrameworkID{Value: fw.id},
		AgentID:     mesos.AgentID{Value: e.id},
		Hostname:    host,
		URL: &mesos.URL{
			Scheme:  "http",
			Address: mesos.Address{Hostname: &host, IP: &ip, Port: port},
			Path:    strPtr("/slave(1)"),
		},
		Resources:  res,
		Attributes: rec.cfg.Attributes,
	}
	for exID := range fw.executors[e.id] {
		off.ExecutorIDs = append(off.ExecutorIDs, mesos.ExecutorID{Value: exID})
	}
	if fw.multiRole {
		role := o.role
		off.AllocationInfo = &mesos.Resource_AllocationInfo{Role: &role}
	}
	return off
}

func formatForFramework(fw *framework, r mesos.Resource) mesos.Resource {
	c := cloneRes(r)
	if !fw.multiRole {
		c.AllocationInfo = nil
	}
	if !fw.refinement {
		role := "*"
		if n := len(c.Reservations); n > 0 {
			top := c.Reservations[n-1]
			role = top.GetRole()
			if top.GetType() == mesos.Resource_ReservationInfo_DYNAMIC {
				c.Reservation = &mesos.Resource_ReservationInfo{Principal: top.Principal, Labels: top.Labels}
			}
		}
		c.Role = &role
		c.Reservations = nil
	}
	return c
}

func strPtr(s string) *string { return &s }
