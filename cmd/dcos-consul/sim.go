package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dcos-consul/dcos-consul/internal/logging"
	"github.com/dcos-consul/dcos-consul/internal/mesossim"
)

func init() { subcommands = append(subcommands, newSimCommand) }

func newSimCommand() *cobra.Command {
	var (
		o        mesossim.Options
		logLevel string
		fresh    bool
	)
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run a simulated Mesos cluster (master and agents) on loopback",
		Long: `sim starts the simulated Mesos master (v1 scheduler API, /master/state)
and agents (v1 executor API, real executor processes) on loopback, prints
their addresses and runs until Ctrl-C. Any Mesos client, curl or a real
Mesos-DNS can be pointed at it. Faults are injected over HTTP on the master
(/sim/v1/..., see docs/simulator.md). Starting again with the same
--work-dir resumes the same agents, reservations and volumes.`,
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
			c, err := mesossim.Start(ctx, o)
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Mesos master  %s  (scheduler API %s/api/v1/scheduler, state %s/master/state)\n",
				c.MasterURL(), c.MasterURL(), c.MasterURL())
			for _, a := range c.Agents() {
				fmt.Fprintf(out, "Mesos agent   %s  %s:%d\n", a.ID, a.IP, a.Port)
			}
			fmt.Fprintf(out, "Faults: curl -X POST %s/sim/v1/master/restart (see docs/simulator.md). Ctrl-C stops.\n", c.MasterURL())
			<-ctx.Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Agents, "agents", 3, "number of agents")
	f.StringVar(&o.MasterIP, "master-ip", "127.0.0.1", "master address")
	f.IntVar(&o.MasterPort, "master-port", 5050, "master port (0: any free port)")
	f.StringVar(&o.FirstAgentIP, "first-agent-ip", "127.0.0.2", "address of the first agent; the others take the next ones")
	f.IntVar(&o.AgentPort, "agent-port", 5051, "agent port (0: a free port per agent)")
	f.StringVar(&o.AgentResources, "resources", mesossim.DefaultAgentResources, "resources of each agent (Mesos syntax)")
	f.StringVar(&o.AgentAttributes, "attributes", "", "attributes of each agent (Mesos syntax, e.g. rack:r1)")
	f.StringVar(&o.WorkDir, "work-dir", ".work/sim", "sandboxes, volumes and the master's registry; reused on the next start")
	f.BoolVar(&fresh, "fresh", false, "remove the work dir first: a new cluster")
	f.BoolVar(&o.InProcess, "in-process", false, "in-process executors that only report statuses (scale tests)")
	f.DurationVar(&o.AllocationInterval, "allocation-interval", time.Second, "offer cycle interval")
	f.DurationVar(&o.HeartbeatInterval, "heartbeat-interval", 15*time.Second, "scheduler HEARTBEAT interval")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
