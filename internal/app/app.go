// Package app assembles an opendts server from its configuration: the data
// directory, credentials, master key, job store, instance catalogue,
// engines, job service and the API handler. cmd/opendts parses flags into a
// Config; tests build one directly.
package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opendts/opendts/internal/catalog"
	"github.com/opendts/opendts/internal/cloudapi"
	"github.com/opendts/opendts/internal/dtsapi"
	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/budget"
	"github.com/opendts/opendts/internal/jobs"
	"github.com/opendts/opendts/internal/metrics"
	"github.com/opendts/opendts/internal/secret"
	"github.com/opendts/opendts/internal/store"
)

// Config of a server. Zero values take the defaults noted.
type Config struct {
	// DataDir holds the job store, the generated key and credentials, and
	// the default instance catalogue. Default ./opendts-data.
	DataDir string
	// SecretID and SecretKey, when both set, are the API credentials.
	SecretID  string
	SecretKey string
	// CredentialsFile holds several pairs ("SecretId SecretKey" per line).
	// Default: DataDir/credentials, generated on first start when no other
	// credentials are given.
	CredentialsFile string
	// MasterKey (64 hex digits or base64 of 32 bytes) seals stored
	// passwords; default: DataDir/master.key, generated on first start.
	MasterKey string
	// Regions served; default ap-guangzhou.
	Regions []string
	// InstancesFile is the instance catalogue; default DataDir/instances.json.
	InstancesFile string
	// DefaultRate is the per-second limit per SecretId of actions without a
	// documented one; default 20. Rates overrides single actions.
	DefaultRate float64
	Rates       map[string]float64
	// MaxUnusedJobs caps jobs created and not started; default 1000.
	MaxUnusedJobs int
	// CopyWorkers and ChunkRows tune the full copy (0: the engine's
	// defaults, 4 workers and 50,000 rows per chunk).
	CopyWorkers int
	ChunkRows   int64
	// MaxCopyWorkers bounds the chunks copied at once across every job of
	// the node, shared fairly (internal/engine/budget); 0: unlimited, each
	// job copying with CopyWorkers.
	MaxCopyWorkers int
	// budget is the node's, made from MaxCopyWorkers.
	budget *budget.Budget
	// Engines by family; default the built-in ones.
	Engines engine.Registry
	Logger  *slog.Logger
	// Cluster, when set, runs the server as a node of a cluster on etcd
	// (cluster.go); nil: a single node with its SQLite store.
	Cluster *ClusterConfig
	// Address is where the API listens, as DescribeNodes shows it.
	Address string
}

// jobStore is the store a server keeps its jobs in: SQLite on a single
// node, etcd in cluster mode.
type jobStore interface {
	jobs.Store
	Ping(ctx context.Context) error
	Close() error
}

// App is an assembled server.
type App struct {
	Handler http.Handler
	Jobs    *jobs.Service
	// store is SQLite's, or nil in cluster mode (cluster.store).
	store   *store.Store
	cluster *clusterParts
	// jobStore is whichever of the two the jobs live in.
	jobStore jobStore
	address  string
	started  time.Time
	// Metrics serves /metrics.
	Metrics *prometheus.Registry
	// CredentialsFile is set when the credentials came from a file.
	CredentialsFile string
	// Lag keeps the recent lag of migrating jobs (the opendts extension
	// action DescribeMigrateJobLagHistory).
	Lag     *jobs.LagHistory
	stopLag context.CancelFunc
	logger  *slog.Logger
}

// New assembles a server and resumes the jobs that were active when it last
// stopped.
func New(ctx context.Context, cfg Config) (*App, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "opendts-data"
	}
	if len(cfg.Regions) == 0 {
		cfg.Regions = []string{"ap-guangzhou"}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.InstancesFile == "" {
		cfg.InstancesFile = filepath.Join(cfg.DataDir, "instances.json")
	}
	nodeName := ""
	if cfg.Cluster != nil {
		nodeName = cfg.Cluster.NodeName
	}
	m := metrics.ForNode(nodeName)
	cfg.budget = budget.New(cfg.MaxCopyWorkers)
	if cfg.Engines == nil {
		cfg.Engines = BuiltinEngines(cfg, m)
	}
	log := cfg.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	creds, credFile, err := loadCredentials(cfg, log)
	if err != nil {
		return nil, err
	}
	key, created, err := secret.LoadOrCreateKey(cfg.MasterKey, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("generated the master key that seals stored passwords; back it up with the data directory",
			"path", filepath.Join(cfg.DataDir, secret.KeyFile))
	}
	box, err := secret.New(key)
	if err != nil {
		return nil, err
	}
	a := &App{address: cfg.Address, started: time.Now(), logger: log}
	var st jobStore
	var clusterOf jobs.Cluster
	if cfg.Cluster != nil {
		if a.cluster, err = openCluster(ctx, *cfg.Cluster, box, log); err != nil {
			return nil, err
		}
		st, clusterOf = a.cluster.store, a.cluster.node
	} else {
		if a.store, err = store.Open(filepath.Join(cfg.DataDir, "opendts.db"), box); err != nil {
			return nil, err
		}
		st = a.store
	}
	a.jobStore = st
	cat := catalog.Open(cfg.InstancesFile)
	svc := jobs.New(jobs.Config{
		Store:         st,
		Engines:       cfg.Engines,
		Catalog:       cat,
		Regions:       cfg.Regions,
		Logger:        log,
		MaxUnusedJobs: cfg.MaxUnusedJobs,
		Budget:        cfg.budget,
		Cluster:       clusterOf,
	})
	a.Jobs = svc
	srv := cloudapi.New(cloudapi.Config{
		Service:     dtsapi.Service,
		Version:     dtsapi.Version,
		Regions:     cfg.Regions,
		Credentials: creds,
		DefaultRate: cfg.DefaultRate,
		Logger:      log,
		Observe:     m.ObserveRequest,
	})
	dtsapi.Register(srv, svc, cfg.Regions, cfg.Rates)
	lag := jobs.NewLagHistory(svc)
	dtsapi.RegisterLagHistory(srv, svc, lag)
	dtsapi.RegisterSourceObjects(srv, cat, svc)
	dtsapi.RegisterNodes(srv, a.cluster != nil, a.nodeList)
	m.KnownActions(srv.Actions())
	m.WatchJobs(svc)
	if a.cluster != nil {
		// The node's claim loop starts the work of the jobs it claims,
		// those this node ran before a restart included.
		a.cluster.node.Start(svc)
	} else if err := svc.Resume(ctx); err != nil {
		svc.Close()
		st.Close()
		return nil, fmt.Errorf("resume jobs: %w", err)
	}
	lagCtx, stopLag := context.WithCancel(context.Background())
	go lag.Run(lagCtx)
	a.Handler, a.Metrics, a.CredentialsFile, a.Lag, a.stopLag = srv, m.Registry, credFile, lag, stopLag
	return a, nil
}

// JobStore is the store the jobs live in (SQLite, or etcd in cluster
// mode).
func (a *App) JobStore() jobs.Store { return a.jobStore }

// Ping checks that the job store answers, for readiness.
func (a *App) Ping(ctx context.Context) error { return a.jobStore.Ping(ctx) }

// Close stops the job service (running work keeps its status and resumes
// at the next start, on this node or, in cluster mode, on another one at
// once) and closes the store.
func (a *App) Close() error {
	if a.stopLag != nil {
		a.stopLag()
	}
	if a.cluster != nil {
		// Out of the registry first: the other nodes claim each job the
		// moment its run here has stopped and released it.
		a.cluster.node.Leave()
	}
	a.Jobs.Close()
	if a.cluster != nil {
		return a.cluster.close()
	}
	return a.store.Close()
}

func loadCredentials(cfg Config, log *slog.Logger) (cloudapi.Credentials, string, error) {
	if (cfg.SecretID == "") != (cfg.SecretKey == "") {
		return nil, "", errors.New("set both OPENDTS_SECRET_ID and OPENDTS_SECRET_KEY, or neither")
	}
	ring := cloudapi.KeyRing{}
	if cfg.SecretID != "" {
		ring[cfg.SecretID] = cfg.SecretKey
	}
	path := cfg.CredentialsFile
	explicit := path != ""
	if !explicit {
		path = filepath.Join(cfg.DataDir, "credentials")
	}
	fileRing, err := cloudapi.LoadKeyRing(path)
	switch {
	case err == nil:
		for id, key := range fileRing {
			ring[id] = key
		}
		log.Info("API credentials loaded", "file", path, "pairs", len(fileRing))
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		if len(ring) == 0 {
			id, err := cloudapi.GenerateKeyRingFile(path)
			if err != nil {
				return nil, "", fmt.Errorf("generate API credentials: %w", err)
			}
			log.Info("generated API credentials; the SecretKey is in the file (mode 0600)", "file", path, "secret_id", id)
			ring, err = cloudapi.LoadKeyRing(path)
			if err != nil {
				return nil, "", err
			}
		} else {
			path = ""
		}
	default:
		return nil, "", err
	}
	return ring, path, nil
}

// Serve runs an HTTP server for the app until ctx ends, then drains it for
// at most drain.
func (a *App) Serve(ctx context.Context, srv *http.Server, serve func() error, drain time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.logger.Info("shutting down: draining requests")
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("drain HTTP server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
