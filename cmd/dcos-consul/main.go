// Command dcos-consul is HashiCorp Consul as a DC/OS (Apache Mesos) service:
// the scheduler, the executor, the embedded dev cluster and operator commands
// in one binary.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "dcos-consul:", err)
		os.Exit(1)
	}
}
