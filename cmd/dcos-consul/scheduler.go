package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/logging"
	"github.com/dcos-consul/dcos-consul/scheduler"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

func init() { subcommands = append(subcommands, newSchedulerCommand) }

func newSchedulerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "scheduler",
		Short: "Run the Mesos framework scheduler (configured by environment variables)",
		Long: `Run the dcos-consul Mesos framework scheduler. Marathon starts it with the
environment the package template sets (SERVICE_NAME, FRAMEWORK_ROLE, MESOS_MASTER,
EXECUTOR_URI, SERVER_COUNT, ...). It places Consul servers and clients on the
agents, keeps its state in ZooKeeper (STATE_ZK) or a file store (STATE_DIR), and
serves its API on PORT_API (or PORT0) and the executors' routes over TLS on
PORT_EXECUTOR (or PORT1; unset: any free port).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.FromEnviron()
			if err != nil {
				return err
			}
			log, err := logging.New(cfg.LogLevel)
			if err != nil {
				return err
			}
			log = log.Named("scheduler")
			defer log.Sync() //nolint:errcheck
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			if err := scheduler.Run(ctx, cfg, log); err != nil {
				log.Error("scheduler stopped with an error", zap.Error(err))
				return err
			}
			return nil
		},
	}
}
