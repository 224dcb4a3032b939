package main

import (
	"github.com/spf13/cobra"

	"github.com/dcos-consul/dcos-consul/internal/operator"
)

func init() { subcommands = append(subcommands, newConsulCommand) }

// consulInfo is the one line the DC/OS CLI shows for `dcos consul`.
const consulInfo = operator.Info

// newConsulCommand is `dcos-consul consul ...`, also what the DC/OS CLI runs
// for `dcos consul ...`; the small CLI binary (cmd/dcos-consul-cli) has the
// same command.
func newConsulCommand() *cobra.Command { return operator.Command() }
