package main

import (
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// subcommands are added by the files of this package, each in its own init,
// so that every command lives beside the code that registers it.
var subcommands []func() *cobra.Command

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "dcos-consul",
		Short:         "HashiCorp Consul as a DC/OS service",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(cmd *cobra.Command, _ []string) {
			cmd.Println(version)
		},
	})
	for _, sub := range subcommands {
		root.AddCommand(sub())
	}
	return root
}
