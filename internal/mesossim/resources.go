package mesossim

// Resource arithmetic as the master does it (src/common/resources.cpp),
// over mesos-go Resource values kept in the canonical "post-refinement"
// format: reservations[] stack, no deprecated role/reservation fields.
// Scalars use Mesos' fixed-point rule (three decimal digits).

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

type rlist []mesos.Resource

func roundScalar(x float64) float64 { return math.Round(x*1000) / 1000 }

func scalarRes(name string, v float64) mesos.Resource {
	t := mesos.SCALAR
	return mesos.Resource{Name: name, Type: &t, Scalar: &mesos.Value_Scalar{Value: v}}
}

func rangesRes(name string, rs []mesos.Value_Range) mesos.Resource {
	t := mesos.RANGES
	return mesos.Resource{Name: name, Type: &t, Ranges: &mesos.Value_Ranges{Range: rs}}
}

// parseResourceString parses the agent --resources syntax:
// "cpus:4;mem:8192;disk:20000;ports:[8000-9000,31000-32000]", optionally
// name(role):value for static reservations, and sets as {a,b}.
func parseResourceString(s string) (rlist, error) {
	var out rlist
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		i := strings.Index(part, ":")
		if i < 0 {
			return nil, fmt.Errorf("bad resource %q: expecting name:value", part)
		}
		name, value := strings.TrimSpace(part[:i]), strings.TrimSpace(part[i+1:])
		role := "*"
		if j := strings.Index(name, "("); j >= 0 && strings.HasSuffix(name, ")") {
			role = name[j+1 : len(name)-1]
			name = name[:j]
		}
		if name == "" {
			return nil, fmt.Errorf("bad resource %q: empty name", part)
		}
		var r mesos.Resource
		switch {
		case strings.HasPrefix(value, "["):
			if !strings.HasSuffix(value, "]") {
				return nil, fmt.Errorf("bad ranges %q", value)
			}
			var rs []mesos.Value_Range
			for _, rg := range strings.Split(value[1:len(value)-1], ",") {
				rg = strings.TrimSpace(rg)
				if rg == "" {
					continue
				}
				be := strings.SplitN(rg, "-", 2)
				b, err := strconv.ParseUint(strings.TrimSpace(be[0]), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("bad range %q: %w", rg, err)
				}
				e := b
				if len(be) == 2 {
					if e, err = strconv.ParseUint(strings.TrimSpace(be[1]), 10, 64); err != nil {
						return nil, fmt.Errorf("bad range %q: %w", rg, err)
					}
				}
				if e < b {
					return nil, fmt.Errorf("bad range %q: end before begin", rg)
				}
				rs = append(rs, mesos.Value_Range{Begin: b, End: e})
			}
			r = rangesRes(name, normRanges(rs))
		case strings.HasPrefix(value, "{"):
			t := mesos.SET
			var items []string
			for _, it := range strings.Split(strings.Trim(value, "{}"), ",") {
				if it = strings.TrimSpace(it); it != "" {
					items = append(items, it)
				}
			}
			r = mesos.Resource{Name: name, Type: &t, Set: &mesos.Value_Set{Item: items}}
		default:
			v, err := strconv.ParseFloat(value, 64)
			if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
				return nil, fmt.Errorf("bad scalar resource %q", part)
			}
			r = scalarRes(name, roundScalar(v))
		}
		if role != "*" {
			st := mesos.Resource_ReservationInfo_STATIC
			r.Reservations = []mesos.Resource_ReservationInfo{{Type: &st, Role: &role}}
		}
		out = out.add(r)
	}
	return out, nil
}

func normRanges(rs []mesos.Value_Range) []mesos.Value_Range {
	if len(rs) == 0 {
		return nil
	}
	c := append([]mesos.Value_Range(nil), rs...)
	sort.Slice(c, func(i, j int) bool { return c[i].Begin < c[j].Begin })
	out := []mesos.Value_Range{c[0]}
	for _, r := range c[1:] {
		last := &out[len(out)-1]
		if r.Begin <= last.End+1 {
			if r.End > last.End {
				last.End = r.End
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

func subRanges(a, b []mesos.Value_Range) []mesos.Value_Range {
	out := append([]mesos.Value_Range(nil), a...)
	for _, r := range b {
		var next []mesos.Value_Range
		for _, x := range out {
			if r.End < x.Begin || r.Begin > x.End {
				next = append(next, x)
				continue
			}
			if r.Begin > x.Begin {
				next = append(next, mesos.Value_Range{Begin: x.Begin, End: r.Begin - 1})
			}
			if r.End < x.End {
				next = append(next, mesos.Value_Range{Begin: r.End + 1, End: x.End})
			}
		}
		out = next
	}
	return out
}

func rangesContain(a, b []mesos.Value_Range) bool {
	for _, r := range b {
		ok := false
		for _, x := range a {
			if r.Begin >= x.Begin && r.End <= x.End {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func reservationEqual(a, b *mesos.Resource_ReservationInfo) bool {
	if a.GetType() != b.GetType() || a.GetRole() != b.GetRole() ||
		(a.Principal == nil) != (b.Principal == nil) || a.GetPrincipal() != b.GetPrincipal() {
		return false
	}
	return labelsEqual(a.Labels, b.Labels)
}

func labelsEqual(a, b *mesos.Labels) bool {
	la, lb := a.GetLabels(), b.GetLabels()
	if len(la) != len(lb) {
		return false
	}
	for i := range la {
		if la[i].Key != lb[i].Key || la[i].GetValue() != lb[i].GetValue() {
			return false
		}
	}
	return true
}

func diskEqual(a, b *mesos.Resource_DiskInfo) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	if a == nil {
		return true
	}
	pa, pb := a.GetPersistence(), b.GetPersistence()
	if (pa == nil) != (pb == nil) {
		return false
	}
	if pa != nil && (pa.ID != pb.ID || pa.GetPrincipal() != pb.GetPrincipal()) {
		return false
	}
	va, vb := a.GetVolume(), b.GetVolume()
	if (va == nil) != (vb == nil) {
		return false
	}
	if va != nil && (va.ContainerPath != vb.ContainerPath || va.GetMode() != vb.GetMode()) {
		return false
	}
	return (a.Source == nil) == (b.Source == nil)
}

// sameKind reports whether a and b differ only in their value.
func sameKind(a, b *mesos.Resource) bool {
	if a.Name != b.Name || a.GetType() != b.GetType() {
		return false
	}
	if (a.AllocationInfo == nil) != (b.AllocationInfo == nil) ||
		a.GetAllocationInfo().GetRole() != b.GetAllocationInfo().GetRole() {
		return false
	}
	if len(a.Reservations) != len(b.Reservations) {
		return false
	}
	for i := range a.Reservations {
		if !reservationEqual(&a.Reservations[i], &b.Reservations[i]) {
			return false
		}
	}
	if (a.Revocable == nil) != (b.Revocable == nil) || (a.Shared == nil) != (b.Shared == nil) {
		return false
	}
	return diskEqual(a.Disk, b.Disk)
}

func isVolume(r *mesos.Resource) bool { return r.GetDisk().GetPersistence() != nil }

func isEmptyRes(r *mesos.Resource) bool {
	switch r.GetType() {
	case mesos.SCALAR:
		return r.GetScalar().GetValue() <= 0
	case mesos.RANGES:
		return len(r.GetRanges().GetRange()) == 0
	case mesos.SET:
		return len(r.GetSet().GetItem()) == 0
	}
	return true
}

func cloneRes(r mesos.Resource) mesos.Resource {
	c := r
	if r.Scalar != nil {
		c.Scalar = &mesos.Value_Scalar{Value: r.Scalar.Value}
	}
	if r.Ranges != nil {
		c.Ranges = &mesos.Value_Ranges{Range: append([]mesos.Value_Range(nil), r.Ranges.Range...)}
	}
	if r.Set != nil {
		c.Set = &mesos.Value_Set{Item: append([]string(nil), r.Set.Item...)}
	}
	if r.AllocationInfo != nil {
		ai := *r.AllocationInfo
		c.AllocationInfo = &ai
	}
	if r.Reservations != nil {
		c.Reservations = append([]mesos.Resource_ReservationInfo(nil), r.Reservations...)
	}
	return c
}

func (l rlist) clone() rlist {
	if l == nil {
		return nil
	}
	out := make(rlist, len(l))
	for i := range l {
		out[i] = cloneRes(l[i])
	}
	return out
}

// add returns l + r (l is modified in place when possible).
func (l rlist) add(r mesos.Resource) rlist {
	if isEmptyRes(&r) {
		return l
	}
	if !isVolume(&r) {
		for i := range l {
			x := &l[i]
			if !sameKind(x, &r) {
				continue
			}
			switch x.GetType() {
			case mesos.SCALAR:
				x.Scalar = &mesos.Value_Scalar{Value: roundScalar(x.Scalar.Value + r.Scalar.Value)}
			case mesos.RANGES:
				x.Ranges = &mesos.Value_Ranges{Range: normRanges(append(append([]mesos.Value_Range(nil), x.Ranges.Range...), r.Ranges.Range...))}
			case mesos.SET:
				seen := map[string]bool{}
				var items []string
				for _, it := range append(append([]string(nil), x.Set.Item...), r.Set.Item...) {
					if !seen[it] {
						seen[it] = true
						items = append(items, it)
					}
				}
				x.Set = &mesos.Value_Set{Item: items}
			}
			return l
		}
	}
	return append(l, cloneRes(r))
}

func (l rlist) addAll(o rlist) rlist {
	for _, r := range o {
		l = l.add(r)
	}
	return l
}

// containsOne reports whether r is contained in l.
func (l rlist) containsOne(r mesos.Resource) bool {
	if isEmptyRes(&r) {
		return true
	}
	for i := range l {
		x := &l[i]
		if !sameKind(x, &r) {
			continue
		}
		switch x.GetType() {
		case mesos.SCALAR:
			if roundScalar(r.Scalar.Value) <= roundScalar(x.Scalar.Value) {
				return true
			}
		case mesos.RANGES:
			if rangesContain(x.Ranges.Range, r.Ranges.Range) {
				return true
			}
		case mesos.SET:
			have := map[string]bool{}
			for _, it := range x.Set.Item {
				have[it] = true
			}
			ok := true
			for _, it := range r.Set.Item {
				ok = ok && have[it]
			}
			if ok {
				return true
			}
		}
	}
	return false
}

// contains reports whether all of o is contained in l.
func (l rlist) contains(o rlist) bool {
	rest := l.clone()
	for _, r := range o {
		if !rest.containsOne(r) {
			return false
		}
		rest = rest.sub(r)
	}
	return true
}

// sub returns l - r; l is modified in place.
func (l rlist) sub(r mesos.Resource) rlist {
	if isEmptyRes(&r) {
		return l
	}
	for i := range l {
		x := &l[i]
		if !sameKind(x, &r) {
			continue
		}
		switch x.GetType() {
		case mesos.SCALAR:
			x.Scalar = &mesos.Value_Scalar{Value: roundScalar(x.Scalar.Value - r.Scalar.Value)}
		case mesos.RANGES:
			x.Ranges = &mesos.Value_Ranges{Range: subRanges(x.Ranges.Range, r.Ranges.Range)}
		case mesos.SET:
			drop := map[string]bool{}
			for _, it := range r.Set.Item {
				drop[it] = true
			}
			var items []string
			for _, it := range x.Set.Item {
				if !drop[it] {
					items = append(items, it)
				}
			}
			x.Set = &mesos.Value_Set{Item: items}
		}
		if isEmptyRes(x) {
			l = append(l[:i], l[i+1:]...)
		}
		return l
	}
	return l
}

func (l rlist) subAll(o rlist) rlist {
	for _, r := range o {
		l = l.sub(r)
	}
	return l
}

func (l rlist) empty() bool {
	for i := range l {
		if !isEmptyRes(&l[i]) {
			return false
		}
	}
	return true
}

// withAllocation returns a copy with allocation_info.role set on each resource.
func (l rlist) withAllocation(role string) rlist {
	out := l.clone()
	for i := range out {
		r := role
		out[i].AllocationInfo = &mesos.Resource_AllocationInfo{Role: &r}
	}
	return out
}

// unallocated returns a copy without allocation_info, merged.
func (l rlist) unallocated() rlist {
	var out rlist
	for _, r := range l {
		c := cloneRes(r)
		c.AllocationInfo = nil
		out = out.add(c)
	}
	return out
}

func reservationRole(r *mesos.Resource) string {
	if n := len(r.Reservations); n > 0 {
		return r.Reservations[n-1].GetRole()
	}
	return "*"
}

func isReserved(r *mesos.Resource) bool { return len(r.Reservations) > 0 }

func isDynamicallyReserved(r *mesos.Resource) bool {
	n := len(r.Reservations)
	return n > 0 && r.Reservations[n-1].GetType() == mesos.Resource_ReservationInfo_DYNAMIC
}

// allocatableTo reports whether r can be offered to role (unreserved, or
// reserved to role or an ancestor of it).
func allocatableTo(r *mesos.Resource, role string) bool {
	if !isReserved(r) {
		return true
	}
	rr := reservationRole(r)
	return rr == role || strings.HasPrefix(role, rr+"/")
}

// popReservation returns r with its top reservation removed.
func popReservation(r mesos.Resource) mesos.Resource {
	c := cloneRes(r)
	if n := len(c.Reservations); n > 0 {
		c.Reservations = c.Reservations[:n-1]
		if len(c.Reservations) == 0 {
			c.Reservations = nil
		}
	}
	return c
}

// upgradeResource converts the deprecated role/reservation format into the
// reservations stack (validateAndUpgradeResources).
func upgradeResource(r *mesos.Resource) error {
	if r.Role != nil || r.Reservation != nil {
		role := r.GetRole()
		if role == "" {
			role = "*"
		}
		if len(r.Reservations) > 0 {
			// Both formats: must be consistent and single level.
			if len(r.Reservations) != 1 || r.Reservations[0].GetRole() != role {
				return fmt.Errorf("Resource with both 'role'/'reservation' and 'reservations' set must be consistent")
			}
		} else if role != "*" {
			t := mesos.Resource_ReservationInfo_STATIC
			ri := mesos.Resource_ReservationInfo{Type: &t, Role: &role}
			if r.Reservation != nil {
				t = mesos.Resource_ReservationInfo_DYNAMIC
				ri.Type = &t
				ri.Principal = r.Reservation.Principal
				ri.Labels = r.Reservation.Labels
			}
			r.Reservations = []mesos.Resource_ReservationInfo{ri}
		} else if r.Reservation != nil {
			return fmt.Errorf("Invalid reservation: role \"*\" cannot be dynamically reserved")
		}
		r.Role = nil
		r.Reservation = nil
	}
	if len(r.Reservations) == 0 {
		r.Reservations = nil
	}
	return nil
}

// validateResource applies Resources::validate's basic rules.
func validateResource(r *mesos.Resource) error {
	if r.Name == "" {
		return fmt.Errorf("Empty resource name")
	}
	if r.Type == nil {
		return fmt.Errorf("Missing resource type")
	}
	switch r.GetType() {
	case mesos.SCALAR:
		if r.Scalar == nil || r.Ranges != nil || r.Set != nil {
			return fmt.Errorf("Invalid scalar resource %s", r.Name)
		}
		if v := r.Scalar.Value; v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("Invalid scalar resource %s: value %v", r.Name, v)
		}
	case mesos.RANGES:
		if r.Ranges == nil || r.Scalar != nil || r.Set != nil {
			return fmt.Errorf("Invalid ranges resource %s", r.Name)
		}
		for _, rg := range r.Ranges.Range {
			if rg.Begin > rg.End {
				return fmt.Errorf("Invalid ranges resource %s: begin > end", r.Name)
			}
		}
	case mesos.SET:
		if r.Set == nil || r.Scalar != nil || r.Ranges != nil {
			return fmt.Errorf("Invalid set resource %s", r.Name)
		}
	default:
		return fmt.Errorf("Unsupported resource type")
	}
	for i, ri := range r.Reservations {
		if ri.Role == nil || ri.GetRole() == "*" {
			return fmt.Errorf("Invalid reservation: role \"*\" cannot be reserved")
		}
		if err := validateRole(ri.GetRole()); err != nil {
			return fmt.Errorf("Invalid reservation role: %v", err)
		}
		if i > 0 {
			if ri.GetType() == mesos.Resource_ReservationInfo_STATIC {
				return fmt.Errorf("Invalid refined reservation: A refined reservation cannot be STATIC")
			}
			prev := r.Reservations[i-1].GetRole()
			if !strings.HasPrefix(ri.GetRole(), prev+"/") {
				return fmt.Errorf("Invalid refined reservation: role %s is not a sub-role of %s", ri.GetRole(), prev)
			}
		}
	}
	if d := r.Disk; d != nil {
		if r.Name != "disk" {
			return fmt.Errorf("DiskInfo should not be set for %s resource", r.Name)
		}
		if d.Persistence != nil {
			if err := validateID(d.Persistence.ID); err != nil {
				return fmt.Errorf("Invalid persistence ID for persistent volume: %v", err)
			}
			if d.Volume == nil {
				return fmt.Errorf("Expecting 'volume' to be set for persistent volume")
			}
		}
	}
	return nil
}

// ------------------------------------------------------------ formatting

func formatScalar(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func formatRanges(rs []mesos.Value_Range) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%d-%d", r.Begin, r.End)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// formatResource renders r as Mesos' operator<< does, e.g.
// "cpus(allocated: consul-role)(reservations: [(DYNAMIC,consul-role,p)]):0.1".
func formatResource(r *mesos.Resource) string {
	var b strings.Builder
	b.WriteString(r.Name)
	if r.AllocationInfo != nil {
		b.WriteString("(allocated: " + r.AllocationInfo.GetRole() + ")")
	}
	if len(r.Reservations) > 0 {
		b.WriteString("(reservations: [")
		for i, ri := range r.Reservations {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("(" + ri.GetType().String() + "," + ri.GetRole())
			if ri.Principal != nil {
				b.WriteString("," + ri.GetPrincipal())
			}
			if ri.Labels != nil {
				var ls []string
				for _, l := range ri.Labels.Labels {
					ls = append(ls, l.Key+": "+l.GetValue())
				}
				b.WriteString(",{" + strings.Join(ls, ", ") + "}")
			}
			b.WriteString(")")
		}
		b.WriteString("])")
	}
	if d := r.Disk; d != nil {
		b.WriteString("[")
		if d.Persistence != nil {
			b.WriteString(d.Persistence.ID)
		}
		if d.Volume != nil {
			b.WriteString(":" + d.Volume.ContainerPath)
			if d.Volume.Mode != nil {
				b.WriteString(":" + strings.ToLower(d.Volume.GetMode().String()))
			}
		}
		b.WriteString("]")
	}
	b.WriteString(":")
	switch r.GetType() {
	case mesos.SCALAR:
		b.WriteString(formatScalar(r.GetScalar().GetValue()))
	case mesos.RANGES:
		b.WriteString(formatRanges(r.GetRanges().GetRange()))
	case mesos.SET:
		b.WriteString("{" + strings.Join(r.GetSet().GetItem(), ", ") + "}")
	}
	return b.String()
}

func (l rlist) String() string {
	parts := make([]string, len(l))
	for i := range l {
		parts[i] = formatResource(&l[i])
	}
	return strings.Join(parts, "; ")
}

// quantities sums scalars and merges ranges by name, for state endpoints.
type quantities struct {
	scalars map[string]float64
	ranges  map[string][]mesos.Value_Range
	sets    map[string][]string
}

func (l rlist) quantities() quantities {
	q := quantities{scalars: map[string]float64{}, ranges: map[string][]mesos.Value_Range{}, sets: map[string][]string{}}
	for _, r := range l {
		switch r.GetType() {
		case mesos.SCALAR:
			q.scalars[r.Name] += r.GetScalar().GetValue()
		case mesos.RANGES:
			q.ranges[r.Name] = normRanges(append(q.ranges[r.Name], r.GetRanges().GetRange()...))
		case mesos.SET:
			q.sets[r.Name] = append(q.sets[r.Name], r.GetSet().GetItem()...)
		}
	}
	return q
}

func (l rlist) scalar(name string) float64 {
	var s float64
	for _, r := range l {
		if r.Name == name && r.GetType() == mesos.SCALAR {
			s += r.GetScalar().GetValue()
		}
	}
	return roundScalar(s)
}
