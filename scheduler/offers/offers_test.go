package offers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/reconcile"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

var now = time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC)

func target(mod ...func(*config.Config)) state.Target {
	c := config.Defaults()
	c.ExecutorURI = "http://127.2.0.1:9000/dcos-consul"
	for _, m := range mod {
		m(&c)
	}
	tg := state.TargetFrom(c)
	tg.Secrets = &state.SecretsAccess{URL: "http://127.2.0.1:8080", Credential: func(id string) string { return "cred-" + id }}
	return tg
}

type offerOpt func(*mesos.Offer)

func withPorts(ranges ...[2]uint64) offerOpt {
	return func(o *mesos.Offer) {
		var rs mesos.Ranges
		for _, r := range ranges {
			rs = append(rs, mesos.Value_Range{Begin: r[0], End: r[1]})
		}
		for i := range o.Resources {
			if o.Resources[i].Name == "ports" {
				o.Resources[i].Ranges = &mesos.Value_Ranges{Range: rs}
			}
		}
	}
}

func withScalar(name string, v float64) offerOpt {
	return func(o *mesos.Offer) {
		for i := range o.Resources {
			if o.Resources[i].Name == name && len(o.Resources[i].Reservations) == 0 {
				o.Resources[i].Scalar.Value = v
			}
		}
	}
}

func withAttr(name, value string) offerOpt {
	return func(o *mesos.Offer) {
		o.Attributes = append(o.Attributes, mesos.Attribute{Name: name, Type: mesos.TEXT, Text: &mesos.Value_Text{Value: value}})
	}
}

func withResources(rs ...mesos.Resource) offerOpt {
	return func(o *mesos.Offer) { o.Resources = append(rs, o.Resources...) }
}

// offer builds an offer shaped like the recorded ones (transcript 01).
func offer(n int, opts ...offerOpt) mesos.Offer {
	ip := fmt.Sprintf("127.2.0.%d", 10+n)
	role := "consul-role"
	o := mesos.Offer{
		ID:          mesos.OfferID{Value: fmt.Sprintf("M-O%d", n)},
		FrameworkID: mesos.FrameworkID{Value: "M-0000"},
		AgentID:     mesos.AgentID{Value: fmt.Sprintf("M-S%d", n)},
		Hostname:    ip,
		URL:         &mesos.URL{Scheme: "http", Address: mesos.Address{Hostname: &ip, IP: &ip, Port: 5051}},
		Resources: []mesos.Resource{
			portsResource(nil, role),
			scalar("cpus", 4, role), scalar("mem", 8192, role), scalar("disk", 20000, role),
		},
		AllocationInfo: alloc(role),
	}
	o.Resources[0].Ranges = &mesos.Value_Ranges{Range: mesos.Ranges{{Begin: 8000, End: 9000}, {Begin: 31000, End: 32000}}}
	for _, f := range opts {
		f(&o)
	}
	return o
}

func ids() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("00000000-0000-0000-0000-%012d", n) }
}

func input(tg state.Target, tasks state.Tasks, o mesos.Offer) Input {
	r := reconcile.Reconcile(reconcile.Input{Target: tg, Tasks: tasks, Now: now})
	return Input{Target: tg, FrameworkID: "M-0000", Tasks: r.Tasks, Launch: r.Launch, Offer: o, Now: now, NewID: ids(),
		Evicting: Evicting(r.Tasks), ByAgent: IndexByAgent(r.Tasks)}
}

func opTypes(d Decision) string {
	var s []string
	for _, op := range d.Operations {
		s = append(s, op.Type.String())
	}
	return strings.Join(s, ",")
}

func launchedTask(t *testing.T, d Decision) mesos.TaskInfo {
	t.Helper()
	for _, op := range d.Operations {
		if op.Type == mesos.Offer_Operation_LAUNCH {
			return op.Launch.TaskInfos[0]
		}
	}
	t.Fatalf("no LAUNCH in %s (%s)", opTypes(d), d.Reason)
	return mesos.TaskInfo{}
}

func running(name string, agent int, res *state.Reservation) state.Task {
	role := taskspec.RoleServer
	idx := 0
	if strings.HasPrefix(name, state.ClientPrefix) {
		role = taskspec.RoleClient
	} else {
		fmt.Sscanf(name, state.ServerPrefix+"%d", &idx)
	}
	ip := fmt.Sprintf("127.2.0.%d", 10+agent)
	tg := target()
	return state.Task{Name: name, Role: role, Index: idx, TaskID: name + "__x", AgentID: fmt.Sprintf("M-S%d", agent),
		Hostname: ip, IP: ip, State: "TASK_RUNNING", Reservation: res, Ports: tg.Ports, ConfigID: tg.ConfigIDOf(role)}
}

func TestFirstServerReservesCreatesAndLaunchesInOneAccept(t *testing.T) {
	tg := target()
	d := Evaluate(input(tg, state.Tasks{}, offer(1)))
	if got := opTypes(d); got != "RESERVE,CREATE,LAUNCH" {
		t.Fatalf("ops = %s, want RESERVE,CREATE,LAUNCH (reason %q)", got, d.Reason)
	}
	if len(d.Records) != 1 || d.Records[0].Name != "consul-server-0" {
		t.Fatalf("records = %+v", d.Records)
	}
	rec := d.Records[0]
	if rec.State != "TASK_STAGING" || rec.AgentID != "M-S1" || rec.IP != "127.2.0.11" || rec.Reservation == nil || rec.Reservation.Confirmed {
		t.Fatalf("record = %+v", rec)
	}
	res := d.Operations[0].Reserve.Resources
	names := map[string]bool{}
	for _, r := range res {
		names[r.Name] = true
		if len(r.Reservations) != 1 {
			t.Fatalf("reservation stack = %+v", r.Reservations)
		}
		ri := r.Reservations[0]
		if ri.GetType() != mesos.Resource_ReservationInfo_DYNAMIC || ri.GetRole() != "consul-role" || ri.GetPrincipal() != "consul-principal" {
			t.Fatalf("reservation = %+v", ri)
		}
		ls := reservationLabels(r)
		if ls[state.LabelTask] != "consul-server-0" || ls[state.LabelReservation] != rec.Reservation.ID {
			t.Fatalf("labels = %v", ls)
		}
		if r.AllocationInfo.GetRole() != "consul-role" {
			t.Fatalf("allocation info missing on %s", r.Name)
		}
	}
	for _, n := range []string{"cpus", "mem", "disk", "ports"} {
		if !names[n] {
			t.Fatalf("RESERVE lacks %s", n)
		}
	}
	vol := d.Operations[1].Create.Volumes[0]
	if persistenceID(vol) != rec.Reservation.PersistenceID || vol.Disk.Volume.ContainerPath != state.VolumePath ||
		vol.Disk.Volume.GetMode() != mesos.RW || vol.Disk.Persistence.GetPrincipal() != "consul-principal" {
		t.Fatalf("volume = %+v", vol.Disk)
	}
	ti := launchedTask(t, d)
	if ti.TaskID.Value != rec.TaskID || !strings.HasPrefix(ti.TaskID.Value, "consul-server-0__") {
		t.Fatalf("task id %q, record %q", ti.TaskID.Value, rec.TaskID)
	}
	hasVol := false
	for _, r := range ti.Resources {
		if persistenceID(r) == rec.Reservation.PersistenceID {
			hasVol = true
		}
		if len(r.Reservations) != 1 {
			t.Fatalf("task resource %s not reserved", r.Name)
		}
	}
	if !hasVol {
		t.Fatalf("task does not use its volume: %+v", ti.Resources)
	}
	if d.Refuse != LongRefuse {
		t.Fatalf("refuse = %v", d.Refuse)
	}
}

func TestExecutorInfoIsCustomAndFetchesTheBinary(t *testing.T) {
	tg := target(func(c *config.Config) { c.ExecutorURI = "http://127.2.0.1:9000/bin/dcos-consul?x=1" })
	ti := launchedTask(t, Evaluate(input(tg, state.Tasks{}, offer(1))))
	ex := ti.Executor
	if ex == nil || ex.Type != mesos.ExecutorInfo_CUSTOM {
		t.Fatalf("executor = %+v", ex)
	}
	if ex.ExecutorID.Value != ti.TaskID.Value || ex.FrameworkID.Value != "M-0000" {
		t.Fatalf("executor id %q framework %v", ex.ExecutorID.Value, ex.FrameworkID)
	}
	if ti.Command != nil {
		t.Fatal("a task with an executor must not carry a command")
	}
	uri := ex.Command.URIs[0]
	if uri.Value != tg.ExecutorURI || !uri.GetExecutable() || uri.GetExtract() || !uri.GetCache() {
		t.Fatalf("uri = %+v", uri)
	}
	// The published artifact is a .tar.gz: extracted (not made executable:
	// Mesos then skips extraction), cached per agent, run from inside.
	tg = target(func(c *config.Config) { c.ExecutorURI = "http://h/0.1.0/dcos-consul-linux-amd64.tar.gz" })
	ex = launchedTask(t, Evaluate(input(tg, state.Tasks{}, offer(1)))).Executor
	if u := ex.Command.URIs[0]; u.GetExecutable() || !u.GetExtract() || !u.GetCache() || ex.Command.GetValue() != "./dcos-consul executor" {
		t.Fatalf("archive uri = %+v, command %q", u, ex.Command.GetValue())
	}
	if got := ex.Command.GetValue(); got != "./dcos-consul executor" {
		t.Fatalf("command = %q", got)
	}
	// A server's graceful leave takes about 5 s: Mesos's default 5 s
	// shutdown grace would cut it short on SHUTDOWN.
	if g := ex.GetShutdownGracePeriod(); g == nil || g.Nanoseconds < int64(10*time.Second) {
		t.Fatalf("shutdown grace period = %v, want at least 10s", g)
	}
}

func TestExecutorFile(t *testing.T) {
	for _, c := range []struct{ uri, want, err string }{
		{"http://h/a/dcos-consul", "dcos-consul", ""},
		{"https://h/a/dcos-consul-linux-amd64?sig=1", "dcos-consul-linux-amd64", ""},
		{"/usr/local/bin/dcos-consul", "dcos-consul", ""},
		{"file:///tmp/x/dcos-consul", "dcos-consul", ""},
		{"https://h/0.1.0/dcos-consul-linux-amd64.tar.gz?sig=1", "dcos-consul", ""},
		{"/dist/dcos-consul.tgz", "dcos-consul", ""},
		{"", "", "no executor URI"},
		{"http://h/", "", "names no file"},
	} {
		got, err := ExecutorFile(c.uri)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.uri, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %q %v, want %q", c.uri, got, err, c.want)
		}
	}
}

func TestTaskSpecOfAServer(t *testing.T) {
	tg := target(func(c *config.Config) { c.ExecutorDNSServer = "127.2.0.1:53"; c.ServiceName = "Prod.Consul_1" })
	tasks := state.Tasks{
		"consul-server-0": running("consul-server-0", 1, &state.Reservation{ID: "r0", PersistenceID: "p0", Confirmed: true}),
	}
	d := Evaluate(input(tg, tasks, offer(2)))
	ti := launchedTask(t, d)
	spec, err := taskspec.Decode(ti.Data)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Role != taskspec.RoleServer || spec.NodeName != "consul-server-1" || spec.BootstrapExpect != 3 || spec.DataDir != state.VolumePath {
		t.Fatalf("spec = %+v", spec)
	}
	want := []string{"consul-server-0.prod.consul-1.mesos", "consul-server-1.prod.consul-1.mesos", "consul-server-2.prod.consul-1.mesos"}
	if fmt.Sprint(spec.JoinDNSNames) != fmt.Sprint(want) {
		t.Fatalf("dns names = %v, want %v", spec.JoinDNSNames, want)
	}
	if fmt.Sprint(spec.JoinAddrs) != "[127.2.0.11:8301]" {
		t.Fatalf("join addrs = %v", spec.JoinAddrs)
	}
	if spec.DNSServer != "127.2.0.1:53" || spec.ConfigID != tg.ServerConfigID || spec.Ports.Server != 8300 || spec.Ports.HTTP != -1 || spec.Ports.HTTPS != 8501 || !spec.TLS {
		t.Fatalf("spec = %+v", spec)
	}
}

func TestDeclines(t *testing.T) {
	tg := target()
	srv := func(i, agent int) state.Task {
		return running(state.ServerName(i), agent, &state.Reservation{ID: fmt.Sprint("r", i), PersistenceID: fmt.Sprint("p", i), Confirmed: true})
	}
	allServers := state.Tasks{"consul-server-0": srv(0, 1), "consul-server-1": srv(1, 2), "consul-server-2": srv(2, 3)}
	cases := []struct {
		name   string
		tg     state.Target
		tasks  state.Tasks
		offer  mesos.Offer
		reason string
		refuse time.Duration
	}{
		{"too few cpus for a server", tg, state.Tasks{}, offer(1, withScalar("cpus", 0.2)), "cpus 0.20 offered, 0.50 needed", ShortRefuse},
		{"too little mem", tg, state.Tasks{}, offer(1, withScalar("mem", 100)), "mem 100 MB offered, 512 MB needed", ShortRefuse},
		{"too little disk", tg, state.Tasks{}, offer(1, withScalar("disk", 10)), "disk 10 MB offered, 1024 MB needed", ShortRefuse},
		{"port missing", tg, state.Tasks{}, offer(1, withPorts([2]uint64{31000, 32000})), "port 8300 is not offered (offered ports: 31000-32000)", ShortRefuse},
		{"public agent for a server", tg, state.Tasks{}, offer(1, withAttr("public_ip", "true")), "public agent", ShortRefuse},
		{"agent already runs a server", tg, allServers, offer(2), "this agent already runs consul-server-1", LongRefuse},
		{"client does not fit", tg, allServers, offer(4, withScalar("mem", 10)), "cannot launch consul-client-m-s4: mem 10 MB offered, 256 MB needed", LongRefuse},
		{"clients disabled", target(func(c *config.Config) { c.ClientsEnabled = false }), allServers, offer(4), "nothing to launch", LongRefuse},
		{"public agent, no clients there", tg, allServers, offer(4, withAttr("public_ip", "true")), "public agent and clients on public agents are disabled", LongRefuse},
		{"placement LIKE", target(func(c *config.Config) { c.ServerPlacement = `[["rack","LIKE","r[12]"]]` }), state.Tasks{}, offer(1, withAttr("rack", "r3")), `constraint [rack LIKE r[12]]: agent has rack="r3"`, ShortRefuse},
		{"wrong role", tg, state.Tasks{}, func() mesos.Offer { o := offer(1); o.AllocationInfo = alloc("other"); return o }(), `offer allocated to role "other"`, LongRefuse},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Evaluate(input(c.tg, c.tasks, c.offer))
			if d.Accept() {
				t.Fatalf("accepted with %s: %s", opTypes(d), d.Reason)
			}
			if !strings.Contains(d.Reason, c.reason) {
				t.Fatalf("reason %q, want it to contain %q", d.Reason, c.reason)
			}
			if d.Refuse != c.refuse {
				t.Fatalf("refuse %v, want %v", d.Refuse, c.refuse)
			}
		})
	}
}

func TestPlacementConstraintsAccept(t *testing.T) {
	tg := target(func(c *config.Config) { c.ServerPlacement = `[["rack","LIKE","r[12]"],["hostname","UNIQUE"]]` })
	d := Evaluate(input(tg, state.Tasks{}, offer(1, withAttr("rack", "r2"))))
	if opTypes(d) != "RESERVE,CREATE,LAUNCH" {
		t.Fatalf("ops %s: %s", opTypes(d), d.Reason)
	}
	// MAX_PER on an attribute counts servers already there.
	tg = target(func(c *config.Config) { c.ServerPlacement = `[["rack","MAX_PER","1"]]` })
	tasks := state.Tasks{"consul-server-0": running("consul-server-0", 1, &state.Reservation{ID: "r0", Confirmed: true})}
	in := input(tg, tasks, offer(2, withAttr("rack", "a")))
	in.AgentAttrs = map[string]map[string]string{"M-S1": {"rack": "a"}}
	if d := Evaluate(in); d.Accept() || !strings.Contains(d.Reason, "MAX_PER") {
		t.Fatalf("MAX_PER not enforced: %s %s", opTypes(d), d.Reason)
	}
	in = input(tg, tasks, offer(2, withAttr("rack", "b")))
	in.AgentAttrs = map[string]map[string]string{"M-S1": {"rack": "a"}}
	if d := Evaluate(in); opTypes(d) != "RESERVE,CREATE,LAUNCH" {
		t.Fatalf("rack b refused: %s", d.Reason)
	}
}

func TestClientsWaitForServersThenFillEveryOtherAgent(t *testing.T) {
	tg := target()
	tasks := state.Tasks{"consul-server-0": running("consul-server-0", 1, &state.Reservation{ID: "r0", Confirmed: true})}
	// Two servers still unplaced: agent 4 gets a server, not a client.
	d := Evaluate(input(tg, tasks, offer(4)))
	if len(d.Records) != 1 || d.Records[0].Name != "consul-server-1" {
		t.Fatalf("records %+v (%s)", d.Records, d.Reason)
	}
	all := state.Tasks{
		"consul-server-0": running("consul-server-0", 1, &state.Reservation{ID: "r0", Confirmed: true}),
		"consul-server-1": running("consul-server-1", 2, &state.Reservation{ID: "r1", Confirmed: true}),
		"consul-server-2": running("consul-server-2", 3, &state.Reservation{ID: "r2", Confirmed: true}),
	}
	d = Evaluate(input(tg, all, offer(4)))
	if opTypes(d) != "LAUNCH" || d.Records[0].Name != "consul-client-m-s4" {
		t.Fatalf("ops %s records %+v (%s)", opTypes(d), d.Records, d.Reason)
	}
	ti := launchedTask(t, d)
	for _, r := range ti.Resources {
		if reservationRole(r) != "" {
			t.Fatalf("client uses reserved %s", r.Name)
		}
		if r.Name == "ports" && describePorts(r.Ranges.Range) != "8301-8301,8501-8501,8503-8503,8600-8600" {
			t.Fatalf("client ports %s", describePorts(r.Ranges.Range))
		}
	}
	spec, _ := taskspec.Decode(ti.Data)
	if spec.Role != taskspec.RoleClient || spec.BootstrapExpect != 0 || len(spec.JoinAddrs) != 3 {
		t.Fatalf("client spec %+v", spec)
	}
	// Clients on public agents when allowed.
	tgp := target(func(c *config.Config) { c.ClientsOnPublic = true })
	if d := Evaluate(input(tgp, all, offer(5, withAttr("public_ip", "true")))); opTypes(d) != "LAUNCH" {
		t.Fatalf("public client: %s", d.Reason)
	}
}

// reservedOffer is what Mesos offers back after RESERVE + CREATE for a server
// whose task ended: the reserved cpus/mem/ports and the volume.
func reservedOffer(n int, task, resID, persistence string, withVol bool) mesos.Offer {
	tg := target()
	rv := func(r mesos.Resource) mesos.Resource {
		return reserve(r, tg.Role, tg.Principal, tg.ServiceName, task, resID)
	}
	disk := rv(scalar("disk", 1024, tg.Role))
	if withVol {
		disk = withVolume(disk, persistence, tg.Principal)
	}
	return offer(n, withScalar("cpus", 3.5), withResources(
		rv(scalar("cpus", 0.5, tg.Role)), rv(scalar("mem", 512, tg.Role)), rv(portsResource([]int{8300, 8301, 8302, 8501, 8503, 8600}, tg.Role)), disk))
}

func TestRelaunchUsesTheSameReservationAndVolume(t *testing.T) {
	tg := target()
	res := &state.Reservation{ID: "r0", PersistenceID: "consul-server-0-p", Confirmed: true}
	failed := running("consul-server-0", 1, res)
	failed.State, failed.Reason, failed.Failures = "TASK_FAILED", "REASON_EXECUTOR_TERMINATED", 1
	tasks := state.Tasks{"consul-server-0": failed,
		"consul-server-1": running("consul-server-1", 2, &state.Reservation{ID: "r1", Confirmed: true}),
		"consul-server-2": running("consul-server-2", 3, &state.Reservation{ID: "r2", Confirmed: true}),
	}

	d := Evaluate(input(tg, tasks, reservedOffer(1, "consul-server-0", "r0", "consul-server-0-p", true)))
	if opTypes(d) != "LAUNCH" {
		t.Fatalf("ops %s: %s", opTypes(d), d.Reason)
	}
	ti := launchedTask(t, d)
	if ti.TaskID.Value == failed.TaskID {
		t.Fatal("relaunch reused the task ID")
	}
	vol := false
	for _, r := range ti.Resources {
		if reservationLabels(r)[state.LabelReservation] != "r0" {
			t.Fatalf("relaunch uses %s outside its reservation", r.Name)
		}
		if persistenceID(r) == "consul-server-0-p" {
			vol = true
		}
	}
	if !vol {
		t.Fatal("relaunch without its volume")
	}
	if rec := d.Records[0]; rec.AgentID != "M-S1" || rec.Reservation.ID != "r0" || rec.State != "TASK_STAGING" {
		t.Fatalf("record %+v", rec)
	}

	// The disk is reserved but the volume is gone: CREATE it again, then LAUNCH.
	d = Evaluate(input(tg, tasks, reservedOffer(1, "consul-server-0", "r0", "consul-server-0-p", false)))
	if opTypes(d) != "CREATE,LAUNCH" {
		t.Fatalf("ops %s: %s", opTypes(d), d.Reason)
	}

	// Another agent's offer is not used for this server (a client goes there).
	d = Evaluate(input(tg, tasks, offer(4)))
	if len(d.Records) != 1 || d.Records[0].Name != "consul-client-m-s4" {
		t.Fatalf("offer of agent 4: %+v %s", d.Records, d.Reason)
	}

	// An offer from its agent without the reservation: wait (it is confirmed).
	d = Evaluate(input(tg, tasks, offer(1)))
	if d.Accept() || !strings.Contains(d.Waiting["consul-server-0"], "waiting for its reservation r0") || d.Refuse != ShortRefuse {
		t.Fatalf("decision %s %q %v", opTypes(d), d.Waiting, d.Refuse)
	}
}

func TestUnconfirmedReservationIsMadeAgain(t *testing.T) {
	// The record was written, then the scheduler died before the ACCEPT:
	// reconciliation said TASK_UNKNOWN, and the agent offers no reservation.
	tg := target()
	rec := running("consul-server-0", 1, &state.Reservation{ID: "r0", PersistenceID: "consul-server-0-p"})
	rec.State = "TASK_UNKNOWN"
	d := Evaluate(input(tg, state.Tasks{"consul-server-0": rec}, offer(1)))
	if opTypes(d) != "RESERVE,CREATE,LAUNCH" {
		t.Fatalf("ops %s: %s", opTypes(d), d.Reason)
	}
	if r := d.Records[0].Reservation; r.ID != "r0" || r.PersistenceID != "consul-server-0-p" {
		t.Fatalf("reservation changed: %+v", r)
	}
	if got := reservationLabels(d.Operations[0].Reserve.Resources[0])[state.LabelReservation]; got != "r0" {
		t.Fatalf("label %q", got)
	}
}

func TestUnexplainedReservationsAreDestroyed(t *testing.T) {
	tg := target()
	all := state.Tasks{
		"consul-server-0": running("consul-server-0", 1, &state.Reservation{ID: "r0", Confirmed: true}),
		"consul-server-1": running("consul-server-1", 2, &state.Reservation{ID: "r1", Confirmed: true}),
		"consul-server-2": running("consul-server-2", 3, &state.Reservation{ID: "r2", Confirmed: true}),
	}
	// Agent 4 offers a leftover reservation of an old consul-server-1.
	o := reservedOffer(4, "consul-server-1", "old", "consul-server-1-old", true)
	d := Evaluate(input(tg, all, o))
	if got := opTypes(d); got != "DESTROY,UNRESERVE,LAUNCH" {
		t.Fatalf("ops %s: %s", got, d.Reason)
	}
	if persistenceID(d.Operations[0].Destroy.Volumes[0]) != "consul-server-1-old" {
		t.Fatal("destroyed the wrong volume")
	}
	for _, r := range d.Operations[1].Unreserve.Resources {
		if persistenceID(r) != "" {
			t.Fatal("UNRESERVE of a volume")
		}
	}
	if len(d.Cleanup) != 1 || !strings.Contains(d.Reason, "left over by a replacement") {
		t.Fatalf("cleanup %v reason %q", d.Cleanup, d.Reason)
	}
	// A reservation a record explains is kept.
	o = reservedOffer(1, "consul-server-0", "r0", "p", true)
	d = Evaluate(input(tg, all, o))
	if d.Accept() {
		t.Fatalf("touched an explained reservation: %s", opTypes(d))
	}
}

func TestBlockedAndBackoff(t *testing.T) {
	tg := target()
	rec := running("consul-server-0", 1, &state.Reservation{ID: "r0", PersistenceID: "p", Confirmed: true})
	rec.State, rec.Failures, rec.UpdatedAt = "TASK_FAILED", 4, now.Add(-time.Second)
	in := input(tg, state.Tasks{"consul-server-0": rec}, reservedOffer(1, "consul-server-0", "r0", "p", true))
	if d := Evaluate(in); d.Accept() || !strings.Contains(d.Waiting["consul-server-0"], "delayed") {
		t.Fatalf("backoff ignored: %s %v", opTypes(d), d.Waiting)
	}
	in.Now = now.Add(time.Minute)
	if d := Evaluate(in); opTypes(d) != "LAUNCH" {
		t.Fatalf("after backoff: %s", d.Reason)
	}
	in.Blocked = map[string]string{"consul-server-0": "waiting for reconciliation"}
	if d := Evaluate(in); d.Accept() || d.Waiting["consul-server-0"] != "waiting for reconciliation" {
		t.Fatalf("blocked ignored: %s", d.Reason)
	}
}

func TestMountDisk(t *testing.T) {
	tg := target(func(c *config.Config) { c.ServerDiskType = "MOUNT" })
	mount := scalar("disk", 4096, tg.Role)
	src := mesos.Resource_DiskInfo_Source_MOUNT
	mount.Disk = &mesos.Resource_DiskInfo{Source: &mesos.Resource_DiskInfo_Source{Type: src, Mount: &mesos.Resource_DiskInfo_Source_Mount{Root: strPtr("/mnt/d1")}}}
	d := Evaluate(input(tg, state.Tasks{}, offer(1)))
	if d.Accept() || !strings.Contains(d.Reason, "no MOUNT disk") {
		t.Fatalf("%s %s", opTypes(d), d.Reason)
	}
	d = Evaluate(input(tg, state.Tasks{}, offer(1, withResources(mount))))
	if opTypes(d) != "RESERVE,CREATE,LAUNCH" {
		t.Fatalf("%s", d.Reason)
	}
	vol := d.Operations[1].Create.Volumes[0]
	if !isMountDisk(vol) || vol.GetScalar().GetValue() != 4096 {
		t.Fatalf("mount volume %+v", vol)
	}
}

func TestLegacyReservationFormatIsRecognised(t *testing.T) {
	// A master talking to a framework without RESERVATION_REFINEMENT uses
	// role + reservation{principal, labels}.
	tg := target()
	legacy := func(r mesos.Resource) mesos.Resource {
		role := tg.Role
		r.Role = &role
		r.Reservation = &mesos.Resource_ReservationInfo{Principal: strPtr(tg.Principal), Labels: &mesos.Labels{Labels: []mesos.Label{
			{Key: state.LabelTask, Value: strPtr("consul-server-0")}, {Key: state.LabelReservation, Value: strPtr("r0")}}}}
		return r
	}
	o := offer(1, withResources(legacy(scalar("cpus", 0.5, tg.Role)), legacy(scalar("mem", 512, tg.Role)),
		legacy(portsResource([]int{8300, 8301, 8302, 8501, 8503, 8600}, tg.Role)), withVolume(legacy(scalar("disk", 1024, tg.Role)), "p", tg.Principal)))
	g := ourGroups(o, tg.Role)
	if len(g["r0"].resources) != 4 {
		t.Fatalf("groups %+v", g)
	}
}

func TestServerWithoutAFreeAgentEvictsOneClient(t *testing.T) {
	tg := target()
	cl := func(agent int) state.Task {
		c := running(state.ClientName(fmt.Sprintf("M-S%d", agent)), agent, nil)
		return c
	}
	tasks := state.Tasks{
		"consul-server-0":    running("consul-server-0", 1, &state.Reservation{ID: "r0", Confirmed: true}),
		"consul-server-1":    running("consul-server-1", 2, &state.Reservation{ID: "r1", Confirmed: true}),
		"consul-server-2":    {Name: "consul-server-2", Role: taskspec.RoleServer, Index: 2, Replacement: true, UpdatedAt: now.Add(-time.Minute)},
		"consul-client-m-s4": cl(4),
		"consul-client-m-s5": cl(5),
	}
	in := input(tg, tasks, offer(4))
	in.EvictAfter = 30 * time.Second
	d := Evaluate(in)
	if d.Accept() || fmt.Sprint(d.Evict) != "[consul-client-m-s4]" || d.Refuse != 0 {
		t.Fatalf("evict %v refuse %v: %s", d.Evict, d.Refuse, d.Reason)
	}
	// Only one eviction at a time.
	stopping := tasks["consul-client-m-s4"]
	stopping.Goal = state.GoalStop
	tasks["consul-client-m-s4"] = stopping
	in = input(tg, tasks, offer(5))
	in.EvictAfter = 30 * time.Second
	if d := Evaluate(in); len(d.Evict) != 0 {
		t.Fatalf("second eviction %v", d.Evict)
	}
	// Not before EvictAfter, but the agent is asked back soon.
	tasks = state.Tasks{
		"consul-server-0":    running("consul-server-0", 1, &state.Reservation{ID: "r0", Confirmed: true}),
		"consul-server-1":    running("consul-server-1", 2, &state.Reservation{ID: "r1", Confirmed: true}),
		"consul-server-2":    {Name: "consul-server-2", Role: taskspec.RoleServer, Index: 2, Replacement: true, UpdatedAt: now.Add(-time.Second)},
		"consul-client-m-s4": cl(4),
	}
	in = input(tg, tasks, offer(4))
	in.EvictAfter = 30 * time.Second
	d = Evaluate(in)
	if len(d.Evict) != 0 || d.Refuse != ShortRefuse || !strings.Contains(d.Waiting["consul-server-2"], "no free agent") {
		t.Fatalf("early eviction %v refuse %v waiting %v", d.Evict, d.Refuse, d.Waiting)
	}
	// A free agent is used directly.
	if d := Evaluate(input(tg, tasks, offer(6))); len(d.Records) != 1 || d.Records[0].Name != "consul-server-2" {
		t.Fatalf("free agent not used: %s", d.Reason)
	}
}

func TestUninstallDestroysEveryReservationAndLaunchesNothing(t *testing.T) {
	tg := target(func(c *config.Config) { c.Uninstall = true })
	rec := running("consul-server-0", 1, &state.Reservation{ID: "r0", PersistenceID: "p", Confirmed: true})
	rec.State = "TASK_KILLED"
	tasks := state.Tasks{"consul-server-0": rec}
	d := Evaluate(input(tg, tasks, reservedOffer(1, "consul-server-0", "r0", "p", true)))
	if opTypes(d) != "DESTROY,UNRESERVE" || fmt.Sprint(d.Released) != "[consul-server-0]" || d.Refuse != LongRefuse {
		t.Fatalf("ops %s released %v refuse %v: %s", opTypes(d), d.Released, d.Refuse, d.Reason)
	}
	// An offer without the reservation releases nothing (it may predate the kill).
	d = Evaluate(input(tg, tasks, offer(1)))
	if d.Accept() || len(d.Released) != 0 {
		t.Fatalf("ops %s released %v", opTypes(d), d.Released)
	}
	// A free agent gets no task.
	if d := Evaluate(input(tg, state.Tasks{}, offer(5))); d.Accept() {
		t.Fatalf("launched during uninstall: %s", opTypes(d))
	}
}

func TestServersLaunchedTogetherKnowEachOther(t *testing.T) {
	// Servers go TASK_RUNNING only after joining, and Mesos-DNS lists only
	// running tasks: a server must be given the addresses of servers that
	// are merely launched.
	tg := target()
	staging := running("consul-server-0", 1, &state.Reservation{ID: "r0", Confirmed: false})
	staging.State = "TASK_STAGING"
	failed := running("consul-server-2", 3, &state.Reservation{ID: "r2", Confirmed: true})
	failed.State = "TASK_FAILED"
	tasks := state.Tasks{"consul-server-0": staging, "consul-server-2": failed}
	spec, err := taskspec.Decode(launchedTask(t, Evaluate(input(tg, tasks, offer(2)))).Data)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(spec.JoinAddrs) != "[127.2.0.11:8301]" {
		t.Fatalf("join addrs %v: want the staging server and not the failed one", spec.JoinAddrs)
	}
}

// publicOffer is a DC/OS public agent's offer: everything statically
// reserved for slave_public, allocated to slave_public.
func publicOffer(n int) mesos.Offer {
	o := offer(n, withAttr("public_ip", "true"))
	static := mesos.Resource_ReservationInfo_STATIC
	for i := range o.Resources {
		o.Resources[i].AllocationInfo = alloc(PublicRole)
		o.Resources[i].Reservations = []mesos.Resource_ReservationInfo{{Type: &static, Role: strPtr(PublicRole)}}
	}
	o.AllocationInfo = alloc(PublicRole)
	return o
}

func TestClientsOnPublicAgentsUseTheirStaticReservation(t *testing.T) {
	all := state.Tasks{
		"consul-server-0": running("consul-server-0", 1, &state.Reservation{ID: "r0", Confirmed: true}),
		"consul-server-1": running("consul-server-1", 2, &state.Reservation{ID: "r1", Confirmed: true}),
		"consul-server-2": running("consul-server-2", 3, &state.Reservation{ID: "r2", Confirmed: true}),
	}
	if d := Evaluate(input(target(), all, publicOffer(7))); d.Accept() || !strings.Contains(d.Reason, `role "slave_public"`) {
		t.Fatalf("public offer used without the option: %s", d.Reason)
	}
	tg := target(func(c *config.Config) { c.ClientsOnPublic = true })
	d := Evaluate(input(tg, all, publicOffer(7)))
	if opTypes(d) != "LAUNCH" {
		t.Fatalf("%s", d.Reason)
	}
	for _, r := range launchedTask(t, d).Resources {
		if reservationRole(r) != PublicRole || r.AllocationInfo.GetRole() != PublicRole || isDynamic(r) {
			t.Fatalf("resource %s not taken from the slave_public reservation: %+v", r.Name, r)
		}
	}
	// Servers never go there.
	if d := Evaluate(input(tg, state.Tasks{}, publicOffer(7))); d.Accept() {
		t.Fatalf("server on a public agent")
	}
}

func withZone(region, zone string) offerOpt {
	return func(o *mesos.Offer) {
		o.Domain = &mesos.DomainInfo{FaultDomain: &mesos.DomainInfo_FaultDomain{
			Region: mesos.DomainInfo_FaultDomain_RegionInfo{Name: region},
			Zone:   mesos.DomainInfo_FaultDomain_ZoneInfo{Name: zone},
		}}
	}
}

// @zone comes from the offer's fault domain, is recorded on the placed
// server, and GROUP_BY spreads the servers over the zones.
func TestPlacementGroupByZoneFromTheFaultDomain(t *testing.T) {
	tg := target(func(c *config.Config) { c.ServerPlacement = `[["@zone","GROUP_BY","3"]]` })
	d := Evaluate(input(tg, state.Tasks{}, offer(1, withZone("eu", "eu-1a"))))
	if len(d.Records) != 1 || d.Records[0].AgentValues["@zone"] != "eu-1a" || d.Records[0].AgentValues["@region"] != "eu" {
		t.Fatalf("first server: %+v (%s)", d.Records, d.Reason)
	}
	s0 := d.Records[0]
	tasks := state.Tasks{s0.Name: s0}
	d = Evaluate(input(tg, tasks, offer(2, withZone("eu", "eu-1a"))))
	if d.Accept() || !strings.Contains(d.Reason, "[@zone GROUP_BY 3]") {
		t.Fatalf("second server in the same zone: %s %s", opTypes(d), d.Reason)
	}
	if !strings.Contains(d.Waiting["consul-server-1"], "@zone") {
		t.Fatalf("the plan does not say why: %v", d.Waiting)
	}
	d = Evaluate(input(tg, tasks, offer(3, withZone("eu", "eu-1b"))))
	if len(d.Records) != 1 || d.Records[0].AgentValues["@zone"] != "eu-1b" {
		t.Fatalf("second server in another zone: %s %s", opTypes(d), d.Reason)
	}
	// An agent without a fault domain has no @zone: refused, with why.
	d = Evaluate(input(tg, tasks, offer(4)))
	if d.Accept() || !strings.Contains(d.Reason, "has no @zone") {
		t.Fatalf("agent without a domain: %s %s", opTypes(d), d.Reason)
	}
}

// A stored target with a rule this version refuses (an older scheduler
// accepted it) places no server and says why, instead of failing silently.
func TestPlacementStoredInvalidRuleSaysWhy(t *testing.T) {
	tg := target()
	tg.Placement = [][]string{{"hostname", "LIKE", "("}}
	d := Evaluate(input(tg, state.Tasks{}, offer(1)))
	if d.Accept() || !strings.Contains(d.Reason, "stored placement constraints are invalid") {
		t.Fatalf("%s %s", opTypes(d), d.Reason)
	}
}

// TestRelaunchReservesThePortTLSAdds: a server placed with TLS off has no
// HTTPS port in its reservation; relaunched in the first phase of turning
// TLS on, the port is reserved on the same reservation from the offer and
// the task gets it (with TLS, plain HTTP kept, the accept phase). Once
// reserved (offered as a resource of its own) it is used as it is.
func TestRelaunchReservesThePortTLSAdds(t *testing.T) {
	tg := target(func(c *config.Config) { c.TLS, c.Ports.HTTPS = true, config.DefaultHTTPSPort })
	tg.TLSPhase, tg.Ports.HTTP = taskspec.TLSAccept, 8500
	tg = tg.WithConfigID()
	res := &state.Reservation{ID: "r0", PersistenceID: "consul-server-0-p", Confirmed: true}
	restarting := running("consul-server-0", 1, res)
	restarting.State, restarting.Goal = "TASK_KILLED", state.GoalRestart
	// Placed with TLS off: no HTTPS or gRPC TLS port in its reservation.
	restarting.Ports = target(func(c *config.Config) { c.TLS, c.Ports.HTTPS, c.Ports.GRPCTLS = false, -1, -1 }).Ports
	tasks := state.Tasks{"consul-server-0": restarting,
		"consul-server-1": running("consul-server-1", 2, &state.Reservation{ID: "r1", Confirmed: true}),
		"consul-server-2": running("consul-server-2", 3, &state.Reservation{ID: "r2", Confirmed: true}),
	}
	// Its reservation, placed with TLS off: plain HTTP, no HTTPS or gRPC TLS.
	placedPlain := func() mesos.Offer {
		o := reservedOffer(1, "consul-server-0", "r0", "consul-server-0-p", true)
		for i, r := range o.Resources {
			if r.Name == "ports" && reservationLabels(r)[state.LabelReservation] == "r0" {
				o.Resources[i] = reserve(portsResource([]int{8300, 8301, 8302, 8500, 8600}, tg.Role), tg.Role, tg.Principal, tg.ServiceName, "consul-server-0", "r0")
			}
		}
		return o
	}
	d := Evaluate(input(tg, tasks, placedPlain()))
	if opTypes(d) != "RESERVE,LAUNCH" {
		t.Fatalf("ops %s: %s", opTypes(d), d.Reason)
	}
	r := d.Operations[0].Reserve.Resources[0]
	if r.Name != "ports" || describePorts(r.Ranges.Range) != "8501-8501,8503-8503" || reservationLabels(r)[state.LabelReservation] != "r0" {
		t.Fatalf("reserved %s %v labels %v", r.Name, r.Ranges, reservationLabels(r))
	}
	spec, err := taskspec.Decode(launchedTask(t, d).Data)
	if err != nil {
		t.Fatal(err)
	}
	if !spec.TLS || spec.TLSRollout != taskspec.TLSAccept || spec.Ports.HTTPS != 8501 || spec.Ports.HTTP != 8500 {
		t.Fatalf("spec tls %v rollout %q ports %+v", spec.TLS, spec.TLSRollout, spec.Ports)
	}

	withHTTPS := placedPlain()
	withHTTPS.Resources = append(withHTTPS.Resources,
		reserve(portsResource([]int{8501, 8503}, tg.Role), tg.Role, tg.Principal, tg.ServiceName, "consul-server-0", "r0"))
	d = Evaluate(input(tg, tasks, withHTTPS))
	if opTypes(d) != "LAUNCH" {
		t.Fatalf("ops %s: %s", opTypes(d), d.Reason)
	}
	if spec, _ := taskspec.Decode(launchedTask(t, d).Data); spec.Ports.HTTPS != 8501 {
		t.Fatalf("ports %+v", spec.Ports)
	}
}

// TestLaunchInACLRolloutPhases: while ACLs are being turned on, a server
// is launched in the stored phase (phase 1: ACLs, default allow, no agent
// token) and a client without ACLs until phase 2.
func TestLaunchInACLRolloutPhases(t *testing.T) {
	for _, c := range []struct {
		phase         string
		serverACL     bool
		serverRollout string
		clientACL     bool
		clientRollout string
	}{
		{taskspec.ACLOpen, true, taskspec.ACLOpen, false, ""},
		{taskspec.ACLAllow, true, taskspec.ACLAllow, true, taskspec.ACLAllow},
		{state.ACLRequired, true, "", true, ""},
	} {
		tg := target(func(c *config.Config) { c.ACL = true })
		tg.ACLPhase = c.phase
		tg = tg.WithConfigID()
		spec, err := taskspec.Decode(launchedTask(t, Evaluate(input(tg, state.Tasks{}, offer(1)))).Data)
		if err != nil {
			t.Fatal(err)
		}
		if spec.Role != taskspec.RoleServer || spec.ACL != c.serverACL || spec.ACLRollout != c.serverRollout || spec.ConfigID != tg.ServerConfigID {
			t.Errorf("%s: server %s ACL %v %q", c.phase, spec.Role, spec.ACL, spec.ACLRollout)
		}
		tasks := state.Tasks{}
		for i := 0; i < 3; i++ {
			s := running(state.ServerName(i), i+1, &state.Reservation{ID: fmt.Sprint("r", i), Confirmed: true})
			s.ConfigID = tg.ServerConfigID
			tasks[s.Name] = s
		}
		spec, err = taskspec.Decode(launchedTask(t, Evaluate(input(tg, tasks, offer(5)))).Data)
		if err != nil {
			t.Fatal(err)
		}
		if spec.Role != taskspec.RoleClient || spec.ACL != c.clientACL || spec.ACLRollout != c.clientRollout || spec.Secrets == nil {
			t.Errorf("%s: client %s ACL %v %q, secrets %v", c.phase, spec.Role, spec.ACL, spec.ACLRollout, spec.Secrets != nil)
		}
	}
}
