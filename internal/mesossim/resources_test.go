package mesossim

import (
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

func TestParseAndArithmetic(t *testing.T) {
	total, err := parseResourceString(DefaultAgentResources)
	if err != nil {
		t.Fatal(err)
	}
	if got := total.String(); got != "cpus:4; mem:8192; disk:20000; ports:[8000-9000, 31000-32000]" {
		t.Errorf("parsed %q", got)
	}
	used := rlist{scalarRes("cpus", 0.1), scalarRes("cpus", 0.2), rangesRes("ports", []mesos.Value_Range{{Begin: 8500, End: 8500}, {Begin: 8600, End: 8600}})}
	var sum rlist
	sum = sum.addAll(used)
	if sum.scalar("cpus") != 0.3 { // fixed point: not 0.30000000000000004
		t.Errorf("0.1+0.2 = %v", sum.scalar("cpus"))
	}
	left := total.clone().subAll(sum)
	if got := left.String(); got != "cpus:3.7; mem:8192; disk:20000; ports:[8000-8499, 8501-8599, 8601-9000, 31000-32000]" {
		t.Errorf("subtracted %q", got)
	}
	if !total.contains(sum) || sum.contains(total) || left.contains(rlist{rangesRes("ports", []mesos.Value_Range{{Begin: 8500, End: 8500}})}) {
		t.Error("contains")
	}
	if _, err := parseResourceString("cpus:x"); err == nil {
		t.Error("bad scalar accepted")
	}
	if _, err := parseResourceString("ports:[9-1]"); err == nil {
		t.Error("bad range accepted")
	}
	st, _ := parseResourceString("cpus(slave_public):2")
	if len(st[0].Reservations) != 1 || st[0].Reservations[0].GetType() != mesos.Resource_ReservationInfo_STATIC || reservationRole(&st[0]) != "slave_public" {
		t.Errorf("static reservation %+v", st[0])
	}
}

func TestFormatResourceLikeMesos(t *testing.T) {
	r := res("cpus", 100, "consul-role")
	if got := formatResource(&r); got != "cpus(allocated: consul-role):100" {
		t.Errorf("%q", got)
	}
	v := volume(reserved(res("disk", 100, "consul-role"), "x"), "data-0", "data")
	if got := formatResource(&v); got != "disk(allocated: consul-role)(reservations: [(DYNAMIC,consul-role,consul-principal,{resource_id: x})])[data-0:data:rw]:100" {
		t.Errorf("%q", got)
	}
	for in, want := range map[float64]string{4: "4.0", 0.1: "0.1", 8128: "8128.0", 0.30000000000000004: "0.30000000000000004", 1795579468.459991: "1795579468.459991"} {
		if got := formatDouble(in); got != want {
			t.Errorf("formatDouble(%v) = %s, want %s", in, got, want)
		}
	}
}

func TestUpgradeLegacyFormat(t *testing.T) {
	r := scalarRes("cpus", 1)
	r.Role = strPtr("consul-role")
	r.Reservation = &mesos.Resource_ReservationInfo{Principal: strPtr("p")}
	if err := upgradeResource(&r); err != nil {
		t.Fatal(err)
	}
	if r.Role != nil || r.Reservation != nil || len(r.Reservations) != 1 || r.Reservations[0].GetType() != mesos.Resource_ReservationInfo_DYNAMIC || r.Reservations[0].GetPrincipal() != "p" {
		t.Errorf("upgraded %+v", r)
	}
	star := scalarRes("mem", 1)
	star.Role = strPtr("*")
	if err := upgradeResource(&star); err != nil || star.Role != nil || len(star.Reservations) != 0 {
		t.Errorf("'*' upgraded to %+v %v", star, err)
	}
	// Round trip through the legacy offer format.
	fw := &framework{multiRole: true}
	legacy := formatForFramework(fw, r)
	if legacy.GetRole() != "consul-role" || legacy.Reservation.GetPrincipal() != "p" || len(legacy.Reservations) != 0 {
		t.Errorf("legacy %+v", legacy)
	}
}

func TestJSONConversionRules(t *testing.T) {
	decode := func(s string) (*scheduler.Call, error) {
		v, err := parseJSONBody([]byte(s))
		if err != nil {
			return nil, err
		}
		var c scheduler.Call
		return &c, jsonToProto(v, &c)
	}
	// Unknown keys ignored, null = unset, unknown optional enum dropped.
	c, err := decode(`{"type":"KILL","framework_id":{"value":"f","extra":1},"kill":{"task_id":{"value":"t"},"agent_id":null},"nope":[1]}`)
	if err != nil || c.Type != scheduler.Call_KILL || c.Kill.AgentID != nil || c.FrameworkID.Value != "f" {
		t.Errorf("decoded %+v %v", c, err)
	}
	c, err = decode(`{"type":"NOPE"}`)
	if err != nil || c.Type != enumUnset {
		t.Errorf("unknown enum: %v %v", c.Type, err)
	}
	_, err = decode(`{"type":"RECONCILE","reconcile":{"tasks":[{"agent_id":{"value":"a"}}]}}`)
	if err == nil || err.Error() != "Missing required fields: reconcile.tasks[0].task_id" {
		t.Errorf("missing nested required: %v", err)
	}
	_, err = decode(`{"type":"ACKNOWLEDGE","acknowledge":{"uuid":"%%%"}}`)
	if err == nil || !strings.Contains(err.Error(), "base64") {
		t.Errorf("bad base64: %v", err)
	}
	// Encoding: declaration order, repeated only when set, no defaults.
	st := masterStatus("t", mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, "m", "a")
	ts := 1.5
	st.Timestamp = &ts
	if got := string(protoToJSON(&st)); got != `{"task_id":{"value":"t"},"state":"TASK_ERROR","message":"m","source":"SOURCE_MASTER","reason":"REASON_TASK_INVALID","agent_id":{"value":"a"},"timestamp":1.5}` {
		t.Errorf("encoded %s", got)
	}
}
