// Package mesosdns holds the naming rules of Mesos-DNS (mesosphere/mesos-dns
// @ e888ef40, records/labels and records/generator.go) and the records it
// builds from a master state document, as pure functions. The production
// scheduler and executor use the names (to know the DNS name of a task);
// the DNS server that serves the records lives in the server subpackage, so
// importing this package pulls in no DNS library.
package mesosdns

import (
	"crypto/sha1" // #nosec G505 -- Mesos-DNS's canonical names are defined over SHA-1
	"strings"
)

// DefaultDomain is Mesos-DNS's default domain (also DC/OS's).
const DefaultDomain = "mesos"

// LabelFunc turns an arbitrary name into one DNS label.
type LabelFunc func(string) string

// RFC1123 is Mesos-DNS's default label rule: lower-case; a-z and 0-9 kept;
// '-', '_' and '.' become '-'; everything else dropped; leading '-' trimmed;
// cut to 63 characters without a trailing '-'.
func RFC1123(name string) string { return label(name, 63, "-", "-") }

// RFC952 is the rule Mesos-DNS applies with EnforceRFC952: as RFC1123 but at
// most 24 characters and never starting with a digit.
func RFC952(name string) string { return label(name, 24, "-0123456789", "-") }

func label(name string, maxlen int, left, right string) string {
	mapped := strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return r - ('A' - 'a')
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r == '-' || r == '.' || r == '_':
			return '-'
		default:
			return -1
		}
	}, name)
	return trimCut(mapped, maxlen, left, right)
}

// trimCut is Mesos-DNS's labels.trimCut: cut at maxlen and, when that leaves
// a trailing separator, refill from what follows the cut (skipping the
// separators there) so that the label keeps as many characters as it can.
func trimCut(lab string, maxlen int, left, right string) string {
	trim := strings.TrimLeft(lab, left)
	size := min(len(trim), maxlen)
	head := strings.TrimRight(trim[:size], right)
	if len(head) == size {
		return head
	}
	tail := strings.TrimLeft(trim[size:], right)
	if len(tail) > 0 {
		return head + tail[:min(len(tail), size-len(head))]
	}
	return head
}

// DomainFrag turns a name that may hold dots into a domain fragment: split
// on '.', each part through label, empty parts dropped, rejoined with '.'.
// Mesos-DNS uses it for framework names: "Prod.Consul_DC1" → "prod.consul-dc1".
func DomainFrag(name string, label LabelFunc) string {
	var parts []string
	for _, p := range strings.Split(name, ".") {
		if l := label(p); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, ".")
}

// TaskLabel is the DNS label Mesos-DNS gives a task name (RFC1123 rule):
// "Consul_Client.web" → "consul-client-web".
func TaskLabel(taskName string) string { return RFC1123(taskName) }

// FrameworkFragment is the domain fragment Mesos-DNS gives a framework name
// (RFC1123 rule, dots kept): "Prod.Consul_DC1" → "prod.consul-dc1".
func FrameworkFragment(frameworkName string) string { return DomainFrag(frameworkName, RFC1123) }

// NormalizeDomain lower-cases a domain and drops leading and trailing dots;
// an empty domain is DefaultDomain.
func NormalizeDomain(domain string) string {
	d := strings.ToLower(strings.Trim(domain, "."))
	if d == "" {
		return DefaultDomain
	}
	return d
}

// TaskHost is the name under which Mesos-DNS publishes a running task,
// <task>.<framework>.<domain> (no trailing dot): with DC/OS's IP sources it
// resolves to the agent's IP. TaskHost("consul-server-0", "consul", "mesos")
// is "consul-server-0.consul.mesos".
func TaskHost(taskName, frameworkName, domain string) string {
	return TaskLabel(taskName) + "." + FrameworkFragment(frameworkName) + "." + NormalizeDomain(domain)
}

// SlaveTaskHost is <task>.<framework>.slave.<domain>, which always resolves
// to the agent's IP.
func SlaveTaskHost(taskName, frameworkName, domain string) string {
	return TaskLabel(taskName) + "." + FrameworkFragment(frameworkName) + ".slave." + NormalizeDomain(domain)
}

// TaskSRV is the SRV name Mesos-DNS gives a task's ports,
// _<task>._<proto>.<framework>.<domain>; proto is "tcp" or "udp".
func TaskSRV(taskName, proto, frameworkName, domain string) string {
	return "_" + TaskLabel(taskName) + "._" + proto + "." + FrameworkFragment(frameworkName) + "." + NormalizeDomain(domain)
}

// SlaveTaskSRV is _<task>._<proto>.<framework>.slave.<domain>.
func SlaveTaskSRV(taskName, proto, frameworkName, domain string) string {
	return "_" + TaskLabel(taskName) + "._" + proto + "." + FrameworkFragment(frameworkName) + ".slave." + NormalizeDomain(domain)
}

// zbase32Alphabet is z-base-32 (Zimmermann), as github.com/tv42/zbase32.
const zbase32Alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769"

// zbase32 encodes b 5 bits at a time, most significant bit first, the last
// group padded with zero bits (tv42/zbase32.EncodeToString).
func zbase32(b []byte) string {
	var sb strings.Builder
	var acc uint32
	bits := 0
	for _, c := range b {
		acc = acc<<8 | uint32(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			sb.WriteByte(zbase32Alphabet[(acc>>uint(bits))&31])
		}
	}
	if bits > 0 {
		sb.WriteByte(zbase32Alphabet[(acc<<uint(5-bits))&31])
	}
	return sb.String()
}

// TaskIDHash is the first 5 characters of zbase32(sha1(task ID)), the H of
// Mesos-DNS's canonical names: TaskIDHash("test") is "iffe9".
func TaskIDHash(taskID string) string {
	sum := sha1.Sum([]byte(taskID)) // #nosec G401 -- naming, not security
	return zbase32(sum[:])[:5]
}

// AgentIDTail is the last '-' field of an agent ID, lower-cased: the S of
// canonical names ("…-S0" → "s0").
func AgentIDTail(agentID string) string {
	fields := strings.Split(agentID, "-")
	return strings.ToLower(fields[len(fields)-1])
}

// CanonicalTaskLabel is <task>-<H>-<S>, the label that is unique per task.
// It can exceed 63 characters when the task name is long (Mesos-DNS does not
// cut it), which makes it unresolvable: keep task names short.
func CanonicalTaskLabel(taskName, taskID, agentID string) string {
	return TaskLabel(taskName) + "-" + TaskIDHash(taskID) + "-" + AgentIDTail(agentID)
}

// CanonicalTaskHost is <task>-<H>-<S>.<framework>.<domain>.
func CanonicalTaskHost(taskName, taskID, agentID, frameworkName, domain string) string {
	return CanonicalTaskLabel(taskName, taskID, agentID) + "." + FrameworkFragment(frameworkName) + "." + NormalizeDomain(domain)
}

// CanonicalSlaveTaskHost is <task>-<H>-<S>.<framework>.slave.<domain>, the
// target of the port SRV records.
func CanonicalSlaveTaskHost(taskName, taskID, agentID, frameworkName, domain string) string {
	return CanonicalTaskLabel(taskName, taskID, agentID) + "." + FrameworkFragment(frameworkName) + ".slave." + NormalizeDomain(domain)
}

// LeaderHost is leader.<domain>, the leading master.
func LeaderHost(domain string) string { return "leader." + NormalizeDomain(domain) }

// MasterHost is master.<domain>, every known master.
func MasterHost(domain string) string { return "master." + NormalizeDomain(domain) }

// SlaveHost is slave.<domain>, every agent.
func SlaveHost(domain string) string { return "slave." + NormalizeDomain(domain) }

// FrameworkHost is <framework>.<domain>, the scheduler's host.
func FrameworkHost(frameworkName, domain string) string {
	return FrameworkFragment(frameworkName) + "." + NormalizeDomain(domain)
}
