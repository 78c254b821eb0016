// Package metrics defines what `opendts serve` exposes at /metrics for
// Prometheus: API requests and their latency, jobs by status and their
// lag (counts from the store's status index and the running migrations'
// latest reports kept in memory: no job is read at a scrape), and rows and
// bytes moved (counted by the engines as they go).
package metrics

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opendts/opendts/internal/jobs"
)

// Metrics holds the collectors; Registry serves them.
type Metrics struct {
	Registry *prometheus.Registry
	// reg registers the collectors: Registry, or Registry adding the
	// node's label to every series in cluster mode.
	reg prometheus.Registerer

	APIRequests *prometheus.CounterVec
	APILatency  *prometheus.HistogramVec
	// RowsCopied, BytesCopied and RowsApplied are counted by the engines,
	// by job.
	RowsCopied  *prometheus.CounterVec
	BytesCopied *prometheus.CounterVec
	RowsApplied *prometheus.CounterVec
	// FencedWrites counts the MySQL-family engine's writes refused by the
	// fence of cluster mode, by job: a node that lost a job it still ran.
	FencedWrites *prometheus.CounterVec

	// known are the actions request metrics are labelled with; set once
	// at start-up, before requests.
	known map[string]bool
}

// New makes the collectors and registers them, with Go and process
// metrics.
func New() *Metrics { return ForNode("") }

// ForNode is New for a node of a cluster: every series carries the label
// node="name", so that the nodes' metrics can be told apart when they are
// scraped into one Prometheus. An empty name adds no label.
func ForNode(name string) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		APIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opendts_api_requests_total",
			Help: "API requests answered, by action and error code (\"\" for success).",
		}, []string{"action", "code"}),
		APILatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "opendts_api_request_duration_seconds",
			Help:    "Time to answer an API request, by action.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}, []string{"action"}),
		RowsCopied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opendts_rows_copied_total",
			Help: "Rows copied by full migrations, by job.",
		}, []string{"job_id"}),
		BytesCopied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opendts_bytes_copied_total",
			Help: "Bytes of row data copied by full migrations, by job.",
		}, []string{"job_id"}),
		RowsApplied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opendts_rows_applied_total",
			Help: "Row changes applied from the source's binlog, by job.",
		}, []string{"job_id"}),
		FencedWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opendts_fenced_writes_total",
			Help: "Target commits and run starts refused because the job's checkpoint holds a newer epoch (another node owns it), by job.",
		}, []string{"job_id"}),
	}
	m.reg = m.Registry
	if name != "" {
		m.reg = prometheus.WrapRegistererWith(prometheus.Labels{"node": name}, m.Registry)
	}
	m.reg.MustRegister(m.APIRequests, m.APILatency, m.RowsCopied, m.BytesCopied, m.RowsApplied, m.FencedWrites,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// KnownActions sets the actions the request metrics name; any other is
// counted as "other". Without it, a client calling made-up actions would
// create a new series (and a histogram) per name: memory it controls.
func (m *Metrics) KnownActions(names []string) {
	known := make(map[string]bool, len(names))
	for _, n := range names {
		known[n] = true
	}
	m.known = known
}

// ObserveRequest records one API request (cloudapi.Config.Observe). Codes
// are the server's own, a fixed set; actions are the client's and are
// bounded by KnownActions.
func (m *Metrics) ObserveRequest(action, code string, elapsed time.Duration) {
	if !m.known[action] {
		action = "other"
	}
	m.APIRequests.WithLabelValues(action, code).Inc()
	m.APILatency.WithLabelValues(action).Observe(elapsed.Seconds())
}

// CopiedRows counts a full copy's progress (mysql.Counters).
func (m *Metrics) CopiedRows(jobID string, rows, bytes int64) {
	m.RowsCopied.WithLabelValues(jobID).Add(float64(rows))
	m.BytesCopied.WithLabelValues(jobID).Add(float64(bytes))
}

// AppliedRows counts row changes applied from the binlog (mysql.Counters).
func (m *Metrics) AppliedRows(jobID string, rows int64) {
	m.RowsApplied.WithLabelValues(jobID).Add(float64(rows))
}

// FencedWrite counts a write refused by the fence of cluster mode
// (mysql.FencedCounter).
func (m *Metrics) FencedWrite(jobID string) {
	m.FencedWrites.WithLabelValues(jobID).Inc()
}

// WatchJobs registers the collector that asks the service for its job
// statistics at each scrape.
func (m *Metrics) WatchJobs(svc *jobs.Service) {
	m.reg.MustRegister(&jobCollector{svc: svc})
}

var (
	jobsDesc = prometheus.NewDesc("opendts_jobs", "Migration jobs by status (the API's numbers).", []string{"status"}, nil)
	lagDesc  = prometheus.NewDesc("opendts_job_lag_seconds", "Seconds the incremental phase is behind the source, by job.", []string{"job_id"}, nil)
	distDesc = prometheus.NewDesc("opendts_job_lag_megabytes", "Binlog not yet applied, in MB, by job.", []string{"job_id"}, nil)
	progDesc = prometheus.NewDesc("opendts_job_progress_percent", "Overall progress, by job; a job that ended in this process keeps its last value for an hour.", []string{"job_id"}, nil)
)

type jobCollector struct{ svc *jobs.Service }

func (c *jobCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobsDesc
	ch <- lagDesc
	ch <- distDesc
	ch <- progDesc
}

func (c *jobCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.svc.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	for id, p := range st.Running {
		if p.HasLag {
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(p.LagSeconds), id)
			ch <- prometheus.MustNewConstMetric(distDesc, prometheus.GaugeValue, float64(p.LagMegabyte), id)
		}
		if p.HasProgress {
			ch <- prometheus.MustNewConstMetric(progDesc, prometheus.GaugeValue, float64(p.Overall), id)
		}
	}
	for _, s := range []jobs.Status{1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12} {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(st.ByStatus[s]), strconv.Itoa(int(s)))
	}
}
