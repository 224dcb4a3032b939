package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/dcos-consul/dcos-consul/executor"
)

func init() { subcommands = append(subcommands, newExecutorCommand) }

func newExecutorCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "executor",
		Short: "Run the custom Mesos executor (started by a Mesos agent, not by hand)",
		Long: `Run the dcos-consul Mesos executor. A Mesos agent starts it for a task the
dcos-consul scheduler launched; it reads the agent's MESOS_* environment, speaks
the v1 executor API and runs the task's Consul agent in-process.
SIGTERM or SIGINT stops it like a SHUTDOWN: the Consul agent leaves gracefully.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := executorLogger()
			defer log.Sync() //nolint:errcheck
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			err := executor.Run(ctx, log)
			if err != nil {
				log.Error("executor ended with an error", zap.Error(err))
			}
			return err
		},
	}
}

// executorLogger writes JSON to stderr (the sandbox's stderr file) unless
// stderr is a terminal.
func executorLogger() *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	encoder := zapcore.NewJSONEncoder(enc)
	if term.IsTerminal(int(os.Stderr.Fd())) {
		enc.EncodeLevel = zapcore.CapitalColorLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	}
	return zap.New(zapcore.NewCore(encoder, zapcore.Lock(os.Stderr), zap.InfoLevel)).Named("executor")
}
