// Command opendts is a self-hosted data transmission service that speaks
// the Tencent Cloud DTS 2018-03-30 API. This file is wiring only: flags,
// environment, logging, signals.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/opendts/opendts/internal/app"
	"github.com/opendts/opendts/internal/console"
)

const usage = `opendts: a self-hosted data transmission service (Tencent Cloud DTS 2018-03-30 API)

Usage:
  opendts serve [flags]     run the API server (opendts serve -h lists the flags)
  opendts dts <Action> ...  call an API action (opendts dts -h explains)
  opendts jobs              list jobs as a table
  opendts nodes             list the service's nodes (cluster mode: lease, jobs owned)
  opendts job <JobId>       show a job: steps, errors, check items, verification
  opendts watch <JobId> [--until-ready]
                            live progress and lag until the job ends (or is ready to complete)
  (jobs, job, watch and nodes take the client flags of opendts dts)
  opendts version           print the version and the commit it was built from

Every command takes -h.
`

// version and commit are stamped at build time:
//
//	go build -ldflags "-X main.version=$(git describe --tags --always --dirty) -X main.commit=$(git rev-parse HEAD)" ./cmd/opendts
//
// Without them, commit falls back to the VCS revision Go records in the
// binary when built inside a git checkout.
var (
	version = "dev"
	commit  = ""
)

func versionLine() string {
	c, modified := commit, false
	if info, ok := debug.ReadBuildInfo(); ok && c == "" {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				c = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	if modified {
		c += " (modified)"
	}
	return fmt.Sprintf("opendts %s commit %s %s", version, c, runtime.Version())
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
		if errors.Is(err, flag.ErrHelp) {
			// -h asked for the flags, which the flag set has printed.
			return
		}
	case "dts":
		os.Exit(dts(os.Args[2:]))
	case "jobs", "job", "watch", "nodes":
		os.Exit(runFriendly(os.Args[1], os.Args[2:]))
	case "version":
		fmt.Println(versionLine())
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "opendts: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "opendts:", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: opendts serve [flags]\n\nRuns the API server. Every flag also reads the environment variable named after it.\n\nFlags:")
		fs.PrintDefaults()
	}
	listen := fs.String("listen", env("OPENDTS_LISTEN", "127.0.0.1:9988"), "address to listen on (OPENDTS_LISTEN)")
	dataDir := fs.String("data-dir", env("OPENDTS_DATA_DIR", "./opendts-data"), "state directory (OPENDTS_DATA_DIR)")
	credFile := fs.String("credentials-file", env("OPENDTS_CREDENTIALS_FILE", ""), "file of \"SecretId SecretKey\" lines (OPENDTS_CREDENTIALS_FILE; default DATA_DIR/credentials, generated if no credentials are given)")
	regions := fs.String("regions", env("OPENDTS_REGIONS", "ap-guangzhou"), "comma-separated regions served (OPENDTS_REGIONS)")
	instances := fs.String("instances", env("OPENDTS_INSTANCES", ""), "instance catalogue JSON file (OPENDTS_INSTANCES; default DATA_DIR/instances.json)")
	tlsCert := fs.String("tls-cert", env("OPENDTS_TLS_CERT", ""), "TLS certificate file; with -tls-key serves HTTPS (OPENDTS_TLS_CERT)")
	tlsKey := fs.String("tls-key", env("OPENDTS_TLS_KEY", ""), "TLS key file (OPENDTS_TLS_KEY)")
	rate := fs.Float64("rate-limit", envFloat("OPENDTS_RATE_LIMIT", 20), "requests per second per SecretId for actions without a documented limit (OPENDTS_RATE_LIMIT)")
	maxUnused := fs.Int("max-unused-jobs", int(envFloat("OPENDTS_MAX_UNUSED_JOBS", 1000)), "created but unstarted jobs allowed (OPENDTS_MAX_UNUSED_JOBS)")
	workers := fs.Int("copy-workers", int(envFloat("OPENDTS_COPY_WORKERS", 4)), "parallel chunk copies per job (OPENDTS_COPY_WORKERS)")
	maxWorkers := fs.Int("max-copy-workers", int(envFloat("OPENDTS_MAX_COPY_WORKERS", 16)), "chunks copied at once across all jobs, shared fairly; 0 is unlimited (OPENDTS_MAX_COPY_WORKERS)")
	chunkRows := fs.Int64("chunk-rows", int64(envFloat("OPENDTS_CHUNK_ROWS", 0)), "rows per chunk, the unit of a target transaction and of resuming; 0: each family's own (MySQL 50000, PostgreSQL 250000) (OPENDTS_CHUNK_ROWS)")
	logFormat := fs.String("log-format", env("OPENDTS_LOG_FORMAT", "text"), "text or json (OPENDTS_LOG_FORMAT)")
	logLevel := fs.String("log-level", env("OPENDTS_LOG_LEVEL", "info"), "debug, info, warn or error (OPENDTS_LOG_LEVEL)")
	debugListen := fs.String("debug-listen", env("OPENDTS_DEBUG_LISTEN", ""), "address for Go's /debug/pprof profiles, off when empty; keep it on loopback (OPENDTS_DEBUG_LISTEN)")
	consoleOn := fs.Bool("console", envBool("OPENDTS_CONSOLE", true), "serve the web console at /console/ (OPENDTS_CONSOLE; -console=false turns it off)")
	cl := clusterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return errors.New("give both -tls-cert and -tls-key, or neither")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler
	switch *logFormat {
	case "json":
		handler = slog.NewJSONHandler(os.Stderr, opts)
	case "text":
		handler = slog.NewTextHandler(os.Stderr, opts)
	default:
		return fmt.Errorf("log format %q: use text or json", *logFormat)
	}
	logger := slog.New(handler)

	var regionList []string
	for _, r := range strings.Split(*regions, ",") {
		if r = strings.TrimSpace(r); r != "" {
			regionList = append(regionList, r)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	a, err := app.New(ctx, app.Config{
		DataDir:         *dataDir,
		SecretID:        os.Getenv("OPENDTS_SECRET_ID"),
		SecretKey:       os.Getenv("OPENDTS_SECRET_KEY"),
		CredentialsFile: *credFile,
		MasterKey:       os.Getenv("OPENDTS_MASTER_KEY"),
		Regions:         regionList,
		InstancesFile:   *instances,
		DefaultRate:     *rate,
		MaxUnusedJobs:   *maxUnused,
		CopyWorkers:     *workers,
		MaxCopyWorkers:  *maxWorkers,
		ChunkRows:       *chunkRows,
		Logger:          logger,
		Address:         *listen,
		Cluster:         cl.config(*listen),
	})
	if err != nil {
		return err
	}
	defer a.Close()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", a.Handler)
	mux.Handle("/metrics", promhttp.HandlerFor(a.Metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := a.Ping(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if *consoleOn {
		console.Mount(mux)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	if *debugListen != "" {
		// Profiles on their own listener, never on the API's: they are
		// unauthenticated.
		dl, err := net.Listen("tcp", *debugListen)
		if err != nil {
			return fmt.Errorf("debug listener: %w", err)
		}
		defer dl.Close()
		dmux := http.NewServeMux()
		dmux.HandleFunc("/debug/pprof/", pprof.Index)
		dmux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		dmux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		dmux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		go http.Serve(dl, dmux)
		logger.Info("profiles served", "url", "http://"+dl.Addr().String()+"/debug/pprof/")
	}
	scheme := "http"
	serveFn := func() error { return srv.Serve(ln) }
	if *tlsCert != "" {
		scheme = "https"
		serveFn = func() error { return srv.ServeTLS(ln, *tlsCert, *tlsKey) }
	}
	logger.Info("opendts serving", "url", scheme+"://"+ln.Addr().String(), "data_dir", *dataDir, "regions", regionList)
	if *consoleOn {
		logger.Info("web console served", "url", scheme+"://"+ln.Addr().String()+console.Prefix)
	}
	err = a.Serve(ctx, srv, serveFn, 30*time.Second)
	logger.Info("opendts stopped")
	return err
}

func envFloat(name string, def float64) float64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "opendts: %s=%q is not a number; using %g\n", name, v, def)
		return def
	}
	return f
}

func envBool(name string, def bool) bool {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "opendts: %s=%q is not true or false; using %t\n", name, v, def)
		return def
	}
	return b
}
