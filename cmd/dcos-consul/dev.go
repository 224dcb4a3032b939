package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dcos-consul/dcos-consul/internal/dev"
	"github.com/dcos-consul/dcos-consul/internal/logging"
)

func init() { subcommands = append(subcommands, newDevCommand) }

func newDevCommand() *cobra.Command {
	var (
		o        dev.Options
		fresh    bool
		logLevel string
		wait     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a real Consul cluster on a simulated Mesos cluster on loopback",
		Long: `dev starts a simulated Mesos master and agents on 127.0.0.x, a Mesos-DNS
compatible DNS server, and the real dcos-consul scheduler, which launches the
real executor (and with it Consul) on the agents. Ctrl-C stops everything.
Starting again with the same --work-dir resumes the same cluster and data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logging.New(logLevel)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			if fresh {
				if err := os.RemoveAll(o.WorkDir); err != nil {
					return fmt.Errorf("removing %s: %w", o.WorkDir, err)
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o.Logger = log
			return dev.Run(ctx, o, cmd.OutOrStdout(), wait)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Agents, "agents", 5, "simulated Mesos agents")
	f.IntVar(&o.Servers, "servers", 3, "Consul servers (1, 3, 5 or 7)")
	f.StringVar(&o.WorkDir, "work-dir", ".work/dev", "state of the simulated cluster, the scheduler and the Consul data; reused on the next start")
	f.BoolVar(&fresh, "fresh", false, "remove the work dir first: a new cluster")
	f.StringVar(&o.MasterIP, "master-ip", "127.0.0.1", "loopback address of the master; agents take the next addresses")
	f.IntVar(&o.MasterPort, "master-port", 5050, "master port")
	f.IntVar(&o.AgentPort, "agent-port", 5051, "agent port")
	f.IntVar(&o.DNSPort, "dns-port", 61053, "Mesos-DNS port on the master address")
	f.IntVar(&o.APIPort, "api-port", 0, "scheduler API port on the master address (0: any free port)")
	f.DurationVar(&o.DNSRefresh, "dns-refresh", 2*time.Second, "Mesos-DNS refresh interval (DC/OS uses 30s)")
	f.StringArrayVar(&o.ExtraEnv, "env", nil, "extra scheduler environment (NAME=value), e.g. --env CONSUL_DATACENTER=dc2")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.DurationVar(&wait, "ready-timeout", 3*time.Minute, "how long to wait for a Consul leader before reporting a problem")
	return cmd
}
