package dev

import "testing"

// besideOthers lets t run beside the package's other such tests, after
// every serial test has finished: at most -parallel of them at once
// (GOMAXPROCS by default: 2 on a 2-core machine). Most of a dev cluster
// test's wall time is waiting (Consul agents starting, the scheduler's
// placement, Mesos-DNS refreshes, failover and replacement timeouts), not
// CPU, so two clusters at once roughly halve the package's time.
//
// A test may call it (first thing, before it starts anything) only if:
//   - its clusters run on a loopback range no other test uses (127.x.y.*:
//     every listener of a dev cluster binds its own addresses; see the
//     MasterIP of each test, and startFaultCluster's 127.5.<n>.*);
//   - it sets no environment variable (t.Setenv refuses parallel tests)
//     and no package-level state, and touches no shared service (the
//     ZooKeeper restart test stays serial);
//   - it asserts nothing a busier CPU could break: every wait is an
//     eventually with minutes of slack, and no check measures an outage,
//     a gap or a count of failed writes while servers change or keys and
//     certificates rotate. The tests that judge availability, leadership
//     gaps or failed writes (the availability run, rolling updates, TLS
//     and gossip rollouts, TLS renewal, the security defaults' key
//     rotation) stay serial, alone in the package.
func besideOthers(t *testing.T) {
	t.Helper()
	t.Parallel()
}
