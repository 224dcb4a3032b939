package scheduler

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dcos-consul/dcos-consul/scheduler/api"
	"github.com/dcos-consul/dcos-consul/scheduler/plan"
)

type metrics struct {
	registry        *prometheus.Registry
	offers          prometheus.Counter
	declined        prometheus.Counter
	accepted        prometheus.Counter
	launched        *prometheus.CounterVec
	updates         *prometheus.CounterVec
	subscriptions   prometheus.Counter
	subscribed      prometheus.Gauge
	replacements    prometheus.Counter
	leaderTransfers prometheus.Counter
	storeErrors     prometheus.Counter
	storeWrite      prometheus.Histogram
	tasks           *prometheus.GaugeVec
	plans           *prometheus.GaugeVec
	reconciling     prometheus.Gauge
}

var planStatuses = []string{plan.Pending, plan.InProgress, plan.Complete, plan.Error}

func newMetrics(reg *prometheus.Registry) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	ns := "dcos_consul_scheduler"
	m := &metrics{
		registry:        reg,
		offers:          prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "offers_received_total", Help: "Offers received from Mesos."}),
		declined:        prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "offers_declined_total", Help: "Offers declined."}),
		accepted:        prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "offers_accepted_total", Help: "Offers accepted with operations."}),
		launched:        prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "tasks_launched_total", Help: "Tasks launched, by role."}, []string{"role"}),
		updates:         prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "status_updates_total", Help: "Task status updates received, by state."}, []string{"state"}),
		subscriptions:   prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "subscriptions_total", Help: "Successful SUBSCRIBEs."}),
		subscribed:      prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "subscribed", Help: "1 while subscribed to a Mesos master."}),
		replacements:    prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "server_replacements_total", Help: "Servers moved to another agent."}),
		leaderTransfers: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "leader_transfers_total", Help: "Raft leadership transfers asked of Consul before restarting the leader."}),
		storeErrors:     prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "store_errors_total", Help: "Failed state store writes."}),
		storeWrite:      prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "store_write_seconds", Help: "Time to persist a batch of task records.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		tasks:           prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "tasks", Help: "Task records by role and Mesos state (NONE: not launched)."}, []string{"role", "state"}),
		plans:           prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "plan_status", Help: "1 for the current status of each plan."}, []string{"plan", "status"}),
		reconciling:     prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "reconciliation_pending_tasks", Help: "Tasks not yet answered by explicit reconciliation."}),
	}
	reg.MustRegister(m.offers, m.declined, m.accepted, m.launched, m.updates, m.subscriptions, m.subscribed, m.replacements, m.leaderTransfers,
		m.storeErrors, m.storeWrite, m.tasks, m.plans, m.reconciling)
	return m
}

func (m *metrics) observe(v api.View) {
	m.tasks.Reset()
	for _, t := range v.Tasks {
		st := t.State
		if st == "" {
			st = "NONE"
		}
		m.tasks.WithLabelValues(string(t.Role), st).Inc()
	}
	for name, p := range v.Plans {
		for _, s := range planStatuses {
			val := 0.0
			if p.Status == s {
				val = 1
			}
			m.plans.WithLabelValues(name, s).Set(val)
		}
	}
	if v.Subscribed {
		m.subscribed.Set(1)
	} else {
		m.subscribed.Set(0)
	}
}
