package scale

import (
	"fmt"
	"strings"
	"time"
)

// Markdown renders the result as the table of docs/BENCHMARKS.md.
func (r Result) Markdown() string {
	var b strings.Builder
	d, rc := r.Deploy, r.Reconcile
	who := "scheduler process"
	if d.Usage.Shared {
		who = "scheduler + simulator (one process)"
	}
	row := func(measure, result, target string) {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", measure, result, target)
	}
	mode := r.Mode
	if r.CPUs > 0 {
		mode += fmt.Sprintf(" limited to %g CPU (CFS quota)", r.CPUs)
	}
	fmt.Fprintf(&b, "| measure (%d agents: %d servers + %d clients; scheduler %s) | result | target |\n", r.Agents, r.Servers, r.Agents-r.Servers, mode)
	b.WriteString("| --- | --- | --- |\n")
	row("first offer handled → every agent has a RUNNING task", secs(d.FirstOfferToAllRunning), "≤ 10 s: "+met(d.FirstOfferToAllRunning <= TargetDeploy))
	row("scheduler start → SUBSCRIBED → first offer handled", fmt.Sprintf("%s (SUBSCRIBED → first offer %s)",
		secs(d.StartToAllRunning-d.FirstOfferToAllRunning), secs(d.SubscribeToFirstOffer)), "")
	row("offers handled per second (received ÷ first offer → all RUNNING)", fmt.Sprintf("%.0f/s (%.0f received: %.0f accepted, %.0f declined)",
		d.OffersPerSecond(), d.OffersReceived, d.OffersAccepted, d.OffersDeclined), "")
	row("status updates received until all RUNNING (2 per task unless agents resent unacknowledged ones)", fmt.Sprintf("%.0f (%.2f per task)", d.Updates, d.Updates/float64(r.Agents)), "")
	row("offers evaluated per second while launching (first → last \"offer accepted\" line; the ACCEPTs are sent after each batch is written)", fmt.Sprintf("%.0f/s (%d in %s)", d.AcceptsPerSecond(), d.Accepted, secs(d.FirstToLastAccept)), "")
	row("largest event the scheduler read (an allocation cycle's OFFERS, one event as a real master sends it)", fmt.Sprintf("%.2f MB (%d bytes)", float64(r.LargestEvent)/(1<<20), r.LargestEvent), "")
	row("CPU of the "+who+", start → all RUNNING", cpu(d.Usage), "")
	memTarget := "< 256 MB: " + met(d.Usage.PeakRSS < TargetPeakMem)
	if d.Usage.Shared {
		memTarget = "< 256 MB: not measurable in one process"
	}
	row("peak memory of the "+who+" (VmHWM)", mb(d.Usage.PeakRSS), memTarget)
	row("of which anonymous (peak RssAnon) / Go heap in use (peak), both sampled every 100 ms",
		mb(d.Usage.PeakAnon)+" / "+mb(d.Usage.PeakHeap), "")
	row(fmt.Sprintf("restarted scheduler: SUBSCRIBED → all %d tasks' statuses received", rc.Tasks), secs(rc.SubscribedToReconciled),
		"≤ 10 s: "+met(rc.SubscribedToReconciled <= TargetReconcile))
	row("restarted scheduler: process start → state loaded → SUBSCRIBED → reconciled", fmt.Sprintf("%s → %s → %s",
		secs(rc.StartToLoaded), secs(rc.StartToSubscribed), secs(rc.StartToReconciled)), "")
	row("restarted scheduler: CPU, peak memory, tasks relaunched", fmt.Sprintf("%s, %s, %.0f", cpu(rc.Usage), mb(rc.Usage.PeakRSS), rc.Relaunched), "")
	if r.Mode == "process" {
		row("simulator (master + agents, this process) CPU during the deploy", secs(r.SimulatorCPU), "")
	}
	return b.String()
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func cpu(u Usage) string {
	return fmt.Sprintf("%.2f s (user %.2f + sys %.2f)", u.CPU().Seconds(), u.User.Seconds(), u.System.Seconds())
}

func mb(b uint64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}
