// Command dcos-consul-cli is the DC/OS CLI plugin of the consul package: the
// operator commands only (`dcos consul ...` runs it as `dcos-consul consul
// ...`), without the scheduler, the executor and Consul itself, so that it
// is small and builds for linux, darwin and windows. The package publishes
// it under the name dcos-consul (resource.json's cli.binaries).
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/dcos-consul/dcos-consul/internal/operator"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	root := &cobra.Command{
		Use:           "dcos-consul",
		Short:         "HashiCorp Consul as a DC/OS service: the operator commands",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(operator.Command(), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run:   func(cmd *cobra.Command, _ []string) { cmd.Println(version) },
	})
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "dcos-consul:", err)
		os.Exit(1)
	}
}
