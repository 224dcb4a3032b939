package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/executor"
	"github.com/dcos-consul/dcos-consul/internal/logging"
)

func init() { subcommands = append(subcommands, newExecutorCommand) }

func newExecutorCommand() *cobra.Command {
	var logLevel string
	cmd := &cobra.Command{
		Use:   "executor",
		Short: "Run the custom Mesos executor (started by a Mesos agent, not by hand)",
		Long: `Run the dcos-consul Mesos executor. A Mesos agent starts it for a task the
dcos-consul scheduler launched; it reads the agent's MESOS_* environment, speaks
the v1 executor API and runs the task's Consul agent in-process (its log level
comes from the task spec). SIGTERM or SIGINT stops it like a SHUTDOWN: the
Consul agent leaves gracefully.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logging.New(logLevel)
			if err != nil {
				return err
			}
			log = log.Named("executor")
			defer func() { _ = log.Sync() }()
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			if err := executor.Run(ctx, log); err != nil {
				log.Error("executor ended with an error", zap.Error(err))
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "the executor's own log level (debug, info, warn, error)")
	return cmd
}
