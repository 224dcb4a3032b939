package mesosdns

import (
	"net"
	"strconv"
)

// Options shape the records built from a state document.
type Options struct {
	// Domain is the zone, default "mesos".
	Domain string
	// IPSources is the order of task IP sources; nil means DCOSIPSources.
	IPSources []string
	// Label is the label rule; nil means RFC1123.
	Label LabelFunc
	// Masters are the configured masters (host:port), for master.<domain>
	// and masterN.<domain>; the leader is always included.
	Masters []string
	// NS is the SOA mname, default "ns1.<domain>."; it gets A/AAAA records
	// for ListenerIPs.
	NS          string
	ListenerIPs []net.IP
	// Resolve turns a host name that is not an IP (a framework's hostname,
	// an agent pid host) into IPs. nil: such hosts get no records.
	Resolve func(host string) []net.IP
}

// SRV is the data of one SRV record.
type SRV struct {
	Target string // FQDN with trailing dot
	Port   uint16
}

// Records is the record set Mesos-DNS serves for one state document. Names
// are lower-case FQDNs with a trailing dot; values keep insertion order and
// hold no duplicates.
type Records struct {
	Domain string // without dots
	NS     string // FQDN
	A      map[string][]net.IP
	AAAA   map[string][]net.IP
	SRV    map[string][]SRV
}

// Known reports whether name has any A, AAAA or SRV record.
func (r *Records) Known(name string) bool {
	return len(r.A[name])+len(r.AAAA[name])+len(r.SRV[name]) > 0
}

// Names is the number of names with records.
func (r *Records) Names() int {
	seen := map[string]bool{}
	for n := range r.A {
		seen[n] = true
	}
	for n := range r.AAAA {
		seen[n] = true
	}
	for n := range r.SRV {
		seen[n] = true
	}
	return len(seen)
}

func (r *Records) addIP(name string, ip net.IP) {
	m := r.AAAA
	if v4 := ip.To4(); v4 != nil {
		ip, m = v4, r.A
	}
	for _, have := range m[name] {
		if have.Equal(ip) {
			return
		}
	}
	m[name] = append(m[name], ip)
}

func (r *Records) addSRV(name, target string, port int) {
	s := SRV{Target: target, Port: uint16(port)}
	for _, have := range r.SRV[name] {
		if have == s {
			return
		}
	}
	r.SRV[name] = append(r.SRV[name], s)
}

// Generate builds the records of st as Mesos-DNS's RecordGenerator.InsertState
// does: framework, agent, listener, master and task records. Only tasks in
// TASK_RUNNING on a listed agent get records.
func Generate(st *State, o Options) *Records {
	domain := NormalizeDomain(o.Domain)
	spec := o.Label
	if spec == nil {
		spec = RFC1123
	}
	srcs := o.IPSources
	if srcs == nil {
		srcs = DCOSIPSources
	}
	ns := o.NS
	if ns == "" {
		ns = "ns1." + domain + "."
	}
	resolve := func(host string) []net.IP {
		if ip := net.ParseIP(host); ip != nil {
			return []net.IP{ip}
		}
		if o.Resolve == nil || host == "" {
			return nil
		}
		return o.Resolve(host)
	}
	r := &Records{
		Domain: domain,
		NS:     ns,
		A:      map[string][]net.IP{},
		AAAA:   map[string][]net.IP{},
		SRV:    map[string][]SRV{},
	}
	tail := "." + domain + "."

	// Frameworks: <framework>.<domain> and _framework._tcp.<framework>.<domain>.
	for _, f := range st.Frameworks {
		host, port := f.HostPort()
		ips := resolve(host)
		if len(ips) == 0 {
			continue
		}
		name := DomainFrag(f.Name, spec) + tail
		for _, ip := range ips {
			r.addIP(name, ip)
		}
		if p, err := strconv.Atoi(port); err == nil && port != "" {
			r.addSRV("_framework._tcp."+name, name, p)
		}
	}

	// Agents: slave.<domain> and _slave._tcp.<domain>.
	agentIPs := map[string][]net.IP{}
	for _, s := range st.Slaves {
		if s.PID == nil {
			agentIPs[s.ID] = nil
			continue
		}
		ips := resolve(s.PID.Host)
		for _, ip := range ips {
			r.addIP("slave"+tail, ip)
		}
		if len(ips) > 0 {
			if p, err := strconv.Atoi(s.PID.Port); err == nil {
				r.addSRV("_slave._tcp"+tail, "slave"+tail, p)
			}
		}
		agentIPs[s.ID] = ips
	}

	// The name server itself (the SOA mname).
	for _, ip := range o.ListenerIPs {
		r.addIP(ns, ip)
	}

	r.masterRecords(domain, o.Masters, st.Leader)

	for _, f := range st.Frameworks {
		fname := DomainFrag(f.Name, spec)
		for _, t := range f.Tasks {
			ips, ok := agentIPs[t.SlaveID]
			if !ok || t.State != "TASK_RUNNING" {
				continue
			}
			hash, tail := TaskIDHash(t.ID), AgentIDTail(t.SlaveID)
			tips := taskIPs(t, ips, srcs)
			if t.HasDiscoveryName() {
				// Mesos-DNS publishes the DiscoveryInfo name twice: raw (a
				// legacy path) and through the label rule.
				r.taskRecords(t, t.Discovery.Name, hash, tail, fname, domain, tips, ips, spec)
				r.taskRecords(t, spec(t.Discovery.Name), hash, tail, fname, domain, tips, ips, spec)
			} else {
				r.taskRecords(t, spec(t.Name), hash, tail, fname, domain, tips, ips, spec)
			}
		}
	}
	return r
}

func (r *Records) masterRecords(domain string, masters []string, leader string) {
	u, err := ParseUPID(leader)
	if err != nil {
		return
	}
	ip := net.ParseIP(u.Host)
	if ip == nil {
		return
	}
	tail := "." + domain + "."
	r.addIP("leader"+tail, ip)
	r.addIP("master"+tail, ip)
	if p, err := strconv.Atoi(u.Port); err == nil {
		r.addSRV("_leader._tcp"+tail, "leader"+tail, p)
		r.addSRV("_leader._udp"+tail, "leader"+tail, p)
	}
	leaderAddr := net.JoinHostPort(u.Host, u.Port)
	idx, addedLeader := 0, false
	seen := map[string]bool{u.Host: true}
	for _, m := range masters {
		h, _, err := net.SplitHostPort(m)
		if err != nil {
			continue
		}
		mip := net.ParseIP(h)
		if mip == nil {
			continue
		}
		if m != leaderAddr {
			if seen[mip.String()] {
				continue // duplicate master
			}
			seen[mip.String()] = true
			r.addIP("master"+tail, mip)
		} else if addedLeader {
			continue
		}
		r.addIP("master"+strconv.Itoa(idx)+tail, mip)
		idx++
		if m == leaderAddr {
			addedLeader = true
		}
	}
	if !addedLeader {
		r.addIP("master"+strconv.Itoa(idx)+tail, ip)
	}
}

func (r *Records) taskRecords(t Task, taskLabel, hash, agentTail, fname, domain string, taskIPs, agentIPs []net.IP, spec LabelFunc) {
	tail := "." + domain + "."
	canonical := taskLabel + "-" + hash + "-" + agentTail + "." + fname
	arec := taskLabel + "." + fname
	for _, ip := range taskIPs {
		r.addIP(arec+tail, ip)
		r.addIP(canonical+tail, ip)
	}
	for _, ip := range agentIPs {
		r.addIP(arec+".slave"+tail, ip)
		r.addIP(canonical+".slave"+tail, ip)
	}

	// Port SRV records point at the agent-based canonical name; without a
	// DiscoveryInfo name they are also published outside .slave.
	slaveTarget := canonical + ".slave" + tail
	ports, _ := PortList(t.Resources.Ports)
	for _, p := range ports {
		for _, proto := range []string{"tcp", "udp"} {
			r.addSRV("_"+taskLabel+"._"+proto+"."+fname+".slave"+tail, slaveTarget, p)
			if !t.HasDiscoveryName() {
				r.addSRV("_"+taskLabel+"._"+proto+"."+fname+tail, slaveTarget, p)
			}
		}
	}
	if !t.HasDiscoveryName() {
		return
	}
	// DiscoveryInfo ports point at the task-IP canonical name.
	target := canonical + tail
	for _, dp := range t.Discovery.Ports.Ports {
		protos := []string{"tcp", "udp"}
		if p := spec(dp.Protocol); p != "" {
			protos = []string{p}
		}
		pname := spec(dp.Name)
		for _, proto := range protos {
			name := "_" + taskLabel + "._" + proto + "." + fname + tail
			r.addSRV(name, target, dp.Number)
			if pname != "" {
				r.addSRV("_"+pname+"."+name, target, dp.Number)
			}
		}
	}
}
